"""The Python API: ``from llmsizing import model, serve, finetune, plan``.

The same numbers as the command line, as typed results::

    model("deepseek-r1")                              llmsizing model deepseek-r1 --json
    serve("llama-3.1-70b", "h100-80gb", users=200)    llmsizing serve llama-3.1-70b --gpu h100-80gb --users 200 --json
    finetune("qwen3-8b", "h100-80gb", method="qlora") llmsizing finetune qwen3-8b --gpu h100-80gb --method qlora --json
    plan("params/qlora-7b-single-24gb.yaml")          results.json's "results" of llmsizing run (without rendering)

Each result is a read-only mapping (``r["gpus"]``, or ``r.gpus``) with ``to_dict()`` (plain JSON
values: sizes in bytes, times in hours or seconds as named), ``to_frame()`` (a pandas DataFrame,
numbers as numbers) and ``_repr_html_`` (a notebook cell shows a summary table). Bad input raises
:class:`llmsizing.errors.SizingError` with the same one-line message the command line prints.
"""

from __future__ import annotations

import copy
import html
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, ClassVar

import pandas as pd

from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.facts import model_summary
from llmsizing.planner.cluster import serving_cluster
from llmsizing.planner.plans import plan_finetune
from llmsizing.report.scenario import Scenario, load_scenario
from llmsizing.report.study import run_study
from llmsizing.serving.estimate import serve as _serve
from llmsizing.training.aliases import alias_overrides
from llmsizing.units import fmt_gib, parse_tokens

__all__ = ["FinetuneResult", "ModelResult", "PlanResult", "Result", "ServeResult", "finetune", "model", "plan",
           "serve"]


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> one level with dotted keys; scalars only (lists are left out)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, key + "."))
        elif v is None or isinstance(v, (bool, int, float, str)):
            out[key] = v
    return out


def _get(d: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, Mapping) or part not in d:
            return None
        d = d[part]
    return d


def _gib(v: Any) -> str:
    return fmt_gib(v) if isinstance(v, (int, float)) else "—"


def _num(fmt: str) -> Callable[[Any], str]:
    return lambda v: "—" if v is None else (format(v, fmt) if isinstance(v, (int, float)) else str(v))


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return "—" if v is None else str(v)


class Result(Mapping[str, Any]):
    """A read-only mapping of one result's numbers (bytes, hours, seconds, USD as named)."""

    #: (key, label, formatter) rows of the notebook summary table.
    SUMMARY: ClassVar[tuple[tuple[str, str, Callable[[Any], str]], ...]] = ()

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {k for k in self._data if k.isidentifier()})

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the numbers, as the command line's ``--json`` prints them."""
        return copy.deepcopy(self._data)

    def to_frame(self) -> pd.DataFrame:
        """One row; nested fields as dotted columns (``memory_per_gpu.total``); numbers stay numbers."""
        return pd.DataFrame([_flat(self._data)])

    def summary(self) -> list[tuple[str, str]]:
        """(label, formatted value) rows shown in a notebook."""
        return [(label, fmt(_get(self._data, key))) for key, label, fmt in self.SUMMARY]

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:right'>"
                       f"{html.escape(v)}</td></tr>" for k, v in self.summary())
        return (f"<table><caption>{html.escape(type(self).__name__)}</caption>{rows}</table>"
                f"<p><small>.to_dict() for every field, .to_frame() for a DataFrame</small></p>")

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.summary()[:6])
        return f"{type(self).__name__}({inner})"


class ModelResult(Result):
    """Architecture facts of one model (``llmsizing model --json``)."""

    SUMMARY = (("model", "model", _text), ("revision", "revision", _text), ("family", "family", _text),
               ("params_total", "parameters", _num(",")), ("params_active", "active parameters", _num(",")),
               ("kv_cache_bytes_per_token", "KV cache bytes per token (bf16)", _num(",")),
               ("layers", "layers", _num("d")), ("max_context_tokens", "context tokens", _num(",")))


class ServeResult(Result):
    """Serving estimate with its cluster and cost (``llmsizing serve --json``)."""

    SUMMARY = (("model", "model", _text), ("gpu", "GPU", _text), ("gpus", "GPUs", _num("d")),
               ("fits", "fits", _text), ("memory_per_gpu.total", "memory per GPU", _gib),
               ("gpu_memory_bytes", "GPU memory", _gib), ("max_concurrent_users", "users the KV cache holds", _num(",")),
               ("decode_tokens_per_s_per_user", "decode tokens/s per user", _num(",.1f")), ("ttft_s", "TTFT (s)", _num(".2f")),
               ("cluster.instance_name", "instance", _text), ("cluster.cost_usd_per_hour", "USD per hour", _num(",.2f")),
               ("cluster.cost_usd_per_million_output_tokens", "USD per million output tokens", _num(",.2f")))


class FinetuneResult(Result):
    """Fine-tuning plan with its cluster and cost (``llmsizing finetune --json``)."""

    SUMMARY = (("model", "model", _text), ("method", "method", _text), ("gpu", "GPU", _text),
               ("gpus", "GPUs", _num("d")), ("fits", "fits", _text), ("memory_per_gpu.total", "memory per GPU", _gib),
               ("dataset_tokens", "dataset tokens", _num(",")), ("hours", "hours", _num(",.2f")),
               ("gpu_hours", "GPU-hours", _num(",.1f")), ("meets_deadline", "meets the deadline", _text),
               ("cost_usd", "cost (USD, on demand)", _num(",.0f")))


class PlanResult(Result):
    """A scenario's numbers (``results`` of results.json), without rendering a report."""

    def __init__(self, data: Mapping[str, Any], scenario: Scenario) -> None:
        super().__init__(data)
        self._scenario = scenario

    @property
    def scenario(self) -> Scenario:
        """The validated scenario."""
        return self._scenario

    @property
    def headline(self) -> dict[str, Any]:
        """The flat headline numbers (``serving.<model>.gpus``, ``finetune.<model>.<method>.<data>.hours``, ...)."""
        return dict(self._data.get("headline", {}))

    def to_frame(self) -> pd.DataFrame:
        """One row per serving (model, GPU) and per fine-tuning (model, method, data) cell; typed columns."""
        rows: list[dict[str, Any]] = []
        for m in self._data.get("serving", {}).get("models", []):
            for gpu, cell in m["by_gpu"].items():
                rows.append({"section": "serving", "model": m["model"], "gpu": gpu, **_flat(cell)})
        for cell in self._data.get("finetune", {}).get("matrix", []):
            rows.append({"section": "finetune", **_flat(cell)})
        return pd.DataFrame(rows)

    def summary(self) -> list[tuple[str, str]]:
        return [(k, _text(v) if not isinstance(v, float) else f"{v:,.3g}") for k, v in sorted(self.headline.items())]


# --------------------------------------------------------------------------- the four functions


def model(name: str) -> ModelResult:
    """Architecture facts of a catalog model, a Hugging Face id (cache or Hub) or a ``config.json`` path.

    >>> m = model("deepseek-r1-distill-qwen-1.5b")
    >>> m.params_total
    1777088000
    """
    return ModelResult(model_summary(catalog.load_model(name)))


def serve(model: str, gpu: str, *, users: int | None = None, context: int | str | None = None,
          prompt_tokens: int | str | None = None, assumptions: Mapping[str, Any] | None = None,
          **options: Any) -> ServeResult:
    """Size serving ``model`` on ``gpu``: the dict of ``llmsizing serve --json``, its cluster and cost included.

    ``context`` and ``prompt_tokens`` take a number or text like ``"32K"``; ``options`` are the other
    keywords of :func:`llmsizing.serving.estimate.serve` (``gpus``, ``precision``, ``kv_precision``,
    ``engine``, ``gpu_memory_utilization``, ``gpu_memory``, ``mla_cache``, ``max_model_len``, ...).
    """
    a = dict(assumptions or {})
    Assumptions(a)
    est = _serve(model, gpu, users=users,
                 context_tokens=parse_tokens(context, "context") if context is not None else None,
                 prompt_tokens=parse_tokens(prompt_tokens, "prompt tokens") if prompt_tokens is not None else None,
                 assumptions=a, **options)
    d = est.to_dict()
    d["cluster"] = serving_cluster(d, a).to_dict() if d.get("gpus") else None
    return ServeResult(d)


def finetune(model: str, gpu: str, *, method: str = "lora", data: str | int | float = "1GB",
             deadline: str | float = "24h", language: str = "en", tokenizer: str | None = None,
             mfu: float | None = None, tokens_per_byte: float | None = None,
             assumptions: Mapping[str, Any] | None = None, **options: Any) -> FinetuneResult:
    """Plan fine-tuning ``model`` on ``gpu``: the dict of ``llmsizing finetune --json``, cluster and cost included.

    ``mfu`` and ``tokens_per_byte`` are the short forms of ``--mfu`` and ``--tokens-per-byte`` (mapped
    onto the named assumptions of this GPU's generation and this text); ``options`` are the other
    keywords of :func:`llmsizing.planner.plans.plan_finetune` (``gpus``, ``epochs``, ``seq_len``, ``zero``, ...).
    """
    a = alias_overrides(model=model, method=method, gpu=gpu, language=language, tokenizer=tokenizer, mfu=mfu,
                        tokens_per_byte=tokens_per_byte, assumptions=assumptions)
    p = plan_finetune(model, method, gpu, data, deadline=deadline, language=language, tokenizer=tokenizer,
                      assumptions=a, **options)
    return FinetuneResult(p.to_dict())


def plan(scenario: str | os.PathLike[str] | Mapping[str, Any] | None = None, **keys: Any) -> PlanResult:
    """The numbers of a scenario's report, without rendering: a params file, a mapping, or keywords.

    ``plan("params/x.yaml")``, ``plan({"kind": "finetune", ...})`` or ``plan(kind="serving", models=[...])``;
    keywords override the file's or the mapping's keys. Validation is the same as ``llmsizing run``'s.
    """
    if isinstance(scenario, (str, os.PathLike)):
        sc = load_scenario(Path(scenario))
        if keys:
            data = {k: v for k, v in sc.parameters().items() if k != "date"}
            sc = Scenario.from_dict({**data, **keys}, where=str(scenario))
    else:
        sc = Scenario.from_dict({**dict(scenario or {}), **keys}, where="plan()")
    return PlanResult(run_study(sc).numbers(), sc)

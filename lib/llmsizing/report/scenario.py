"""Scenarios: the one validation gate for params YAML, notebook parameters and tests.

A scenario is a flat mapping of primitives (str, int, float, bool, list, dict) that says
which report to build (``kind``), for whom (``customer``, ``title``) and what to size
(models, GPUs, users, data sizes, deadline, assumption overrides). The same mapping is

* a file ``params/<scenario>.yaml`` (read by :func:`load_scenario`),
* a papermill parameters file for ``notebooks/<kind>.ipynb``
  (``papermill notebooks/serving.ipynb out.ipynb -f params/x.yaml``), and
* the ``parameters`` cell of that notebook, which rebuilds it with :meth:`Scenario.from_dict`.

:meth:`Scenario.from_dict` is strict: an unknown key, a key that does not belong to the
scenario's kind, a wrong type, an unknown model, GPU or precision, an unparseable data size
or deadline, or an unknown assumption raises :class:`~llmsizing.errors.ScenarioError` with
one line naming where the value came from (the file), the key, and what is allowed.

PyYAML (YAML 1.1) reads ``1e9`` -- an exponent without a dot -- as the *string* ``'1e9'``.
Strings are accepted only where documented: data sizes (``'1GB'``, ``'15.6T tokens'``,
``'1e9'``), the deadline (``'24h'``) and token counts (``'32K'``). Anywhere a plain number
is expected a numeric-looking string is rejected with a message saying how to write it.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from llmsizing.errors import CatalogError, ScenarioError
from llmsizing.units import parse_data_size, parse_duration_s

__all__ = [
    "KINDS",
    "PARAMETERS",
    "Parameter",
    "Scenario",
    "load_scenario",
    "parameters_for",
]

#: Report kinds; each has a notebook ``notebooks/<kind>.ipynb``.
KINDS = ("serving", "finetune", "customer")

#: Longest scenario name (it becomes a folder name).
MAX_NAME_CHARS = 80
#: Longest free-text value (customer, title, notes).
MAX_TEXT_CHARS = {"customer": 200, "title": 200, "notes": 4000}
#: Largest params file read.
MAX_PARAMS_FILE_BYTES = 200_000

_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
_NUMERIC_STR_RE = re.compile(r"^\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*$")
_TOKENS_RE = re.compile(r"^\s*(?P<num>[0-9]+(?:\.[0-9]*)?)\s*(?P<prefix>[KkMm]i?)?\s*(?:tokens?)?\s*$")

# The customer's request (seed): the DeepSeek-R1 family, 3 concurrent users, and fine-tuning
# on 1K ... 1TB of text within one day.
DEEPSEEK_R1_FAMILY = (
    "deepseek-r1",
    "deepseek-r1-distill-qwen-1.5b",
    "deepseek-r1-distill-qwen-7b",
    "deepseek-r1-distill-qwen-14b",
    "deepseek-r1-distill-qwen-32b",
    "deepseek-r1-distill-llama-8b",
    "deepseek-r1-distill-llama-70b",
)
CUSTOMER_DATA_SIZES = ("1K", "1M", "1GB", "10GB", "100GB", "1TB")

# Choices mirror the estimators (serving.ENGINES, training.METHODS/OPTIMIZERS/PRECISIONS,
# dataset.LANGUAGES); tests/test_scenario.py checks they agree.
ENGINES = ("vllm", "sglang", "transformers", "llama.cpp")
METHODS = ("full", "lora", "qlora")
OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit", "paged-adamw", "sgd", "sgd-momentum")
TRAIN_PRECISIONS = ("mixed-bf16", "bf16", "fp32")
LANGUAGES = ("en", "zh", "code", "mixed")
KV_PRECISIONS = ("auto", "bf16", "fp16", "fp8", "q8_0", "q4_0")


# --------------------------------------------------------------------------- checks
# Each check takes (value, ctx) and returns the normalized primitive, or raises ScenarioError.
# ``ctx.where`` names the file (or "notebook parameters"), ``ctx.key`` the key.


@dataclass(frozen=True)
class _Ctx:
    where: str
    key: str

    def fail(self, problem: str) -> ScenarioError:
        return ScenarioError(f"{self.where}: key '{self.key}': {problem}")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _numeric_string_hint(value: Any) -> str:
    if isinstance(value, str) and _NUMERIC_STR_RE.match(value):
        if "e" in value.lower():
            return (f" ({value!r} is text: YAML 1.1 reads an exponent without a dot, like 1e9, as a string;"
                    f" write 1.0e+9 or the plain number)")
        return f" ({value!r} is quoted text; write the number without quotes)"
    return ""


def _str(value: Any, ctx: _Ctx, *, max_chars: int = 200, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise ctx.fail(f"expected a string, got {_type_name(value)} {value!r}")
    if not allow_empty and not value.strip():
        raise ctx.fail("must not be empty")
    if len(value) > max_chars:
        raise ctx.fail(f"is {len(value)} characters long; at most {max_chars} allowed")
    if "\x00" in value:
        raise ctx.fail("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # JSON-style escapes of a character beyond U+FFFF ("\ud83d\ude80") reach us from YAML as two
        # surrogates: join such pairs; a lone surrogate ("\ud800") cannot be written to the report.
        try:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            raise ctx.fail("contains a character that is not valid Unicode (a lone surrogate such as "
                           "\\ud800)") from None
    return value


def _text(limit: int) -> Callable[[Any, _Ctx], str]:
    def check(value: Any, ctx: _Ctx) -> str:
        return _str(value, ctx, max_chars=limit)

    return check


def _int(minimum: int = 1, maximum: int | None = None) -> Callable[[Any, _Ctx], int]:
    def check(value: Any, ctx: _Ctx) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.fail(f"expected an integer, got {_type_name(value)} {value!r}{_numeric_string_hint(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and <= {maximum}" if maximum is not None else ""
            raise ctx.fail(f"must be >= {minimum}{upper}, got {value}")
        return value

    return check


def _float(minimum: float = 0.0, maximum: float | None = None, *, open_min: bool = True) -> Callable[[Any, _Ctx], float]:
    def check(value: Any, ctx: _Ctx) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.fail(f"expected a number, got {_type_name(value)} {value!r}{_numeric_string_hint(value)}")
        value = float(value)
        low_bad = value <= minimum if open_min else value < minimum
        if not math.isfinite(value) or low_bad or (maximum is not None and value > maximum):
            lo = ">" if open_min else ">="
            upper = f" and <= {maximum}" if maximum is not None else ""
            raise ctx.fail(f"must be a finite number {lo} {minimum}{upper}, got {value!r}")
        return value

    return check


def _bool(value: Any, ctx: _Ctx) -> bool:
    if not isinstance(value, bool):
        raise ctx.fail(f"expected true or false, got {_type_name(value)} {value!r}")
    return value


def _choice(choices: tuple[str, ...]) -> Callable[[Any, _Ctx], str]:
    def check(value: Any, ctx: _Ctx) -> str:
        _str(value, ctx)
        if value not in choices:
            raise ctx.fail(f"unknown value {value!r}; choose one of: {', '.join(choices)}")
        return value

    return check


def _list_of(item: Callable[[Any, _Ctx], Any], *, min_items: int = 1, max_items: int = 64,
             unique: bool = True) -> Callable[[Any, _Ctx], list]:
    def check(value: Any, ctx: _Ctx) -> list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ctx.fail(f"expected a list, got {_type_name(value)} {value!r}")
        if not min_items <= len(value) <= max_items:
            raise ctx.fail(f"expected {min_items} to {max_items} items, got {len(value)}")
        out = []
        for i, v in enumerate(value):
            out.append(item(v, _Ctx(ctx.where, f"{ctx.key}[{i}]")))
        if unique:
            seen: set = set()
            for i, v in enumerate(out):
                if v in seen:
                    raise _Ctx(ctx.where, f"{ctx.key}[{i}]").fail(f"{v!r} is listed twice")
                seen.add(v)
        return out

    return check


def _slug(value: Any, ctx: _Ctx) -> str:
    _str(value, ctx, max_chars=MAX_NAME_CHARS, allow_empty=False)
    if not _SLUG_RE.match(value) or ".." in value:
        raise ctx.fail(
            f"{value!r} is not a safe folder name: use lower-case letters, digits, '-', '_' and '.', "
            f"starting and ending with a letter or digit, no '/' and no '..' (e.g. 'acme-chat-70b')"
        )
    return value


def _model(value: Any, ctx: _Ctx) -> str:
    from llmsizing import catalog

    _str(value, ctx, allow_empty=False)
    try:
        spec = catalog.load_model(value)
    except CatalogError as exc:
        raise ctx.fail(str(exc)) from None
    entry = catalog.model_entry(spec)
    return spec.slug if entry is not None else value


def _gpu(value: Any, ctx: _Ctx) -> str:
    from llmsizing import catalog

    _str(value, ctx, allow_empty=False)
    try:
        return catalog.load_gpu(value).slug
    except CatalogError as exc:
        raise ctx.fail(str(exc)) from None


def _precision(value: Any, ctx: _Ctx) -> str:
    from llmsizing import catalog

    _str(value, ctx, allow_empty=False)
    if value == "native":
        return value
    try:
        return catalog.load_precision(value).slug
    except CatalogError as exc:
        raise ctx.fail(f"{exc}, or 'native' (the checkpoint's own format)") from None


def _memory_override(value: Any, ctx: _Ctx) -> str:
    from llmsizing.units import parse_memory_bytes

    _str(value, ctx)
    if value:
        try:
            parse_memory_bytes(value)
        except ScenarioError as exc:
            raise ctx.fail(str(exc)) from None
    return value


def _data_size(value: Any, ctx: _Ctx) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ctx.fail(f"expected a data size such as '1GB', got {_type_name(value)} {value!r}")
    try:
        parse_data_size(value)
    except ScenarioError as exc:
        raise ctx.fail(str(exc)) from None
    return value


def _duration(value: Any, ctx: _Ctx) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ctx.fail(f"expected a duration such as '24h', got {_type_name(value)} {value!r}")
    try:
        parse_duration_s(value)
    except ScenarioError as exc:
        raise ctx.fail(str(exc)) from None
    return value


def parse_tokens(value: Any) -> int:
    """Parse a token count: an integer, or a string such as ``'32K'``, ``'128K tokens'``, ``'1M'``.

    ``K``/``M`` are 1024 and 1024^2 here, as context windows are quoted (``32K`` = 32,768
    tokens, ``128K`` = 131,072); ``Ki``/``Mi`` mean the same.
    """
    if isinstance(value, bool):
        raise ScenarioError(f"token count {value!r} is not a number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        m = _TOKENS_RE.match(value)
        if not m:
            raise ScenarioError(f"cannot parse token count {value!r}; write an integer or e.g. '32K', '128K tokens'")
        prefix = (m.group("prefix") or "").upper().rstrip("I")
        n_float = float(m.group("num")) * {"": 1, "K": 1024, "M": 1024**2}[prefix]
        if not n_float.is_integer():
            raise ScenarioError(f"token count {value!r} is not a whole number of tokens")
        n = int(n_float)
    else:
        raise ScenarioError(f"token count {value!r} is not a number")
    if n < 1 or n > 16 * 1024**2:
        raise ScenarioError(f"token count {value!r} must be between 1 and 16M tokens")
    return n


def _tokens(value: Any, ctx: _Ctx) -> int:
    try:
        return parse_tokens(value)
    except ScenarioError as exc:
        raise ctx.fail(f"{exc}") from None


def _date(value: Any, ctx: _Ctx) -> str:
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        return value.isoformat()
    _str(value, ctx)
    if value:
        try:
            _dt.date.fromisoformat(value)
        except ValueError:
            raise ctx.fail(f"{value!r} is not a date; write YYYY-MM-DD, or leave empty for today") from None
    return value


def _assumptions(value: Any, ctx: _Ctx) -> dict:
    from llmsizing.assumptions import Assumptions

    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ctx.fail(f"expected a mapping of assumption name to value, got {_type_name(value)} {value!r}")
    for k, v in value.items():
        if not isinstance(k, str):
            raise ctx.fail(f"assumption names must be strings, got {k!r}")
        hint = _numeric_string_hint(v)
        if hint:
            raise _Ctx(ctx.where, f"{ctx.key}.{k}").fail(f"expected a number, got str {v!r}{hint}")
    try:
        Assumptions(value)
    except ScenarioError as exc:
        raise ctx.fail(str(exc)) from None
    return dict(value)


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Parameter:
    """One scenario key: its type (as papermill documents it), default, help, and kinds."""

    name: str
    type: str
    default: Any
    help: str
    kinds: tuple[str, ...]
    check: Callable[[Any, _Ctx], Any] = field(repr=False, compare=False)


_ALL = KINDS
_SERVE = ("serving", "customer")
_TUNE = ("finetune", "customer")

PARAMETERS: tuple[Parameter, ...] = (
    Parameter("kind", "str", "serving", "report kind: serving, finetune or customer (picks the notebook)", _ALL,
              _choice(KINDS)),
    Parameter("scenario_name", "str", "example", "report folder under reports/ (lower-case letters, digits, -)",
              _ALL, _slug),
    Parameter("customer", "str", "", "customer name on the cover and running header", _ALL,
              _text(MAX_TEXT_CHARS["customer"])),
    Parameter("title", "str", "LLM hardware sizing", "report title on the cover", _ALL,
              _text(MAX_TEXT_CHARS["title"])),
    Parameter("notes", "str", "", "free text shown under the executive summary", _ALL,
              _text(MAX_TEXT_CHARS["notes"])),
    Parameter("date", "str", "", "report date YYYY-MM-DD (empty: today)", _ALL, _date),
    Parameter("assumptions", "dict", {}, "assumption overrides {name: value}; see 'llmsizing assumptions'", _ALL,
              _assumptions),
    Parameter("models", "list", list(DEEPSEEK_R1_FAMILY), "models: catalog slugs, HF ids or config.json paths",
              _ALL, _list_of(_model)),
    Parameter("gpus", "list", ["h100-80gb", "h200", "a100-80gb", "l40s"],
              "candidate GPU types, preferred first (catalog slugs)", _ALL, _list_of(_gpu, max_items=16)),
    Parameter("gpu_memory", "str", "", "override the memory of the GPUs, e.g. '24GiB' (empty: catalog)", _ALL,
              _memory_override),
    # serving
    Parameter("users", "int", 3, "concurrent users, each with a full context in flight", _SERVE,
              _int(1, 1_000_000)),
    Parameter("context_tokens", "int", 32768, "tokens per user (prompt + output), e.g. 32768 or '32K'", _SERVE,
              _tokens),
    Parameter("context_sweep", "list", [4096, 16384, 32768, 65536, 131072],
              "context lengths for the context-length figure", _SERVE, _list_of(_tokens, max_items=16)),
    Parameter("precision", "str", "native", "weight precision for serving: native (checkpoint), bf16, fp8, int4, ...",
              _SERVE, _precision),
    Parameter("kv_precision", "str", "auto", "KV-cache precision: auto (engine default), bf16, fp16, fp8",
              _SERVE, _choice(KV_PRECISIONS)),
    Parameter("engine", "str", "vllm", "serving engine: vllm, sglang, transformers, llama.cpp", _SERVE,
              _choice(ENGINES)),
    # fine-tuning
    Parameter("methods", "list", ["lora", "qlora", "full"], "fine-tuning methods: full, lora, qlora", _TUNE,
              _list_of(_choice(METHODS), max_items=3)),
    Parameter("data_sizes", "list", list(CUSTOMER_DATA_SIZES),
              "dataset sizes: bytes of text ('1GB'), tokens ('1B tokens') or samples ('1K samples')", _TUNE,
              _list_of(_data_size, max_items=16)),
    Parameter("language", "str", "en", "language of the training text: en, zh, code, mixed (bytes per token)",
              _TUNE, _choice(LANGUAGES)),
    Parameter("deadline", "str", "24h", "wall-clock deadline per fine-tuning run, e.g. '24h' or '2d'", _TUNE,
              _duration),
    Parameter("epochs", "float", 1.0, "passes over the dataset", _TUNE, _float(0.0, 1000.0)),
    Parameter("seq_len", "int", 4096, "training sequence length in tokens", _TUNE, _tokens),
    Parameter("lora_rank", "int", 16, "LoRA rank", _TUNE, _int(1, 65536)),
    Parameter("optimizer", "str", "adamw", "optimizer: adamw, adamw-8bit, paged-adamw-8bit, paged-adamw, sgd, ...",
              _TUNE, _choice(OPTIMIZERS)),
    Parameter("train_precision", "str", "mixed-bf16", "training precision: mixed-bf16, bf16, fp32", _TUNE,
              _choice(TRAIN_PRECISIONS)),
)

_BY_NAME = {p.name: p for p in PARAMETERS}


def parameters_for(kind: str) -> tuple[Parameter, ...]:
    """The parameters a scenario of ``kind`` takes, in notebook order."""
    if kind not in KINDS:
        raise ScenarioError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    return tuple(p for p in PARAMETERS if kind in p.kinds)


# --------------------------------------------------------------------------- Scenario


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Values are normalized primitives (model and GPU slugs, ...).

    Build it only through :meth:`from_dict` or :func:`load_scenario`. Parameters that do not
    belong to the scenario's kind keep their defaults and are not part of :meth:`parameters`.
    """

    kind: str
    scenario_name: str
    customer: str
    title: str
    notes: str
    date: str
    assumptions: Mapping[str, Any]
    models: tuple[str, ...]
    gpus: tuple[str, ...]
    gpu_memory: str
    users: int
    context_tokens: int
    context_sweep: tuple[int, ...]
    precision: str
    kv_precision: str
    engine: str
    methods: tuple[str, ...]
    data_sizes: tuple[str | int | float, ...]
    language: str
    deadline: str | int | float
    epochs: float
    seq_len: int
    lora_rank: int
    optimizer: str
    train_precision: str
    where: str = field(default="scenario", compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "scenario") -> "Scenario":
        """Validate ``data`` (a params file or a notebook's parameters) into a Scenario.

        ``kind`` is required; every other key of that kind is optional (its default is used);
        a key of another kind, or an unknown key, is an error naming ``where`` and the key.
        """
        if not isinstance(data, Mapping):
            raise ScenarioError(f"{where}: expected a mapping of parameters, got {_type_name(data)}")
        for key in data:
            if not isinstance(key, str):
                raise ScenarioError(f"{where}: parameter names must be strings, got {key!r}")
        if "kind" not in data:
            raise ScenarioError(f"{where}: missing key 'kind' (one of: {', '.join(KINDS)})")
        kind = _choice(KINDS)(data["kind"], _Ctx(where, "kind"))
        allowed = parameters_for(kind)
        allowed_names = [p.name for p in allowed]
        for key in data:
            if key not in allowed_names:
                other = [k for k in KINDS if k in _BY_NAME[key].kinds] if key in _BY_NAME else []
                if other:
                    raise ScenarioError(f"{where}: unknown key '{key}' for kind '{kind}' (it belongs to kind "
                                        f"{' or '.join(other)}); allowed: {', '.join(allowed_names)}")
                import difflib

                close = difflib.get_close_matches(key, allowed_names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ScenarioError(f"{where}: unknown key '{key}'{hint}; allowed: {', '.join(allowed_names)}")
        values: dict[str, Any] = {}
        for p in PARAMETERS:
            raw = data[p.name] if p.name in data else p.default
            value = p.check(raw, _Ctx(where, p.name)) if p.name in allowed_names else raw
            values[p.name] = tuple(value) if isinstance(value, list) else value
        values["assumptions"] = dict(values["assumptions"])
        scenario = cls(**values, where=where)
        scenario._cross_check()
        return scenario

    def _cross_check(self) -> None:
        """Checks that involve several keys (each estimator validates its own combination)."""
        if self.kind in _SERVE:
            self._check_serving()
        if self.kind in _TUNE:
            self._check_finetune()

    def _check_serving(self) -> None:
        from llmsizing import catalog
        from llmsizing.serving import plan as serving

        gpus = [catalog.load_gpu(g, self.gpu_memory or None) for g in self.gpus]
        for g in gpus:
            try:
                serving.resolve_kv_precision(self.engine, g, None if self.kv_precision == "auto" else self.kv_precision)
            except ScenarioError as exc:
                raise _Ctx(self.where, "kv_precision").fail(str(exc)) from None
        for m in self.models:
            spec = catalog.load_model(m)
            if spec.max_context_tokens and self.context_tokens > spec.max_context_tokens:
                raise _Ctx(self.where, "context_tokens").fail(
                    f"{self.context_tokens:,} tokens exceeds {spec.slug}'s maximum of {spec.max_context_tokens:,}")
            for g in gpus:
                try:
                    serving.make_plan(spec, g, engine=self.engine, precision=self.serving_precision,
                                      kv_precision=self.serving_kv_precision, users=self.users,
                                      context_tokens=self.context_tokens, assumptions=self.make_assumptions())
                except ScenarioError as exc:
                    raise _Ctx(self.where, "precision").fail(f"{spec.slug} on {g.slug}: {exc}") from None

    def _check_finetune(self) -> None:
        from llmsizing.training import memory as training

        for method in self.methods:
            try:
                training.FinetuneSetup(method=method, precision=self.train_precision, optimizer=self.optimizer,
                                       seq_len=self.seq_len, lora_rank=self.lora_rank)
            except ScenarioError as exc:
                raise _Ctx(self.where, "methods").fail(f"{method}: {exc}") from None

    @property
    def serving_precision(self) -> str | None:
        """Weight precision for the serving estimator (None: the checkpoint's own format)."""
        return None if self.precision == "native" else self.precision

    @property
    def serving_kv_precision(self) -> str | None:
        """KV-cache precision for the serving estimator (None: the engine's default)."""
        return None if self.kv_precision == "auto" else self.kv_precision

    # ----------------------------------------------------------------- views

    def parameters(self) -> dict[str, Any]:
        """The validated primitives for this kind's notebook (papermill's ``parameters``)."""
        out: dict[str, Any] = {}
        for p in parameters_for(self.kind):
            v = getattr(self, p.name)
            out[p.name] = list(v) if isinstance(v, tuple) else (dict(v) if isinstance(v, Mapping) else v)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Same as :meth:`parameters` (JSON-ready)."""
        return self.parameters()

    @property
    def notebook(self) -> str:
        """File name of the notebook that renders this scenario (under ``notebooks/``)."""
        return f"{self.kind}.ipynb"

    @property
    def deadline_s(self) -> float:
        return parse_duration_s(self.deadline)

    @property
    def deadline_hours(self) -> float:
        return self.deadline_s / 3600.0

    def data(self) -> list:
        """Parsed data sizes (:class:`llmsizing.units.DataSize`), in the scenario's order."""
        return [parse_data_size(d) for d in self.data_sizes]

    def make_assumptions(self):
        """A fresh :class:`~llmsizing.assumptions.Assumptions` with this scenario's overrides."""
        from llmsizing.assumptions import Assumptions

        return Assumptions(dict(self.assumptions))

    def report_date(self, today: _dt.date | None = None) -> str:
        """The cover date: ``date`` if set, otherwise today (ISO)."""
        return self.date or (today or _dt.date.today()).isoformat()

    def cover(self, version: str | None = None, today: _dt.date | None = None) -> dict[str, str]:
        """Notebook metadata ``metadata.llmsizing`` for the template's cover."""
        from llmsizing import __version__

        return {"customer": self.customer, "title": self.title, "scenario": self.scenario_name,
                "date": self.report_date(today), "version": version or __version__}

    def replace(self, **changes: Any) -> "Scenario":
        """A re-validated copy with ``changes`` applied (e.g. ``sc.replace(users=10)``)."""
        d = self.parameters()
        d.update(changes)
        return Scenario.from_dict(d, where=self.where)


def _field_names() -> set[str]:
    return {f.name for f in fields(Scenario)} - {"where"}


if _field_names() != set(_BY_NAME):  # pragma: no cover - developer self-check at import
    raise RuntimeError("llmsizing.scenario: Scenario fields and PARAMETERS drifted apart")


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate ``params/<scenario>.yaml``. Errors name the file and the key.

    A missing ``scenario_name`` defaults to the file's stem (which must then be a safe slug).
    """
    from llmsizing.catalog import read_text_file, safe_yaml_loads

    p = Path(path)
    where = str(path)
    text = read_text_file(p, ScenarioError, MAX_PARAMS_FILE_BYTES, what="params file")
    data = safe_yaml_loads(text, where, ScenarioError)
    if data is None:
        raise ScenarioError(f"{where}: the file is empty; it needs at least 'kind' (one of: {', '.join(KINDS)})")
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected a mapping of keys at the top level, got {_type_name(data)}")
    if "scenario_name" not in data:
        if not _SLUG_RE.match(p.stem) or ".." in p.stem:
            raise ScenarioError(f"{where}: the file name {p.stem!r} is not a safe report folder name; add "
                                f"'scenario_name:' with lower-case letters, digits, '-', '_' and '.'")
        data = {**data, "scenario_name": p.stem}
    return Scenario.from_dict(data, where=where)

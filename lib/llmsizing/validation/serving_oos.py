"""Published serving runs scored against ``serve``: KV capacity, throughput and latency.

The cases (``serving_cases.yaml``) were collected with the model's prediction recorded BEFORE any change
(``prediction_before``). A few of them were then used to fit serving assumptions; those are listed in
``CALIBRATION`` with the assumption each one set, and are reported IN SAMPLE; every other case is out of
sample. The split was fixed before fitting.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from llmsizing.catalog import read_yaml_file
from llmsizing.errors import SizingError
from llmsizing.serving import throughput as T
from llmsizing.serving.engines import evaluate_layout, vllm_profile_for_version
from llmsizing.serving.plan import make_plan, resolve_assumptions, snapshot
from llmsizing.serving import roofline
from llmsizing.serving.sharding import Layout

VALIDATION_DIR = Path(__file__).parent
SERVING_CASES_FILE = VALIDATION_DIR / "serving_cases.yaml"
SERVING_CATEGORIES = ("serving-kv-capacity", "serving-throughput", "serving-latency")

#: The calibration subset, fixed before fitting: case id -> the assumption it set.
CALIBRATION = {
    "oos-vllm019-gemma-2-9b-bf16-h100-kv": "vllm_sampler_bytes_per_logit",
    "oos-vllm019-llama-3.1-8b-bf16-tp1-h100-kv": "vllm_sampler_bytes_per_logit",
    "oos-nim18-llama-3.3-70b-fp8-2xh100-c25-itl": "prefill_flop_efficiency_batched",
    "oos-gpustack-qwen3-8b-vllm011-h100-sharegpt-c4-ttft": "ttft_floor_s_vllm",
    "oos-gpustack-r1-0528-vllm011-tp8-h200-sharegpt-c4-tpot": "moe_bandwidth_efficiency_vllm",
    "oos-dstack-r1-sglang0.4.2-mi300x-c4-tpot": "moe_bandwidth_efficiency_rocm",
    "oos-gpustack-qwen3-235b-2507-bf16-vllm011-tp8-h100-32k-total": "moe_prefill_flop_efficiency_bf16",
    "oos-trtllm-r1-fp8-h200-maxtput-adp-ep8": "moe_bandwidth_efficiency_trtllm",
}

_UNIT = {"tokens": 1.0, "tokens/s": 1.0, "ms": 1e-3, "s": 1.0, "tokens/s/user": 1.0, "tokens/s per node": 1.0}


@dataclass(frozen=True)
class ServingRow:
    """One scored serving case."""

    id: str
    category: str
    quantity: str
    measured: float
    predicted: float | None
    reason: str
    in_sample: bool

    @property
    def error_pct(self) -> float | None:
        if self.predicted is None:
            return None
        return 100.0 * (self.predicted - self.measured) / self.measured

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "category": self.category, "quantity": self.quantity, "measured": self.measured,
                "predicted": self.predicted, "error_pct": self.error_pct, "reason": self.reason,
                "in_sample": self.in_sample}


@lru_cache(maxsize=1)
def load_cases() -> tuple[dict, ...]:
    """The serving cases as published (``serving_cases.yaml``)."""
    return tuple(read_yaml_file(SERVING_CASES_FILE))


def _engine(setup: Mapping[str, Any]) -> str:
    e = str(setup.get("engine", "vllm")).lower()
    if "nim" in e or "tensorrt" in e or "trt" in e:
        return "tensorrt-llm"
    return "sglang" if "sglang" in e else "vllm"


def _precision(text: Any) -> str | None:
    t = str(text or "").lower()
    if "nvfp4" in t:
        return "nvfp4"
    if t.startswith("fp8"):
        return "fp8"
    return t.split()[0] if t else None


def _kv(text: Any) -> str | None:
    t = str(text or "").lower()
    return None if not t or t.startswith("auto") or t == "not stated" else t.split()[0]


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _fraction(setup: Mapping[str, Any]) -> float | None:
    """The memory fraction the run set (vLLM utilization, SGLang mem_fraction_static, TRT-LLM free fraction)."""
    for key in ("gpu_memory_utilization", "mem_fraction_static", "kv_cache_free_gpu_mem_fraction"):
        if isinstance(setup.get(key), float):
            return setup[key]
    return None


def _overrides(setup: Mapping[str, Any]) -> dict[str, Any]:
    profile = vllm_profile_for_version(setup.get("engine_version")) if _engine(setup) == "vllm" else None
    return {"vllm_memory_profile": profile} if profile else {}


def _model(case: Mapping[str, Any]) -> str:
    m = case["model"]
    return str(VALIDATION_DIR / m) if m.startswith("configs/") else m


def predict(case: Mapping[str, Any], assumptions: Mapping[str, Any] | None = None) -> tuple[float | None, str]:
    """Our number for a case in base units, or (None, why not)."""
    s = case["setup"]
    if not isinstance(s.get("tp"), int):
        return None, "prefill/decode disaggregation across nodes with per-node rates (batch sizes not published)"
    spec_dec = None
    overrides = dict(_overrides(s))
    if s.get("speculative"):
        m = re.search(r"(\d+)", str(s["speculative"]))
        spec_dec = "mtp" if "mtp" in str(s["speculative"]).lower() else "eagle"
        if m:
            overrides["speculative_draft_tokens"] = int(m.group(1))
    adp = bool(s.get("attention_dp")) or (isinstance(s.get("dp"), int) and s["dp"] > 1)
    prec = _precision(s.get("precision"))
    engine = _engine(s)
    a = resolve_assumptions({**overrides, **(assumptions or {})})
    tp = s["tp"]
    pp = max(1, case["gpus"] // tp)
    kv = case["quantity"] == "kv_tokens"
    I, O = s.get("input_len"), s.get("output_len")
    mml = _int(s.get("max_model_len"))
    context = mml if kv else int(round(I)) + int(round(O))
    plan = make_plan(_model(case), case["gpu"], engine=engine, precision=prec, kv_precision=_kv(s.get("kv_precision")),
                     users=1, context_tokens=min(context, mml or context),
                     prompt_tokens=None if kv else min(int(round(I)), (mml or context) - 1),
                     gpu_memory_utilization=_fraction(s),
                     max_model_len=mml if kv else None,
                     max_num_seqs=_int(s.get("max_num_seqs")) or _int(s.get("max_batch_size")),
                     max_num_batched_tokens=_int(s.get("max_num_tokens")), assumptions=a)
    ep = _int(s.get("ep")) or 1
    mem = evaluate_layout(plan, Layout(tp, pp, ep if adp else 1, 8, attention_dp=adp))
    if kv:
        return float(mem.capacity_tokens()), ""
    conc = s.get("concurrency")
    cap = T.max_running_batch(plan, mem, int(round(I)), int(round(O)))
    users = min(cap, _int(conc) or _int(s.get("num_prompts")) or cap)
    if users <= 0:
        return None, "does not fit"
    ra = snapshot(a, roofline.ROOFLINE_ASSUMPTIONS + T.THROUGHPUT_ASSUMPTIONS)
    r = T.steady_state(plan, mem, T.Workload(users, int(round(I)), int(round(O))), ra, spec_dec)
    q = case["quantity"]
    return {"output_tokens_per_s": r.output_tokens_per_s, "total_tokens_per_s": r.total_tokens_per_s,
            "tpot_s": r.tpot_s_mean, "itl_s": r.tpot_s_mean, "ttft_s": r.ttft_s_mean,
            "output_tokens_per_s_per_user": 1.0 / r.tpot_s_mean}.get(q), ""


def run(category: str | None = None, assumptions: Mapping[str, Any] | None = None) -> list[ServingRow]:
    """Score every serving case (or one category)."""
    rows = []
    for c in load_cases():
        if category and c["category"] != category:
            continue
        m = c["measured"]
        measured = float(m["value"]) * _UNIT[m["unit"]]
        try:
            pred, why = predict(c, assumptions)
        except SizingError as e:
            pred, why = None, str(e)
        rows.append(ServingRow(c["id"], c["category"], c["quantity"], measured, pred, why, c["id"] in CALIBRATION))
    return rows


def summary(rows: list[ServingRow], category: str, in_sample: bool) -> dict[str, Any]:
    """count, scored, median and max |error| % of one category, in or out of sample."""
    sel = [r for r in rows if r.category == category and r.in_sample == in_sample]
    errs = [abs(r.error_pct) for r in sel if r.error_pct is not None and math.isfinite(r.error_pct)]
    return {"category": category, "sample": "in" if in_sample else "out", "cases": len(sel), "scored": len(errs),
            "median_abs_error_pct": statistics.median(errs) if errs else None,
            "max_abs_error_pct": max(errs) if errs else None}


def format_report(rows: list[ServingRow], summaries: list[dict[str, Any]], show_rows: bool = True) -> str:
    """Plain-text table of the published serving runs and their in/out-of-sample summaries."""
    lines = ["Published serving runs (validation/serving_cases.yaml; IN = calibration subset, OUT = out of sample)"]
    if show_rows:
        for r in rows:
            err = f"{r.error_pct:+7.1f}%" if r.error_pct is not None else f"n/a ({r.reason})"
            pred = f"{r.predicted:,.4g}" if r.predicted is not None else "-"
            lines.append(f"  {'IN ' if r.in_sample else 'OUT'} {r.id:66} {r.quantity:22} measured {r.measured:>12,.4g}"
                         f"  ours {pred:>12}  {err}")
    lines.append("")
    lines.append(f"  {'category':22} {'sample':6} {'cases':>5} {'scored':>6} {'median |err|':>13} {'max |err|':>10}")
    for s in summaries:
        med = "-" if s["median_abs_error_pct"] is None else f"{s['median_abs_error_pct']:.1f}%"
        mx = "-" if s["max_abs_error_pct"] is None else f"{s['max_abs_error_pct']:.1f}%"
        lines.append(f"  {s['category']:22} {s['sample']:6} {s['cases']:>5} {s['scored']:>6} {med:>13} {mx:>10}")
    return "\n".join(lines)

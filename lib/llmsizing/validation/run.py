"""Run our estimator and the other methods on every validation case; rows and per-category summaries.

``run_validation()`` returns a ``ValidationResult``: one row per case (measured value, our estimate,
error %, each other method's estimate and error %) and a summary per category and method (count,
median |error|, max |error|, within 10 % / 20 %) on the cases that method covers. Bounds cases
(``measured.bound`` or ``quantity: fits``) are scored satisfied / violated, not as errors.

Our estimates come only from the public APIs: ``architecture`` (parameter counts), ``weights`` and
``serving.serve`` (weights, KV capacity, feasibility), ``training.finetune_memory`` (fine-tune
memory: allocated / reserved / device-level chosen by the case's quantity) and
``training_compute`` (tokens/s per GPU, converted to the case's quantity exactly as the other
methods' tokens/s are). Default assumptions throughout: nothing is fitted here.

A case also records which of our assumptions were calibrated on it (``in_sample``: the assumption
sources name its calibration id), so the summaries can say how much of a category is out of sample.
"""

from __future__ import annotations

import fnmatch
import math
import re
import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from llmsizing import architecture as A
from llmsizing.assumptions import registry
from llmsizing.catalog import load_gpu
from llmsizing.errors import ScenarioError, SizingError
from llmsizing.planner import plans as planner
from llmsizing.serving.engines import vllm_profile_for_version
from llmsizing.serving.estimate import serve
from llmsizing.training.compute import compute_precision, model_flop_per_token, tokens_per_s_per_gpu
from llmsizing.training.memory import finetune_memory
from llmsizing.training.setup import FinetuneSetup
from llmsizing.weights import weight_bytes
from llmsizing.validation import others
from llmsizing.validation.cases import CATEGORIES, CATEGORY_LABELS, UNITS, Case, load_cases, model_spec

OURS = "ours"


# ----------------------------------------------------------------------------- setups


def finetune_setup(setup: Mapping[str, Any], framework: str | None = None):
    """A ``training.FinetuneSetup`` from a case's setup fields (``include_mtp`` is the case's, not the setup's)
    and the case's ``framework`` (the profile the published run used)."""
    fields = {k: v for k, v in setup.items() if k != "include_mtp"}
    if framework is not None:
        fields.setdefault("framework", framework)
    unknown = sorted(set(fields) - set(FinetuneSetup.__dataclass_fields__))
    if unknown:
        raise ScenarioError(f"setup field '{unknown[0]}' is not a FinetuneSetup field")
    return FinetuneSetup(**fields)


def _gpu(case: Case):
    return load_gpu(case.gpu) if case.gpu else None


# ----------------------------------------------------------------------------- conversions


def _megatron_flop_per_token(spec, seq_len: int) -> float:
    """Megatron-LM eq. (3) per token: 96·l·h²·(1 + s/6h + V/16lh) (arXiv:2104.04473 §5.1)."""
    l, h, V = spec.num_layers, spec.hidden_size, spec.vocab_size
    return 96.0 * l * h * h * (1 + seq_len / (6 * h) + V / (16 * l * h))


def tokens_per_s_to_quantity(case: Case, spec, gpu, tps_per_gpu: float) -> float:
    """Convert trained tokens/s per GPU to the case's quantity in base units."""
    q, s, ex = case.quantity, case.setup, case.extra
    if q == "tokens_per_s_per_gpu":
        return tps_per_gpu
    if q == "tokens_per_s":
        return tps_per_gpu * case.gpus
    if q == "tflop_per_s_per_gpu":
        if ex.get("flop_definition") != "megatron_eq3":
            raise ValueError(f"{case.id}: tflop_per_s_per_gpu needs extra.flop_definition megatron_eq3")
        return tps_per_gpu * _megatron_flop_per_token(spec, int(s["seq_len"]))
    if q == "mfu":
        st = finetune_setup(s)
        peak = gpu.tensor_flop_per_s(compute_precision(gpu, st))
        return tps_per_gpu * model_flop_per_token(spec, st, bool(ex.get("include_mtp"))) / peak
    if q == "s_per_iter":
        return ex["global_batch_size"] * s["seq_len"] / (case.gpus * tps_per_gpu)
    if q == "gpu_hours":
        return ex["tokens"] / tps_per_gpu  # GPU-seconds
    raise ValueError(f"{case.id}: no tokens/s conversion for quantity {q!r}")


def tokens_per_s_equivalent(case: Case, value: float) -> float:
    """A throughput/time value in base units converted back to trained tokens/s per GPU (for plots)."""
    spec, gpu = model_spec(case), _gpu(case)
    one, two = (tokens_per_s_to_quantity(case, spec, gpu, x) for x in (1.0, 2.0))
    return value / one if math.isclose(two, 2 * one) else one / value


# ----------------------------------------------------------------------------- our estimator


def _serve(case: Case, spec, gpu, speed: bool = False):
    s = case.setup
    engine = s.get("engine", "vllm")
    frac = s.get("gpu_memory_utilization") if engine == "vllm" else s.get("mem_fraction_static")
    mml = s.get("max_model_len")
    profile = vllm_profile_for_version(s.get("engine_version")) if engine == "vllm" else None
    return serve(spec, gpu, gpus=case.gpus, precision=s.get("precision"), kv_precision=s.get("kv_precision"),
                 assumptions={"vllm_memory_profile": profile} if profile else None,
                 users=int(s.get("users", 1)), context_tokens=int(s.get("context", mml or 4096)), engine=engine,
                 gpu_memory_utilization=frac, max_model_len=mml,
                 max_num_batched_tokens=s.get("max_num_batched_tokens"), max_num_seqs=s.get("max_num_seqs"),
                 prompt_tokens=s.get("prompt_tokens"), speed=speed)


def ours(case: Case, spec=None, gpu=None) -> Any:
    """Our estimate for a case in base units (bool for ``fits``)."""
    spec = spec or model_spec(case)
    gpu = gpu if gpu is not None else _gpu(case)
    est, q, s = case.estimator, case.quantity, case.setup
    if est == "params":
        return float(A.params_total(spec) + (A.params_mtp(spec) if s.get("include_mtp") else 0))
    if est == "weights":
        if q == "weight_bytes_per_rank":
            r = serve(spec, gpu, gpus=int(s.get("tp", case.gpus)), precision=s.get("precision"), users=1,
                      context_tokens=min(4096, spec.max_context_tokens or 4096), speed=False)
            return float(r.memory_per_gpu.weights)
        return float(weight_bytes(spec, s["precision"], include_mtp=bool(s.get("include_mtp"))))
    if est == "serve":
        r = _serve(case, spec, gpu, speed=q == "decode_tokens_per_s")
        if q == "decode_tokens_per_s":
            if r.decode_tokens_per_s_total is None:
                raise ValueError(f"{case.id}: no decode speed (the scenario does not fit)")
            return float(r.decode_tokens_per_s_total)
        if q == "fits":
            return bool(r.fits)
        if q == "kv_blocks":
            return r.kv_cache_capacity_tokens / int(s.get("block_size", r.block_size or 16))
        if q == "kv_tokens":
            return float(r.kv_cache_capacity_tokens)
        m = r.memory_per_gpu
        if q in ("allocated", "reserved"):
            return float(m.weights + m.kv_cache + m.activations)
        if q == "device":
            return float(m.total)
        raise ValueError(f"{case.id}: serve cannot give quantity {q!r}")
    if est == "finetune":
        m = finetune_memory(spec, finetune_setup(s, case.framework), gpu)
        if q == "fits":
            return bool(m.fits)
        if q not in ("allocated", "reserved", "device"):
            raise ValueError(f"{case.id}: finetune cannot give quantity {q!r}")
        return float({"allocated": m.allocated, "reserved": m.reserved, "device": m.total}[q])
    if (est in ("throughput", "time") and s.get("zero") == 3 and case.extra.get("global_batch_size")
            and case.gpus > gpu.node_gpus_max):
        # ZeRO-3 data parallelism across nodes: the parameter gathers and gradient reduce-scatters go
        # over the node network, which only the planner's step time models (compute_hours leaves it out)
        return tokens_per_s_to_quantity(case, spec, gpu, _zero3_tokens_per_s_per_gpu(case, spec, gpu, s))
    if est in ("throughput", "time"):
        tps = tokens_per_s_per_gpu(spec, finetune_setup(s), gpu, include_mtp=bool(case.extra.get("include_mtp")))
        return tokens_per_s_to_quantity(case, spec, gpu, tps)
    raise ValueError(f"{case.id}: unknown estimator {est!r}")


def _zero3_tokens_per_s_per_gpu(case: Case, spec, gpu, s: dict) -> float:
    """Tokens/s per GPU from the planner's step time (compute + ZeRO-3 communication) at the case's batch."""
    seq = int(s["seq_len"])
    global_tokens = int(case.extra["global_batch_size"]) * seq
    p = planner.evaluate_training_layout(spec, s.get("method", "full"), gpu, f"{global_tokens * 10} tokens", gpus=case.gpus,
                                tp=1, pp=1, zero=3, offload="none", micro_batch=int(s["micro_batch"]),
                                gradient_checkpointing=bool(s.get("gradient_checkpointing", True)), seq_len=seq,
                                deadline="1000d", precision=s.get("precision", "mixed-bf16"),
                                assumptions={"global_batch_tokens": global_tokens,
                                         "planner_fit_on_range_high": False})   # timed, not sized
    t = p.time
    step_s = (t.compute_s + t.comm_s + t.quantization_s + t.bubble_s + t.offload_s) / t.steps
    return global_tokens / step_s / case.gpus


def other_estimate(method: str, case: Case, spec, gpu) -> Any:
    """A method's estimate in the case's base units, or None where it does not apply."""
    v = others.estimate(method, case, spec, gpu)
    if v is None or case.estimator not in ("throughput", "time"):
        return v
    return tokens_per_s_to_quantity(case, spec, gpu, v)


# ----------------------------------------------------------------------------- scoring


def error_pct(predicted: float, measured: float) -> float:
    """Signed error of a prediction in percent of the measurement."""
    return (predicted - measured) / measured * 100.0


def bound_ok(case: Case, predicted: Any) -> bool | None:
    """Whether a prediction respects a bound case (None when there is no prediction)."""
    if predicted is None:
        return None
    if case.quantity == "fits":
        return bool(predicted) == bool(case.value)
    limit = case.measured_base
    return predicted < limit if case.bound == "upper" else predicted > limit


@dataclass(frozen=True)
class Estimate:
    """One method's estimate for one case."""

    value: Any = None          # base units; bool for fits; None: does not apply
    error_pct: float | None = None
    ok: bool | None = None     # bounds only
    error: str = ""            # why it could not be computed (an exception message)

    def to_dict(self, unit_factor: float) -> dict[str, Any]:
        v = self.value
        shown = v if isinstance(v, bool) or v is None else v / unit_factor
        return {"estimate": shown, "error_pct": self.error_pct, "ok": self.ok, "failed": self.error or None}


@dataclass(frozen=True)
class Row:
    """One case with every estimate."""

    case: Case
    estimates: Mapping[str, Estimate]   # "ours" and each other method
    in_sample: tuple[str, ...] = ()

    @property
    def is_bound(self) -> bool:
        return self.case.bound is not None or self.case.quantity == "fits"

    def to_dict(self) -> dict[str, Any]:
        c = self.case
        f = UNITS.get(c.unit, 1.0)
        return {
            "id": c.id, "category": c.category, "label": c.label, "quantity": c.quantity, "unit": c.unit,
            "measured": c.value, "bound": c.bound, "confidence": c.confidence, "supported": c.supported,
            "reason": c.reason, "origin": c.origin, "model": c.model, "gpu": c.gpu, "gpus": c.gpus,
            "in_sample": list(self.in_sample),
            "ours": self.estimates[OURS].to_dict(f) if OURS in self.estimates else None,
            "others": {k: v.to_dict(f) for k, v in self.estimates.items() if k != OURS},
            "source": c.source,
        }


def _score(case: Case, fn) -> Estimate:
    try:
        v = fn()
    except (SizingError, ValueError, KeyError, ZeroDivisionError, ImportError) as exc:
        return Estimate(error=f"{type(exc).__name__}: {' '.join(str(exc).split())}")
    if v is None:
        return Estimate()
    if case.bound is not None or case.quantity == "fits":
        return Estimate(value=v, ok=bound_ok(case, v))
    measured = case.measured_base
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return Estimate(error=f"non-numeric estimate {v!r}")
    return Estimate(value=float(v), error_pct=error_pct(float(v), measured))


_ID = r"[ABCD]-[A-Za-z0-9_.*-]*[A-Za-z0-9*]"


@lru_cache(maxsize=1)
def _calibrated_ids() -> dict[str, tuple[str, ...]]:
    """Calibration id -> our assumptions whose source names it.

    A source names ids literally, with a ``*`` wildcard (``C-llmfoundry-*``), or as a range
    ``A ... B`` (every calibration id from A to B in the order of the validation set).
    """
    order: list[str] = []
    for c in load_cases():
        if c.calibration_id and c.calibration_id not in order:
            order.append(c.calibration_id)
    found: dict[str, set[str]] = {}
    for name, a in registry().items():
        text = f"{a.source} {a.help}"
        ids: set[str] = set()
        for lo, hi in re.findall(rf"({_ID})\s*(?:\.\.\.|…)\s*({_ID})", text):
            if lo in order and hi in order:
                ids.update(order[order.index(lo):order.index(hi) + 1])
        for token in re.findall(_ID, text):
            ids.update(fnmatch.filter(order, token) if "*" in token else ([token] if token in order else []))
        for cid in ids:
            found.setdefault(cid, set()).add(name)
    return {k: tuple(sorted(v)) for k, v in found.items()}


def in_sample(case: Case) -> tuple[str, ...]:
    """Our assumptions whose source names this case's calibration id (calibrated on it)."""
    return _calibrated_ids().get(case.calibration_id or "", ())


def run_case(case: Case, methods: Sequence[str] = others.METHOD_NAMES) -> Row:
    """Every estimate for one case (unsupported cases get none)."""
    if not case.supported:
        return Row(case, {})
    try:
        spec = model_spec(case)
        gpu = _gpu(case)
    except SizingError as exc:
        return Row(case, {OURS: Estimate(error=f"{type(exc).__name__}: {exc}")})
    estimates = {OURS: _score(case, lambda: ours(case, spec, gpu))}
    for m in methods:
        estimates[m] = _score(case, lambda m=m: other_estimate(m, case, spec, gpu))
    return Row(case, estimates, in_sample(case))


# ----------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Summary:
    """One method on one category, over the cases that method covers."""

    category: str
    method: str
    n: int
    median_abs_error_pct: float | None
    max_abs_error_pct: float | None
    within_10: int
    within_20: int
    satisfied: int | None = None     # bounds only
    out_of_sample: int | None = None  # ours only: cases none of our assumptions was calibrated on
    out_of_sample_median_abs_error_pct: float | None = None  # ours only: median |error| on those

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(rows: Iterable[Row], category: str, method: str) -> Summary | None:
    """Summary statistics of ``method`` on the ``category`` rows it covers (None if it covers none)."""
    rows = [r for r in rows if r.case.category == category and r.case.supported]
    errs, sat, n_bounds, oos = [], 0, 0, []
    for r in rows:
        e = r.estimates.get(method)
        if e is None:
            continue
        if r.is_bound:
            if e.ok is not None:
                n_bounds += 1
                sat += bool(e.ok)
            continue
        if e.error_pct is not None:
            errs.append(abs(e.error_pct))
            if not r.in_sample:
                oos.append(abs(e.error_pct))
    if not errs and not n_bounds:
        return None
    if not errs:
        return Summary(category, method, n_bounds, None, None, 0, 0, satisfied=sat)
    mine = method == OURS
    return Summary(category, method, len(errs), statistics.median(errs), max(errs),
                   sum(x <= 10 for x in errs), sum(x <= 20 for x in errs),
                   satisfied=sat if n_bounds else None, out_of_sample=len(oos) if mine else None,
                   out_of_sample_median_abs_error_pct=statistics.median(oos) if (mine and oos) else None)


def head_to_head(rows: Iterable[Row], category: str, method: str,
                 out_of_sample: bool = False) -> tuple[int, float, float] | None:
    """(n, our median |error|, the method's median |error|) on the cases both cover
    (``out_of_sample``: only cases none of our assumptions was calibrated on)."""
    ours_e, theirs = [], []
    for r in rows:
        if r.case.category != category or r.is_bound or not r.case.supported:
            continue
        if out_of_sample and r.in_sample:
            continue
        a, b = r.estimates.get(OURS), r.estimates.get(method)
        if a and b and a.error_pct is not None and b.error_pct is not None:
            ours_e.append(abs(a.error_pct))
            theirs.append(abs(b.error_pct))
    if not ours_e:
        return None
    return len(ours_e), statistics.median(ours_e), statistics.median(theirs)


@dataclass
class ValidationResult:
    """Rows and summaries of one validation run."""

    rows: list[Row]
    methods: tuple[str, ...]
    summaries: list[Summary] = field(default_factory=list)

    def rows_in(self, category: str | None = None) -> list[Row]:
        return [r for r in self.rows if category is None or r.case.category == category]

    def summary(self, category: str, method: str = OURS) -> Summary | None:
        for s in self.summaries:
            if s.category == category and s.method == method:
                return s
        return None

    def losses(self) -> list[dict[str, Any]]:
        """Categories where another method's median |error| is at or below ours on the cases both cover."""
        out = []
        for cat in CATEGORIES:
            for m in self.methods:
                h = head_to_head(self.rows, cat, m)
                if h and h[2] <= h[1]:
                    out.append({"category": cat, "method": m, "n": h[0], "ours_median_abs_error_pct": h[1],
                                "method_median_abs_error_pct": h[2]})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": {m.name: {"label": m.label, "source": m.source, "applies_to": m.applies_to}
                        for m in others.METHODS if m.name in self.methods},
            "categories": {c: CATEGORY_LABELS[c] for c in CATEGORIES},
            "rows": [r.to_dict() for r in self.rows],
            "summary": [s.to_dict() for s in self.summaries],
            "head_to_head": [
                {"category": c, "method": m, "n": h[0], "ours_median_abs_error_pct": h[1],
                 "method_median_abs_error_pct": h[2]}
                for c in CATEGORIES for m in self.methods if (h := head_to_head(self.rows, c, m))],
            "losses": self.losses(),
        }


def run_validation(category: str | None = None, cases: Sequence[Case] | None = None,
                   extra_rows: Sequence[Row] = (), methods: Sequence[str] = others.METHOD_NAMES) -> ValidationResult:
    """Run every case (or one category); ``extra_rows`` adds rows computed elsewhere (CPU ground truth)."""
    if category is not None and category not in CATEGORIES:
        raise SizingError(f"unknown category '{category}'; choose one of: {', '.join(CATEGORIES)}")
    cases = load_cases() if cases is None else cases
    rows = [run_case(c, methods) for c in cases if category is None or c.category == category]
    rows += [r for r in extra_rows if category is None or r.case.category == category]
    result = ValidationResult(rows, tuple(methods))
    for cat in CATEGORIES:
        for m in (OURS, *methods):
            s = summarize(rows, cat, m)
            if s:
                result.summaries.append(s)
    return result


STABLE_CATEGORIES = ("params", "weights")  # ours depends only on architecture.py / weights.py there


def golden_document(result: ValidationResult) -> dict[str, Any]:
    """The numbers ``tests/test_validation.py`` pins: every other method's estimate on every case (pure
    published formulas), and ours on the categories whose inputs are architecture facts."""
    doc: dict[str, Any] = {"others": {}, "ours": {}}
    for r in result.rows:
        if not r.case.supported or r.case.category == "cpu-ground-truth":
            continue
        est = {m: e.value for m, e in r.estimates.items() if m != OURS and e.value is not None}
        if est:
            doc["others"][r.case.id] = est
        if r.case.category in STABLE_CATEGORIES and r.estimates[OURS].value is not None:
            doc["ours"][r.case.id] = r.estimates[OURS].value
    return doc

"""The validation set: load, check and convert the cases in ``cases.yaml`` and ``measured/*.yaml``.

A case is one published (or own) measurement with the configuration that produced it; the format
is documented at the top of ``cases.yaml``. This module only reads and checks: every key is known,
every supported case names an estimator, a model and a quantity we can compare, and each measured
value converts to base units (bytes, counts, tokens/s, FLOP/s, fractions, seconds, GPU-seconds).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from llmsizing import catalog
from llmsizing.catalog import read_yaml_file
from llmsizing.choices import FRAMEWORKS
from llmsizing.errors import CatalogError
from llmsizing.specs import model_spec_from_config
from llmsizing.units import GB, GiB, MiB, TB

VALIDATION_DIR = Path(__file__).parent
CASES_FILE = VALIDATION_DIR / "cases.yaml"
OOS_FINETUNE_FILE = VALIDATION_DIR / "cases_oos_finetune.yaml"   # out-of-sample fine-tune memory cases
MEASURED_DIR = VALIDATION_DIR / "measured"

CATEGORIES = ("finetune-memory", "serving-kv-capacity", "serving-memory", "serving-speed", "weights", "throughput",
              "time", "params", "bounds", "cpu-ground-truth")
CATEGORY_LABELS = {
    "finetune-memory": "fine-tune memory",
    "serving-kv-capacity": "serving KV capacity",
    "serving-memory": "serving memory",
    "serving-speed": "serving decode speed",
    "weights": "weights and file sizes",
    "throughput": "training throughput",
    "time": "training time",
    "params": "parameter counts",
    "bounds": "bounds and feasibility",
    "cpu-ground-truth": "cpu ground truth",
}
QUANTITIES = (
    "allocated", "reserved", "device", "kv_blocks", "kv_tokens", "weight_bytes", "weight_bytes_per_rank", "file_bytes",
    "params", "tokens_per_s", "tokens_per_s_per_gpu", "tflop_per_s_per_gpu", "mfu", "s_per_iter", "hours",
    "gpu_hours", "fits", "formula", "decode_tokens_per_s",
    # cpu-ground-truth rows (validation/groundtruth.py)
    "trainable_params", "gradient_bytes", "optimizer_bytes", "layer_activation_bytes",
)
ESTIMATORS = ("params", "weights", "serve", "finetune", "throughput", "time")

# Published unit -> factor to the base unit of the quantity (bytes, count, tokens/s, FLOP/s, fraction, s, GPU-s).
UNITS: dict[str, float] = {
    "GiB": GiB, "GB": GB, "MiB": MiB, "TB": TB, "bytes": 1.0,
    "blocks": 1.0, "tokens": 1.0, "params": 1.0, "billion": 1e9,
    "tokens/s": 1.0, "TFLOP/s": 1e12, "%": 0.01, "fraction": 1.0,
    "s": 1.0, "hours": 3600.0, "thousand GPU-hours": 3.6e6, "million GPU-hours": 3.6e9, "GPU-hours": 3600.0,
    "fits": 1.0,
}

CASE_KEYS = {
    "id", "calibration_id", "category", "supported", "reason", "quantity", "measured", "estimator", "model",
    "model_config", "gpu", "gpus", "setup", "extra", "confidence", "source", "quote", "notes", "published", "origin",
    "framework", "in_sample", "prediction_before",
}
REQUIRED_KEYS = {"id", "category", "supported", "quantity", "measured", "confidence", "source"}


@dataclass(frozen=True)
class Case:
    """One validation case (see the format at the top of ``cases.yaml``)."""

    id: str
    calibration_id: str | None
    category: str
    supported: bool
    reason: str
    quantity: str
    value: Any                     # as published
    unit: str
    bound: str | None              # upper | lower | None
    range: tuple[float, float] | None
    estimator: str | None
    model: str | None
    model_config: Mapping[str, Any] | None
    gpu: str | None
    gpus: int
    setup: Mapping[str, Any]
    extra: Mapping[str, Any]
    confidence: str
    source: str
    quote: str
    notes: str
    origin: str = "published"
    published: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    framework: str | None = None   # training stack (choices.FRAMEWORKS); None: the estimator's default
    in_sample: bool = True         # False: no constant was fitted on it (scored apart)
    prediction_before: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def measured_base(self) -> float | bool | None:
        """The measured value in base units (bool for ``fits``), None when not numeric."""
        if self.quantity == "fits":
            return bool(self.value)
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            return None
        return float(self.value) * UNITS[self.unit]

    @property
    def label(self) -> str:
        return CATEGORY_LABELS.get(self.category, self.category)


def _case(data: Mapping[str, Any], where: str) -> Case:
    if not isinstance(data, Mapping):
        raise CatalogError(f"{where}: a case must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - CASE_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(CASE_KEYS))})")
    missing = sorted(REQUIRED_KEYS - set(data))
    if missing:
        raise CatalogError(f"{where}: missing key '{missing[0]}'")
    cid = str(data["id"])
    where = f"{where} ({cid})"
    if data["category"] not in CATEGORIES:
        raise CatalogError(f"{where}: category {data['category']!r} is not one of {', '.join(CATEGORIES)}")
    if data["quantity"] not in QUANTITIES:
        raise CatalogError(f"{where}: quantity {data['quantity']!r} is not one of {', '.join(QUANTITIES)}")
    measured = data["measured"]
    if not isinstance(measured, Mapping) or "value" not in measured or "unit" not in measured:
        raise CatalogError(f"{where}: 'measured' needs 'value' and 'unit'")
    supported = bool(data["supported"])
    bound = measured.get("bound")
    if bound not in (None, "upper", "lower"):
        raise CatalogError(f"{where}: measured.bound must be upper or lower, got {bound!r}")
    rng = measured.get("range")
    if supported:
        if data.get("estimator") not in ESTIMATORS:
            raise CatalogError(f"{where}: estimator {data.get('estimator')!r} is not one of {', '.join(ESTIMATORS)}")
        if not data.get("model") and not data.get("model_config"):
            raise CatalogError(f"{where}: a supported case needs 'model' or 'model_config'")
        unit = measured["unit"]
        if unit not in UNITS:
            raise CatalogError(f"{where}: unit {unit!r} is not one of {', '.join(UNITS)}")
        value = measured["value"]
        if data["quantity"] == "fits":
            if not isinstance(value, bool):
                raise CatalogError(f"{where}: a 'fits' case needs value true or false")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise CatalogError(f"{where}: measured value must be a positive number, got {value!r}")
    elif not str(data.get("reason") or "").strip():
        raise CatalogError(f"{where}: an unsupported case needs a 'reason'")
    framework = data.get("framework")
    if framework is not None and framework not in FRAMEWORKS:
        raise CatalogError(f"{where}: framework {framework!r} is not one of {', '.join(FRAMEWORKS)}")
    in_sample = data.get("in_sample", True)
    if not isinstance(in_sample, bool):
        raise CatalogError(f"{where}: in_sample must be true or false, got {in_sample!r}")
    return Case(
        id=cid, calibration_id=data.get("calibration_id"), category=data["category"], supported=supported,
        reason=str(data.get("reason") or ""), quantity=data["quantity"], value=measured["value"],
        unit=str(measured["unit"]), bound=bound, range=tuple(rng) if rng else None,
        estimator=data.get("estimator"), model=data.get("model"), model_config=data.get("model_config"),
        gpu=data.get("gpu"), gpus=int(data.get("gpus") or 1), setup=dict(data.get("setup") or {}),
        extra=dict(data.get("extra") or {}), confidence=str(data["confidence"]), source=str(data["source"]),
        quote=str(data.get("quote") or ""), notes=str(data.get("notes") or ""),
        origin=str(data.get("origin") or "published"), published=dict(data.get("published") or {}),
        framework=framework, in_sample=in_sample, prediction_before=dict(data.get("prediction_before") or {}),
    )


@lru_cache(maxsize=1)
def load_cases() -> tuple[Case, ...]:
    """Every case: ``cases.yaml`` first, then ``cases_oos_finetune.yaml``, then ``measured/*.yaml`` (one case
    per file) by file name."""
    cases = []
    for path in (CASES_FILE, OOS_FINETUNE_FILE):
        data = read_yaml_file(path)
        if not isinstance(data, list):
            raise CatalogError(f"{path}: expected a list of cases")
        cases += [_case(d, f"{path}: case {i}") for i, d in enumerate(data)]
    if MEASURED_DIR.is_dir():
        for path in sorted(MEASURED_DIR.glob("*.yaml")):
            cases.extend(load_case_file(path))
    seen: set[str] = set()
    for c in cases:
        if c.id in seen:
            raise CatalogError(f"validation case id '{c.id}' appears twice")
        seen.add(c.id)
    return tuple(cases)


def load_case_file(path: Path) -> list[Case]:
    """The cases of one file of ``measured/`` (a case or a list of cases), checked."""
    d = read_yaml_file(Path(path))
    return [_case(item, f"{path}: case {i}") for i, item in enumerate(d if isinstance(d, list) else [d])]


def model_spec(case: Case):
    """The ModelSpec a case runs on: catalog slug, ``configs/<file>.json``, or an inline config."""
    if case.model_config:
        return model_spec_from_config(dict(case.model_config), slug=case.id, name=case.id, where=f"case {case.id}")
    name = str(case.model)
    if name.startswith("configs/"):
        return _config_spec(name)
    return catalog.load_model(name)


@lru_cache(maxsize=64)
def _config_spec(name: str):
    """A spec from ``configs/<file>.json``, its slug the file's stem (``configs/llama-2-7b.json`` -> llama-2-7b)."""
    path = VALIDATION_DIR / name
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{path}: cannot read model config ({exc})") from None
    return model_spec_from_config(cfg, slug=path.stem, name=str(cfg.get("_name_or_path") or path.stem), where=str(path))

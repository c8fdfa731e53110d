"""How the report writes a value, in its language: sizes, times, money, counts and readable names.

One function per kind of value, shared by tables, narrative and figures; each reads the active
report language (:mod:`llmsizing.report.i18n`). Numbers never use exponent notation, and a number
is joined to its unit by a no-break space, so a line never breaks between them.
"""

from __future__ import annotations

import math
import re
from typing import Any

from llmsizing import catalog
from llmsizing.report.i18n import N_, _, date, integer, num, unit
from llmsizing.units import GB, GiB

__all__ = ["DASH", "count", "date", "deadline", "gb", "gib", "gpu_label", "hours", "language_name", "method_name",
           "precision_name", "public_source", "tokens", "usd", "value"]

DASH = "—"

_METHODS = {"lora": N_("LoRA"), "qlora": N_("QLoRA"), "full": N_("full fine-tuning")}
_LANGUAGES = {"en": N_("English text"), "zh": N_("Chinese text"), "code": N_("source code"),
              "mixed": N_("mixed Chinese/English text")}
_PRECISIONS = {"bf16": "BF16", "fp16": "FP16", "fp8": "FP8", "fp32": "FP32", "int8": "INT8", "int4": "INT4",
               "nf4": "NF4", "mixed-bf16": N_("mixed BF16/FP32"), "auto": N_("engine default")}
_CATEGORIES = {"finetune-memory": N_("fine-tune memory"), "serving-kv-capacity": N_("serving KV capacity"),
               "serving-memory": N_("serving memory"), "serving-speed": N_("serving decode speed"),
               "weights": N_("weights and file sizes"), "throughput": N_("training throughput"),
               "time": N_("training time"), "params": N_("parameter counts"),
               "bounds": N_("bounds and feasibility"), "cpu-ground-truth": N_("CPU ground truth")}


def gpu_label(slug: str) -> str:
    """Short display name of a catalog GPU ("H100 SXM5 80GB")."""
    try:
        name = catalog.load_gpu(slug).name
    except Exception:  # noqa: BLE001 - a label must never fail a report
        return slug
    return re.sub(r"^(NVIDIA|AMD|Intel|Huawei)\s+(GeForce\s+)?", "", name)


def number(x: float | None, digits: int = 1) -> str:
    """A plain number ("1,234.5"), or a dash for none."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return DASH
    return num(x, digits)


def gib(n_bytes: float | None, digits: int = 1, with_unit: bool = False) -> str:
    """Bytes in GiB ("626.9", or "626.9 GiB")."""
    if n_bytes is None:
        return DASH
    text = num(n_bytes / GiB, digits)
    return unit(text, "GiB") if with_unit else text


def gb(n_bytes: float | None, digits: int = 0, with_unit: bool = False) -> str:
    """Bytes in GB (10^9)."""
    if n_bytes is None:
        return DASH
    text = num(n_bytes / GB, digits)
    return unit(text, "GB") if with_unit else text


def hours(h: float | None) -> str:
    """A duration for people: minutes below an hour, days above 48 h."""
    if h is None or not math.isfinite(h):
        return DASH
    if h * 60 < 0.05:
        return _("< 0.1 min")
    if h < 1:
        return unit(num(h * 60, 1), _("min"))
    if h > 48:
        return unit(num(h / 24, 1), _("days"))
    return unit(num(h, 1), _("h"))


def deadline(h: float) -> str:
    """The deadline ("24 h", "3.0 days")."""
    return unit(num(h, 0 if float(h).is_integer() else 1), _("h")) if h < 48 else hours(h)


def usd(x: float | None, with_unit: bool = False) -> str:
    """US dollars: whole dollars from 100 up, cents below."""
    if x is None or not math.isfinite(x):
        return DASH
    text = num(x, 0 if x >= 100 else 2)
    return _("USD {amount}").format(amount=text).replace(" ", "\u00a0") if with_unit else text


def count(n: float | None) -> str:
    """A large count with a K/M/B/T suffix (parameters, tokens)."""
    if n is None:
        return DASH
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{num(n / div, 2)}{suffix}"
    return integer(n)


def tokens(n: int) -> str:
    """A context length ("32,768")."""
    return integer(n)


def method_name(method: str) -> str:
    """'LoRA', 'QLoRA' or 'full fine-tuning'."""
    return _(_METHODS[method]) if method in _METHODS else method


def language_name(code: str) -> str:
    """What kind of text a data size counts."""
    return _(_LANGUAGES[code]) if code in _LANGUAGES else code


def precision_name(slug: str | None) -> str:
    """'FP8', 'BF16', 'NF4' ..."""
    if not slug:
        return DASH
    label = _PRECISIONS.get(slug)
    if label is not None:
        return _(label) if label[0].islower() else label
    try:
        # the catalog's name starts with the format people know: "FP8 E4M3, 128x128 block scales" -> "FP8"
        words = catalog.load_precision(slug).name.replace(",", " ").split()
        return " ".join(words[:2]) if words[0] == "GGUF" else words[0]
    except Exception:  # noqa: BLE001 - a label must never fail a report
        return slug.upper()


def category_name(code: str) -> str:
    """A validation category for people."""
    return _(_CATEGORIES[code]) if code in _CATEGORIES else code.replace("-", " ")


# Validation case ids ("C-llmfoundry-mpt7b-h100-8gpu-2k", "C-megatron-1.7b ... C-megatron-1008b") are keys of the
# validation set, not sources: the report keeps the public reference they cite.
_CASE_IDS = re.compile(r"(?:\bC-[A-Za-z0-9][\w.*/+-]*(?:\s*(?:,|\.\.\.|and|;)\s*)?)+")


def public_source(text: str) -> str:
    """A source text without internal case keys."""
    out = _CASE_IDS.sub(" ", text)
    out = re.sub(r"\(\s*\)", "", out)
    out = re.sub(r"\s+([,;.)])", r"\1", out)
    out = re.sub(r"([(;,])\s*[,;]", r"\1", out)
    return " ".join(out.split()).strip(" ,;")


def value(v: Any, unit_name: str) -> str:
    """An assumption's value: never exponent notation, large byte counts in GiB."""
    if isinstance(v, bool):
        return _("yes") if v else _("no")
    if isinstance(v, (int, float)) and unit_name == "bytes" and v >= 2**20:
        return gib(v, 2, with_unit=True)
    if isinstance(v, int):
        return integer(v)
    if isinstance(v, float):
        if v == 0:
            return "0"
        digits = max(0, min(6, 3 - int(math.floor(math.log10(abs(v))))))
        text = num(v, digits)
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    if isinstance(v, (dict, list, tuple)):
        items = v.items() if isinstance(v, dict) else enumerate(v)
        return "; ".join(f"{k}: {value(x, unit_name)}" for k, x in items)
    return str(v)

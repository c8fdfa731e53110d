"""Units: base-unit constants, parsing of human sizes and durations, explicit formatting.

Inside the library every quantity is a plain number in base units: bytes, FLOP, seconds,
bytes per second, FLOP per second. Conversion happens only at the edges (catalog loading,
command-line parsing, formatting for people). Sizes shown to people always say GiB (2^30)
or GB (10^9); never a bare "G".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from llmsizing.errors import ScenarioError

KB = 10**3
MB = 10**6
GB = 10**9
TB = 10**12
KiB = 2**10
MiB = 2**20
GiB = 2**30
TiB = 2**40

TERA = 10**12
GIGA = 10**9

SECONDS_PER_HOUR = 3600.0
SECONDS_PER_DAY = 86400.0

_DECIMAL = {"": 1, "K": KB, "M": MB, "G": GB, "T": TB, "P": 10**15}
_BINARY = {"KI": KiB, "MI": MiB, "GI": GiB, "TI": TiB, "PI": 2**50}

DATA_UNITS = ("bytes", "tokens", "samples")

DATA_FORMS = (
    "a number with an optional K/M/G/T (10^3..10^12) or KiB..TiB suffix and a unit: "
    "bytes of text ('1GB', '100 GB', '1G'), tokens ('15.6T tokens') or samples ('1K samples')"
)

_SIZE_RE = re.compile(
    r"^\s*(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE](?P<exp>[+-]?[0-9]+))?\s*"
    r"(?P<prefix>[KkMmGgTtPp][Ii]?)?\s*(?P<unit>[A-Za-z]*)\s*$"
)


_BYTE_WORDS = ("", "b", "byte", "bytes")
_TOKEN_WORDS = ("token", "tokens", "tok")
_SAMPLE_WORDS = ("sample", "samples", "examples", "rows")
_UNIT_WORDS = frozenset(_BYTE_WORDS + _TOKEN_WORDS + _SAMPLE_WORDS) - {""}


_BILLION_COUNT_RE = re.compile(r"([0-9.])\s*[Bb]\s+(tokens?|tok|samples?|examples|rows)\s*$")


@dataclass(frozen=True)
class DataSize:
    """A dataset size: ``amount`` of ``unit`` (bytes of raw text, tokens or samples)."""

    amount: float
    unit: str  # one of DATA_UNITS
    text: str  # what the user wrote, for reports


_TOKENS_RE = re.compile(r"^\s*(?P<num>[0-9]+(?:\.[0-9]*)?)\s*(?P<prefix>[KkMm]i?)?\s*(?:tokens?)?\s*$")
#: Largest token count accepted anywhere (context, prompt, sequence length): 16Mi tokens.
MAX_TOKENS = 16 * 1024**2


def parse_tokens(value: str | int | float, what: str = "token count") -> int:
    """A token count: ``32768``, ``'32K'``, ``'32Ki'``, ``'128K tokens'``, ``'1M'``.

    ``K``/``M`` are 1024 and 1024², as context windows are quoted ("a 128K context" = 131,072 tokens);
    ``Ki``/``Mi`` mean the same. Whole numbers from 1 to 16Mi tokens. The one token-count parser of the
    command line and the scenario files.
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
            raise ScenarioError(f"cannot parse token count {value!r}; write an integer or e.g. 32768, '32K', '128K tokens'")
        prefix = (m.group("prefix") or "").upper().rstrip("I")
        n_float = float(m.group("num")) * {"": 1, "K": 1024, "M": 1024**2}[prefix]
        if not n_float.is_integer():
            raise ScenarioError(f"token count {value!r} is not a whole number of tokens")
        n = int(n_float)
    else:
        raise ScenarioError(f"token count {value!r} is not a number")
    if n < 1:
        raise ScenarioError(f"{what} must be a positive integer (between 1 and 16M tokens), got {value}")
    if n > MAX_TOKENS:
        raise ScenarioError(f"{what} {value!r} exceeds the largest accepted, 16M tokens ({MAX_TOKENS:,})")
    return n


#: Accepted range of each count a user types (command line and scenario files share these).
#: Lower bounds are 1; the upper bounds are far beyond any real deployment and keep every later
#: computation finite (no float overflow, no 10^19-node plans).
COUNT_RANGES: dict[str, tuple[int, int]] = {
    "users": (1, 1_000_000),
    "gpus": (1, 100_000),
    "micro-batch": (1, 65_536),
    "tp": (1, 1024),
    "pp": (1, 1024),
    "ep": (1, 1024),
    "lora-rank": (1, 65_536),
    "max-num-seqs": (1, 1_000_000),
}
#: Largest dataset accepted, in its own unit (bytes, tokens or samples): 10^18, an exabyte of text.
MAX_DATA_AMOUNT = 1e18
#: GPU memory a ``--gpu-memory`` / ``gpu_memory`` override may state: 1 GiB to 64 TiB.
GPU_MEMORY_RANGE_BYTES = (GiB, 64 * TiB)

_COUNT_TEXT_RE = re.compile(r"^\s*[-+]?[0-9]+\s*$")
_COUNT_FLOAT_RE = re.compile(r"^\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*$")


def shown_value(value: object, limit: int = 40) -> str:
    """``repr`` of a user value, shortened in the middle (a 4,000-digit number is not echoed whole)."""
    text = value if isinstance(value, str) else None
    if text is None:
        text = f"{len(str(value))}-digit integer" if isinstance(value, int) and abs(value) > 10**limit else str(value)
        return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2:]}"
    text = repr(text)
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2:]} ({len(value)} characters)"


def count_range(what: str) -> tuple[int, int]:
    """The accepted range of the count ``what`` (a key of :data:`COUNT_RANGES`)."""
    return COUNT_RANGES[what.replace("_", "-")]


def parse_count(value: object, what: str, lo: int | None = None, hi: int | None = None) -> int:
    """A whole count from ``lo`` to ``hi`` (default: :data:`COUNT_RANGES` of ``what``): an int, an integral
    float, or text of digits (``'8'``, ``'1e3'``). The one count parser of the command line and the scenarios.

    Never overflows: a 4,000-digit integer or ``1e308`` is compared as an exact integer or refused as
    text, never converted to a float; ``nan``, ``inf`` and booleans are refused.
    """
    if lo is None or hi is None:
        lo, hi = count_range(what)
    shown = value.strip() if isinstance(value, str) and _COUNT_TEXT_RE.match(value) and len(value) <= 40 \
        else shown_value(value)
    bad = f"{what} must be a positive integer, got {shown}; accepted: {lo:,} to {hi:,}"
    n: int
    if isinstance(value, bool):
        raise ScenarioError(bad)
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ScenarioError(bad)
        if not lo <= value <= hi:
            raise ScenarioError(bad)
        n = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if _COUNT_TEXT_RE.match(text):
            digits = text.lstrip("+-").lstrip("0")
            if len(digits) > len(str(hi)):  # too long to be in range: refused without converting
                raise ScenarioError(bad)
            n = int(text)
        elif _COUNT_FLOAT_RE.match(text):
            f = float(text)  # '1e400' is inf, never an OverflowError
            if not math.isfinite(f) or not f.is_integer() or not lo <= f <= hi:
                raise ScenarioError(bad)
            n = int(f)
        else:
            raise ScenarioError(f"cannot parse {what} {shown_value(value)}: write a whole number from {lo:,} to {hi:,}")
    else:
        raise ScenarioError(bad)
    if not lo <= n <= hi:
        raise ScenarioError(bad)
    return n


_INT_RE = re.compile(r"^[-+]?[0-9]{1,30}$")
_FLOAT_RE = re.compile(r"^[-+]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][-+]?[0-9]{1,2})?$")


def parse_scalar(text: str) -> int | float | bool | str:
    """A command-line value as YAML 1.2 core would read it: integer, decimal, ``true``/``false``, else text.

    Integers longer than 30 digits and exponents beyond two digits stay text (the consumer then names
    the bad value); nothing here overflows.
    """
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if _INT_RE.match(text.strip()):
        return int(text)
    if _FLOAT_RE.match(text.strip()):
        return float(text)
    return text


def parse_data_size(text: str | int | float) -> DataSize:
    """Parse a dataset size such as ``1K``, ``1GB``, ``100 GB``, ``15.6T tokens``, ``1K samples``.

    A bare number or a bare prefix (``1G``) means bytes of raw text, as in the customer's
    request. Raises ``ScenarioError`` naming the accepted forms on anything else.
    """
    if isinstance(text, bool):
        raise ScenarioError(f"data size {text!r} is not a size; accepted: {DATA_FORMS}")
    if isinstance(text, (int, float)):
        value = float(text)
        unit = "bytes"
        raw = str(text)
    else:
        raw = str(text)
        # "1B tokens" / "2.5B samples": B means billion for counts (for bytes, "1B" is one byte)
        m = _SIZE_RE.match(_BILLION_COUNT_RE.sub(r"\1G \2", raw))
        if not m:
            raise ScenarioError(f"cannot parse data size {raw!r}; accepted: {DATA_FORMS}")
        # float() of the text, not 10 ** exp: '1e400' becomes inf (refused below), not an OverflowError.
        value = float(m.group("num") + (f"e{m.group('exp')}" if m.group("exp") else ""))
        prefix = (m.group("prefix") or "").upper()
        word = m.group("unit").lower()
        if prefix and word not in _UNIT_WORDS and (m.group("prefix") + m.group("unit")).lower() in _UNIT_WORDS:
            prefix, word = "", (m.group("prefix") + m.group("unit")).lower()  # '1 tokens': 't' is not tera
        mult = _BINARY[prefix] if prefix in _BINARY else _DECIMAL[prefix]
        if word in _BYTE_WORDS:
            unit = "bytes"
        elif word in _TOKEN_WORDS:
            unit = "tokens"
        elif word in _SAMPLE_WORDS:
            unit = "samples"
        else:
            raise ScenarioError(f"unknown unit {m.group('unit')!r} in data size {raw!r}; accepted: {DATA_FORMS}")
        value *= mult
    if not math.isfinite(value) or value <= 0:
        raise ScenarioError(f"data size {shown_value(raw)} must be a positive finite amount; accepted: {DATA_FORMS}")
    one = {"bytes": "byte", "tokens": "token", "samples": "sample"}[unit]
    if value < 1:
        raise ScenarioError(f"data size {shown_value(raw)} is below one {one} (less than one token); "
                            f"accepted: {DATA_FORMS}")
    if value > MAX_DATA_AMOUNT:
        raise ScenarioError(f"data size {shown_value(raw)} is above the largest accepted, {MAX_DATA_AMOUNT:.0e} "
                            f"{unit}; accepted: {DATA_FORMS}")
    return DataSize(amount=value, unit=unit, text=raw)


_DUR_RE = re.compile(r"^\s*(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>[A-Za-z]*)\s*$")
_DUR_UNITS = {
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0, "": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}
DURATION_FORMS = "a positive number with s, m, h (default), d or w, e.g. '24h', '1d', '90m'"


def parse_duration_s(text: str | int | float) -> float:
    """Parse a duration (``24h``, ``1d``, ``90m``; a bare number is hours) into seconds."""
    if isinstance(text, bool):
        raise ScenarioError(f"duration {text!r} is not a duration; accepted: {DURATION_FORMS}")
    if isinstance(text, (int, float)):
        seconds = float(text) * 3600.0
        raw = str(text)
    else:
        raw = str(text)
        m = _DUR_RE.match(raw)
        if not m or m.group("unit").lower() not in _DUR_UNITS:
            raise ScenarioError(f"cannot parse duration {raw!r}; accepted: {DURATION_FORMS}")
        seconds = float(m.group("num")) * _DUR_UNITS[m.group("unit").lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ScenarioError(f"duration {raw!r} must be positive; accepted: {DURATION_FORMS}")
    return seconds


LATENCY_FORMS = "a positive number with ms or s, e.g. '50ms' or '2s'"


def parse_latency_s(text: str | int | float, what: str = "latency") -> float:
    """Parse a latency target (``50ms``, ``2s``, ``0.5 s``) into seconds; a unit is required."""
    raw = str(text)
    m = _LAT_RE.match(raw) if isinstance(text, str) else None
    if not m:
        raise ScenarioError(f"cannot parse {what} {raw!r}; accepted: {LATENCY_FORMS}")
    seconds = float(m.group("num")) * (1e-3 if m.group("unit").lower() == "ms" else 1.0)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ScenarioError(f"{what} {raw!r} must be positive; accepted: {LATENCY_FORMS}")
    return seconds


_LAT_RE = re.compile(r"^\s*(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>ms|s)\s*$", re.I)
_MEM_RE = re.compile(r"^\s*(?P<num>[0-9]+(?:\.[0-9]*)?)\s*(?P<unit>GiB|GB|MiB|MB|TiB|TB)\s*$", re.I)


def parse_memory_bytes(text: str, what: str = "memory size",
                       bounds: tuple[float, float] | None = None) -> int:
    """Parse a memory capacity that states its unit explicitly (``24GiB``, ``80 GB``), optionally within
    ``bounds`` (bytes; e.g. :data:`GPU_MEMORY_RANGE_BYTES`). Never overflows (``1e400GiB`` is refused)."""
    m = _MEM_RE.match(str(text))
    if not m:
        raise ScenarioError(f"cannot parse {what} {shown_value(text)}; write it with GiB or GB, e.g. '24GiB' or '80GB'")
    unit = m.group("unit")
    factor = {"gib": GiB, "gb": GB, "mib": MiB, "mb": MB, "tib": TiB, "tb": TB}[unit.lower()]
    value = float(m.group("num")) * factor
    if value <= 0:
        raise ScenarioError(f"{what} {shown_value(text)} must be positive")
    if bounds is not None:
        lo, hi = bounds
        if value < lo:
            raise ScenarioError(f"{what} {shown_value(text)} is too small: at least {fmt_bytes(lo)} "
                                f"(accepted {fmt_bytes(lo)} to {fmt_bytes(hi)})")
        if value > hi:
            raise ScenarioError(f"{what} {shown_value(text)} is too large: at most {fmt_bytes(hi)}")
    if not math.isfinite(value):
        raise ScenarioError(f"{what} {shown_value(text)} is too large")
    return int(value)


def fmt_gib(n_bytes: float, digits: int = 1) -> str:
    """Format bytes as GiB (2^30), with the unit."""
    return f"{n_bytes / GiB:,.{digits}f} GiB"


def fmt_gb(n_bytes: float, digits: int = 1) -> str:
    """Format bytes as GB (10^9), with the unit."""
    return f"{n_bytes / GB:,.{digits}f} GB"


def fmt_bytes(n_bytes: float) -> str:
    """Format bytes in binary units with an explicit unit (MiB, GiB or TiB)."""
    if n_bytes >= TiB:
        return f"{n_bytes / TiB:,.2f} TiB"
    if n_bytes >= GiB:
        return f"{n_bytes / GiB:,.1f} GiB"
    if n_bytes >= MiB:
        return f"{n_bytes / MiB:,.0f} MiB"
    return f"{n_bytes:,.0f} B"


def fmt_count(n: float) -> str:
    """Format a count with a K/M/B/T suffix (parameters, tokens)."""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:,.2f}{suffix}"
    return f"{n:,.0f}"


def fmt_hours(hours: float) -> str:
    """Format a duration in hours for people (minutes below an hour, days above 48 h)."""
    if not math.isfinite(hours):
        return "n/a"
    if hours < 1:
        return f"{hours * 60:,.1f} min"
    if hours > 48:
        return f"{hours / 24:,.1f} days"
    return f"{hours:,.1f} h"

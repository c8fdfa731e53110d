"""Every tunable constant of the estimator: named, sourced, overridable from a scenario.

Each domain declares its assumptions in its own module (``serving.py``, ``training.py``,
``planner.py``, ...) as a tuple ``ASSUMPTIONS`` of ``Assumption``. This package collects them
into one registry. Estimators read values through an ``Assumptions`` object, which records
which ones were used, so a report can list exactly the assumptions behind its numbers.

Override from a scenario with ``assumptions: {name: value}``, or programmatically with
``Assumptions({"mfu_full_h100": 0.45})``. Unknown names and wrong types are errors.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Mapping

from llmsizing.errors import ScenarioError


@dataclass(frozen=True)
class Assumption:
    """One named constant with its unit and source."""

    name: str
    value: float | int | str | bool
    unit: str
    source: str
    help: str
    category: str = "general"


@lru_cache(maxsize=1)
def registry() -> dict[str, Assumption]:
    """All declared assumptions by name (each domain module's ``ASSUMPTIONS``)."""
    out: dict[str, Assumption] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        for a in getattr(mod, "ASSUMPTIONS", ()):
            if a.name in out:
                raise RuntimeError(f"assumption {a.name!r} declared twice")
            out[a.name] = a
    return out


#: Units of whole counts the estimators divide by or search over: an override must be >= 1.
COUNT_UNITS = frozenset({"tokens", "sequences", "stages", "nodes", "GPUs", "chunks", "users", "units", "params"})
#: Units of search limits (layouts are enumerated up to them): an override must stay below this.
SEARCH_LIMIT_UNITS = frozenset({"nodes", "GPUs", "stages"})
MAX_SEARCH_LIMIT = 65536
#: Rates, bytes per token and intervals the estimators divide by: an override must be > 0.
POSITIVE_UNITS = frozenset({"bytes/s", "params/s", "Gbps", "bytes/token", "h"})
#: Fractions that scale a throughput, a memory budget or a time budget (divisors): an override must be > 0.
_POSITIVE_FRACTION_WORDS = ("efficiency", "mfu_", "utilization", "usable", "tokenization_time")


def _check_domain(a: Assumption, value: float) -> None:
    """Range checks implied by the unit, so an override cannot make an estimator divide by zero."""
    if a.unit in COUNT_UNITS and isinstance(a.value, int) and (value < 1 or value != int(value)):
        raise ScenarioError(f"assumption '{a.name}' must be a whole number >= 1 ({a.unit}), got {value!r}")
    if a.unit in SEARCH_LIMIT_UNITS and value > MAX_SEARCH_LIMIT:
        raise ScenarioError(f"assumption '{a.name}' must be at most {MAX_SEARCH_LIMIT} ({a.unit}), got {value!r}")
    if a.unit in POSITIVE_UNITS and value <= 0:
        raise ScenarioError(f"assumption '{a.name}' must be > 0 ({a.unit}), got {value!r}")
    if a.unit == "fraction":
        if value > 1:
            raise ScenarioError(f"assumption '{a.name}' is a fraction: it must be between 0 and 1, got {value!r}")
        if value == 0 and any(w in a.name for w in _POSITIVE_FRACTION_WORDS):
            raise ScenarioError(f"assumption '{a.name}' must be > 0 (a fraction of peak or of memory), got {value!r}")


def _coerce(a: Assumption, value: Any) -> Any:
    base = a.value
    if isinstance(base, bool):
        if not isinstance(value, bool):
            raise ScenarioError(f"assumption '{a.name}' must be true or false, got {value!r}")
        return value
    if isinstance(base, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"assumption '{a.name}' must be a number ({a.unit}), got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ScenarioError(f"assumption '{a.name}' must be a finite number >= 0 ({a.unit}), got {value!r}")
        _check_domain(a, value)
        return float(value) if isinstance(base, float) else value
    if not isinstance(value, str):
        raise ScenarioError(f"assumption '{a.name}' must be a string, got {value!r}")
    return value


class Assumptions(Mapping[str, Any]):
    """Values of all assumptions, defaults overridden by ``overrides``; records what was read."""

    @classmethod
    def of(cls, assumptions: "Assumptions | Mapping[str, Any] | None") -> "Assumptions":
        """The ``Assumptions`` to read: as given (so use is recorded on the caller's object), or built from
        a mapping of overrides (None: the defaults). Every estimator's entry point takes either."""
        return assumptions if isinstance(assumptions, Assumptions) else cls(assumptions or {})

    def __init__(self, overrides: Mapping[str, Any] | None = None):
        reg = registry()
        self._overrides: dict[str, Any] = {}
        for name, value in (overrides or {}).items():
            if name not in reg:
                import difflib

                close = difflib.get_close_matches(str(name), list(reg), n=3)
                hint = f"; closest: {', '.join(close)}" if close else ""
                raise ScenarioError(f"unknown assumption '{name}'{hint} (see 'llmsizing assumptions')")
            self._overrides[name] = _coerce(reg[name], value)
        self.used: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        reg = registry()
        if name not in reg:
            raise KeyError(name)
        self.used.add(name)
        return self._overrides.get(name, reg[name].value)

    def __iter__(self) -> Iterator[str]:
        return iter(registry())

    def __len__(self) -> int:
        return len(registry())

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self._overrides)

    def table(self, only_used: bool = True) -> list[dict[str, Any]]:
        """Rows for a report's assumptions table: name, value, default, unit, source, help."""
        rows = []
        for name, a in sorted(registry().items(), key=lambda kv: (kv[1].category, kv[0])):
            if only_used and name not in self.used:
                continue
            rows.append({"category": a.category, "name": name, "value": self._overrides.get(name, a.value),
                         "default": a.value, "overridden": name in self._overrides, "unit": a.unit,
                         "help": a.help, "source": a.source})
        return rows


DEFAULT = Assumptions

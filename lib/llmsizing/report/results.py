"""results.json: the machine-readable headline numbers of one report.

A report notebook ends with ``save_results(results_path, scenario, numbers)``. The document
has three sections, written with sorted keys so two runs of the same inputs give the same
bytes::

    {"schema": 1,
     "scenario": {...validated parameters, without the date...},
     "results": {...numbers: sizes in bytes, times in hours or seconds as named...},
     "provenance": {"params_file", "params_sha256", "version", "date"}}   # added by the runner

Only ``provenance`` carries a date; ``scenario`` and ``results`` are what golden tests
compare (:mod:`llmsizing.golden`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmsizing.errors import RenderError
from llmsizing.report.scenario import Scenario

__all__ = ["SCHEMA_VERSION", "canonical", "dumps", "read_results", "results_document", "save_results",
           "write_results"]

SCHEMA_VERSION = 1


def canonical(value: Any, where: str = "results") -> Any:
    """Plain JSON values only: dict (string keys), list, str, int, float (finite), bool, None.

    Tuples become lists, numpy scalars become Python numbers, non-finite floats become None.
    Anything else is a programming error and raises TypeError naming where it was found.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a string")
            out[k] = canonical(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item) and type(value).__module__ == "numpy":
        return canonical(item(), where)
    raise TypeError(f"{where}: {type(value).__name__} is not a JSON value")


def dumps(doc: Mapping[str, Any]) -> str:
    """Canonical JSON text: sorted keys, 2-space indent, UTF-8, trailing newline."""
    return json.dumps(canonical(doc), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def results_document(scenario: Scenario, numbers: Mapping[str, Any]) -> dict[str, Any]:
    """The results.json document for ``scenario`` and its headline ``numbers``."""
    inputs = dict(scenario.parameters())
    inputs.pop("date", None)
    return {"schema": SCHEMA_VERSION, "scenario": canonical(inputs, "scenario"),
            "results": canonical(numbers, "results")}


def write_results(path: str | os.PathLike[str], doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` as canonical JSON (atomically: temporary file, then rename)."""
    target = Path(path)
    text = dumps(doc)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target


def save_results(results_path: str, scenario: Scenario, numbers: Mapping[str, Any]) -> None:
    """Write results.json for a report notebook; an empty ``results_path`` writes nothing.

    The runner passes ``results_path="results.json"`` and runs the kernel in the build
    folder; run interactively, the notebook's default ``""`` keeps the source tree clean.
    Returns None, so a notebook cell ending with this call shows nothing in the report.
    """
    if results_path:
        write_results(results_path, results_document(scenario, numbers))


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a results.json; raises RenderError naming the file when it is not a results document."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RenderError(f"{p}: cannot read results ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_VERSION or "results" not in doc:
        raise RenderError(f"{p}: not a results.json of schema {SCHEMA_VERSION}")
    return doc

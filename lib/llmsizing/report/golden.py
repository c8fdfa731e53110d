"""Golden results: one ``tests/golden/<scenario>.json`` per ``params/*.yaml``.

A golden file is the ``scenario`` and ``results`` sections of the report's results.json,
computed by the library exactly as the notebook computes them (:func:`llmsizing.study.run_study`),
without papermill. ``tests/test_golden.py`` fails when a number moves and shows the diff.
Changing a number is a deliberate act::

    python -m llmsizing.golden            # check: print the diff of every changed scenario, exit 1
    python -m llmsizing.report.golden --update   # rewrite the golden files (review the git diff!)
    make golden                           # the same as --update

Floats are stored with full ``repr`` precision and compared with a relative tolerance of
1e-9, so a last-bit difference between platforms is not a change, while any real one is.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from llmsizing.errors import SizingError
from llmsizing.report.results import dumps, results_document
from llmsizing.report.scenario import load_scenario
from llmsizing.report.study import run_study

__all__ = ["REL_TOL", "compute", "compare", "diff_text", "golden_path", "main"]

REL_TOL = 1e-9


def compute(params_path: str | Path) -> tuple[str, dict[str, Any]]:
    """``(scenario_name, golden document)`` for one params file."""
    scenario = load_scenario(params_path)
    study = run_study(scenario)
    return scenario.scenario_name, results_document(scenario, study.numbers())


def golden_path(golden_dir: str | Path, scenario_name: str) -> Path:
    return Path(golden_dir) / f"{scenario_name}.json"


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    """True when the documents agree (floats within :data:`REL_TOL`)."""
    return _close(expected, actual)


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k in sorted(doc):
            out.update(_flatten(doc[k], f"{prefix}.{k}" if prefix else k))
        return out or {prefix: {}}
    if isinstance(doc, list):
        out = {}
        for i, v in enumerate(doc):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: doc}


def diff_text(expected: dict[str, Any] | None, actual: dict[str, Any], name: str = "golden") -> str:
    """What changed, one line per value (``path: old -> new``), then a unified diff of the JSON."""
    if expected is None:
        return f"{name}: no golden file yet (run: python -m llmsizing.report.golden --update)"
    old, new = _flatten(expected), _flatten(actual)
    lines = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            lines.append(f"  - {key}: {old[key]!r} (removed)")
        elif key not in old:
            lines.append(f"  + {key}: {new[key]!r} (added)")
        elif not _close(old[key], new[key]):
            change = ""
            if isinstance(old[key], (int, float)) and isinstance(new[key], (int, float)) and old[key] \
                    and not isinstance(old[key], bool):
                change = f" ({(new[key] - old[key]) / abs(old[key]):+.2%})"
            lines.append(f"  ~ {key}: {old[key]!r} -> {new[key]!r}{change}")
    udiff = difflib.unified_diff(dumps(expected).splitlines(), dumps(actual).splitlines(),
                                 f"{name} (golden)", f"{name} (computed)", lineterm="", n=2)
    return f"{name}: {len(lines)} value(s) changed\n" + "\n".join(lines) + "\n" + "\n".join(udiff)


def _params_files(params: Iterable[str | Path] | None, params_dir: Path) -> list[Path]:
    if params:
        return [Path(p) for p in params]
    return sorted(params_dir.glob("*.yaml"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m llmsizing.golden", description=__doc__.splitlines()[0])
    ap.add_argument("params", nargs="*", help="params files (default: every params/*.yaml)")
    ap.add_argument("--update", action="store_true", help="rewrite the golden files with the computed results")
    ap.add_argument("--params-dir", default="params", type=Path)
    ap.add_argument("--golden-dir", default="tests/golden", type=Path)
    args = ap.parse_args(argv)

    files = _params_files(args.params, args.params_dir)
    if not files:
        print(f"no params files in {args.params_dir}", file=sys.stderr)
        return 2
    changed = 0
    names = set()
    for p in files:
        try:
            name, doc = compute(p)
        except SizingError as exc:
            print(f"{p}: {exc}", file=sys.stderr)
            return 2
        names.add(name)
        path = golden_path(args.golden_dir, name)
        old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        same = old is not None and compare(old, doc)
        if args.update:
            if not same:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(dumps(doc), encoding="utf-8")
                print(diff_text(old, doc, str(path)) if old is not None else f"{path}: created")
                changed += 1
            else:
                print(f"{path}: unchanged")
        elif not same:
            print(diff_text(old, doc, str(path)))
            changed += 1
        else:
            print(f"{path}: ok")
    if not args.params:
        stale = sorted(p for p in args.golden_dir.glob("*.json") if p.stem not in names)
        for p in stale:
            print(f"{p}: no params file names this scenario any more; delete it", file=sys.stderr)
    if args.update:
        print(f"{changed} golden file(s) written; review them with 'git diff {args.golden_dir}'")
        return 0
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())

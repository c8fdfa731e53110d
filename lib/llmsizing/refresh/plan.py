"""Plan a refresh: validate each params file, hash its inputs, and say which scenarios to build and why.

Reads files only (no notebook runs, no estimates), against the manifest of the last refresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmsizing.catalog import safe_yaml_loads
from llmsizing.errors import ScenarioError, SizingError
from llmsizing.files import read_text_bounded
from llmsizing.refresh.files import one_line, shown
from llmsizing.refresh.index import read_manifest
from llmsizing.refresh.inputs import INPUT_KEYS, SharedInputs, canonical_json, catalog_files, combine
from llmsizing.report.runner import HTML_FILE, NOTEBOOK_FILE, PDF_FILE, RESULTS_FILE, notebooks_dir, parse_formats
from llmsizing.report.parameters import MAX_PARAMS_FILE_BYTES, scenario_name_problem
from llmsizing.report.scenario import load_scenario

__all__ = ["ScenarioPlan", "expected_files", "plan_refresh", "scenario_name"]


@dataclass
class ScenarioPlan:
    """One params file: its scenario, input hashes, and whether (and why) to build it."""

    params_path: Path
    name: str
    kind: str = ""
    title: str = ""
    customer: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    catalog_files: dict[str, str] = field(default_factory=dict)
    notebook: str = ""
    error: str | None = None  # invalid before building: the scenario fails without a build
    reasons: list[str] = field(default_factory=list)

    @property
    def build(self) -> bool:
        return self.error is None and bool(self.reasons)


def _guess_name(path: Path) -> str:
    """Scenario name of a params file that does not validate (for the index): its key, or the stem."""
    with contextlib.suppress(Exception):
        data = safe_yaml_loads(read_text_bounded(path, MAX_PARAMS_FILE_BYTES), str(path), SizingError)
        name = data.get("scenario_name") if isinstance(data, dict) else None
        if scenario_name_problem(name) is None:
            return name
    if scenario_name_problem(path.stem) is None:
        return path.stem
    # a file name the name rule refuses (escape sequences, 10,000 characters) never reaches the index raw
    return "invalid-" + hashlib.sha256(os.fsencode(path.name)).hexdigest()[:12]


def _plan_one(path: Path, shared: SharedInputs, formats: Sequence[str]) -> ScenarioPlan:
    try:
        sc = load_scenario(path)
    except SizingError as exc:
        return ScenarioPlan(path, _guess_name(path), inputs={"scenario": shared.hasher.file(path)},
                            error=one_line(exc))
    h = shared.hasher
    files = catalog_files(sc, shared)
    cat = {label: h.file(p) for label, p in sorted(files.items())}
    notebook = shared.notebook_dir / sc.notebook
    inputs = {
        "scenario": h.file(path),
        "notebook": h.file(notebook),
        "template": shared.template,
        "catalog": combine(cat),
        "assumptions": combine({"code": shared.assumptions_code,
                                 "overrides": canonical_json(dict(sc.assumptions))}),
        "library": shared.library,
        "formats": ",".join(formats),
    }
    return ScenarioPlan(path, sc.scenario_name, sc.kind, sc.title, sc.customer, inputs, cat, shown(notebook))


def expected_files(formats: Sequence[str]) -> tuple[str, ...]:
    extra = {"html": HTML_FILE, "pdf": PDF_FILE}
    return (NOTEBOOK_FILE, RESULTS_FILE) + tuple(extra[f] for f in formats)


def _reasons(plan: ScenarioPlan, old: Mapping[str, Any] | None, out_dir: Path, formats: Sequence[str],
             force: bool) -> list[str]:
    """Why ``plan`` must be built (empty: its report is up to date)."""
    if force:
        return ["--force"]
    if not old or not old.get("inputs"):
        return ["new scenario" if not old else "never built successfully"]
    reasons: list[str] = []
    if old.get("status") != "ok":
        reasons.append("last build failed")
    missing = [f for f in expected_files(formats) if not (out_dir / plan.name / f).is_file()]
    if missing:
        reasons.append(f"report files missing ({', '.join(missing)})")
    before = old.get("inputs", {})
    for key in INPUT_KEYS:
        if before.get(key) == plan.inputs.get(key):
            continue
        if key == "catalog":
            was = old.get("catalog_files", {})
            now = plan.catalog_files
            changed = [f"catalog entry {k} changed" for k in sorted(now) if k in was and was[k] != now[k]]
            changed += [f"catalog entry {k} now used" for k in sorted(now) if k not in was]
            changed += [f"catalog entry {k} no longer used" for k in sorted(was) if k not in now]
            reasons.extend(changed or ["catalog entries changed"])
        else:
            reasons.append({
                "scenario": f"params file {plan.params_path} changed",
                "notebook": f"notebook {plan.notebook} changed",
                "template": "report template changed",
                "assumptions": "assumptions changed",
                "library": "llmsizing library changed",
                "formats": f"output formats changed to {plan.inputs.get('formats')}",
            }[key])
    return reasons


def _params_files(params: Sequence[str | os.PathLike[str]]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, params):
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise ScenarioError(f"{p}: no params files (*.yaml) in this folder")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise ScenarioError(f"{p}: no such params file or folder")
    return list(dict.fromkeys(out))


def plan_refresh(
    params: Sequence[str | os.PathLike[str]] = ("params",),
    out_dir: str | os.PathLike[str] = "reports",
    *,
    to: str | Sequence[str] = ("html", "pdf"),
    force: bool = False,
    notebook_dir: str | os.PathLike[str] | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> list[ScenarioPlan]:
    """Validate and hash every params file; say which scenarios must be built and why.

    Reads files only: no notebook runs, no estimates. ``manifest`` defaults to the one in
    ``out_dir``.
    """
    formats = parse_formats(to)
    root = Path(out_dir)
    paths = _params_files(params)
    shared = SharedInputs.collect(Path(notebook_dir) if notebook_dir is not None else notebooks_dir())
    plans = [_plan_one(p, shared, formats) for p in paths]
    by_name: dict[str, list[ScenarioPlan]] = {}
    for pl in plans:
        by_name.setdefault(pl.name, []).append(pl)
    for name, same in by_name.items():
        if len(same) > 1:
            for pl in same:
                others = ", ".join(str(o.params_path) for o in same if o is not pl)
                pl.error = pl.error or (f"{pl.params_path}: scenario_name {name!r} is also used by {others}; "
                                        f"each report needs its own name")
    old = (manifest if manifest is not None else read_manifest(root)).get("scenarios", {})
    for pl in plans:
        if pl.error is None:
            pl.reasons = _reasons(pl, old.get(pl.name), root, formats, force)
    return plans


def scenario_name(arg: str) -> str:
    """A scenario name, or the name inside a params file (``params/x.yaml``)."""
    p = Path(arg)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return load_scenario(p).scenario_name
    problem = scenario_name_problem(arg)
    if problem:  # e.g. '../../x': never a path outside the reports folder
        raise ScenarioError(f"scenario {arg[:100]!r}: {problem}")
    return arg

"""Earlier versions of a report and what changed: headline numbers, diffs, the history folder.

When a scenario is rebuilt, its current report is hard-linked into
``reports/<scenario>/history/<date-time>/`` (the date-time it was built, UTC) with a ``build.json``
record, the oldest entries beyond ``keep`` are pruned, and the new files replace the old ones one
rename at a time.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmsizing.errors import ScenarioError
from llmsizing.refresh.files import dir_mode, read_json_file, remove_path
from llmsizing.report.parameters import scenario_name_problem
from llmsizing.report.runner import RESULTS_FILE, check_out_dir

__all__ = ["HISTORY_DIR", "Change", "diff_report", "diff_results", "headline", "history_entries", "publish_report"]

#: Folder inside ``reports/<scenario>/`` holding earlier reports, one ``<date-time>/`` each.
HISTORY_DIR = "history"
#: Previous-build record written into each history entry.
HISTORY_RECORD = "build.json"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested results -> ``{"a.b[0].c": scalar}``."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def headline(results_doc: Mapping[str, Any] | None) -> dict[str, Any]:
    """The headline numbers of a results.json document, flat ``{key: scalar}``.

    ``results.headline`` (a mapping) when the notebook wrote one; otherwise every scalar at
    the top level of ``results``.
    """
    if not results_doc:
        return {}
    results = results_doc.get("results")
    if not isinstance(results, Mapping):
        return {}
    head = results.get("headline")
    if isinstance(head, Mapping):
        return _flatten(head)
    return {k: v for k, v in results.items() if v is None or isinstance(v, (bool, int, float, str))}


@dataclass(frozen=True)
class Change:
    """One number that differs between two results documents."""

    key: str
    before: Any
    after: Any

    @property
    def delta(self) -> float | None:
        if _is_number(self.before) and _is_number(self.after):
            return self.after - self.before
        return None

    @property
    def relative(self) -> float | None:
        d = self.delta
        if d is None or not self.before:
            return None
        return d / abs(self.before)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "before": self.before, "after": self.after, "delta": self.delta,
                "relative": self.relative}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_MISSING = object()


def diff_results(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *,
                 everything: bool = False) -> list[Change]:
    """What changed between two results.json documents: headline numbers, or all results.

    A key present on one side only shows ``None`` on the other.
    """
    if everything:
        a = _flatten((before or {}).get("results", {}))
        b = _flatten((after or {}).get("results", {}))
    else:
        a, b = headline(before), headline(after)
    out = []
    for key in list(dict.fromkeys([*a, *b])):
        x, y = a.get(key, _MISSING), b.get(key, _MISSING)
        same_kind = type(x) is type(y) or (_is_number(x) and _is_number(y))
        if x is _MISSING or y is _MISSING or x != y or not same_kind:
            out.append(Change(key, None if x is _MISSING else x, None if y is _MISSING else y))
    return out



def _sequence(entry: Path) -> int:
    """The archive sequence number of a history entry (``build.json`` ``sequence``; 0 for older entries)."""
    doc = read_json_file(entry / HISTORY_RECORD)
    seq = (doc or {}).get("sequence")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else 0


def history_entries(out_dir: str | os.PathLike[str], scenario: str) -> list[Path]:
    """Earlier reports of ``scenario``, oldest first (``reports/<scenario>/history/<date-time>/``).

    Ordered by the sequence number each archive records (then by name), never by the clock: a build
    stamped in the future cannot make the next archive prune the real previous version.
    """
    folder = Path(out_dir) / scenario
    hist = folder / HISTORY_DIR
    if folder.is_symlink() or hist.is_symlink() or not hist.is_dir():
        return []
    found = [p for p in hist.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: (_sequence(p), p.name))



def diff_report(out_dir: str | Path, scenario: str, against: str | None = None,
                everything: bool = False) -> dict:
    """The changes between a report and an earlier version of it, as a JSON-ready dict."""
    root = check_out_dir(out_dir)
    problem = scenario_name_problem(scenario)
    if problem:
        raise ScenarioError(f"scenario {scenario[:100]!r}: {problem}")
    if against is not None and scenario_name_problem(against.lower()) and not against.replace("-", "").replace(
            "T", "").replace("Z", "").isalnum():
        raise ScenarioError(f"--against {against[:100]!r} is not a version name (a folder name under history/)")
    current = root / scenario / RESULTS_FILE
    if not current.is_file():
        raise ScenarioError(f"no report for scenario {scenario!r}: {current} does not exist "
                            f"(run 'llmsizing refresh' or 'llmsizing run' first)")
    versions = history_entries(root, scenario)
    if against is not None:
        chosen = root / scenario / HISTORY_DIR / against
        if against not in [v.name for v in versions]:
            names = ", ".join(v.name for v in versions) or "none"
            raise ScenarioError(f"scenario {scenario!r} has no earlier version {against!r}; versions: {names}")
    elif versions:
        chosen = versions[-1]
    else:
        return {"scenario": scenario, "current": str(current), "previous": None, "changes": [],
                "versions": [], "note": "no earlier version: the report has not been rebuilt since it was first built"}
    before = read_json_file(chosen / RESULTS_FILE)
    if before is None:
        raise ScenarioError(f"{chosen / RESULTS_FILE} is missing or not JSON")
    after = read_json_file(current)
    changes = diff_results(before, after, everything=everything)
    return {"scenario": scenario, "current": str(current), "previous": str(chosen),
            "changes": [c.to_dict() for c in changes], "versions": [v.name for v in versions],
            "compared": "all results" if everything else "headline numbers"}


def _history_name(old_entry: Mapping[str, Any] | None, report_dir: Path) -> str:
    """Folder name for the report being replaced: when it was built, UTC (``2031-02-03T04-05-06Z``)."""
    built = (old_entry or {}).get("built_at")
    t: _dt.datetime | None = None
    if isinstance(built, str):
        with contextlib.suppress(ValueError):
            t = _dt.datetime.strptime(built, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)
    if t is None:
        stamps = [p.stat().st_mtime for p in report_dir.iterdir() if p.is_file()]
        t = _dt.datetime.fromtimestamp(max(stamps) if stamps else time.time(), _dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H-%M-%SZ")


def _link_or_copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst)
        return
    try:
        os.link(src, dst)  # the new report arrives by rename (a new inode), so the link keeps the old bytes
    except OSError:
        shutil.copy2(src, dst)


def _archive(report_dir: Path, old_entry: Mapping[str, Any] | None, keep: int) -> Path | None:
    """Copy the current report into ``history/<date-time>/`` (hard links); prune beyond ``keep``."""
    current = [p for p in report_dir.iterdir() if p.name != HISTORY_DIR and not p.name.startswith(".")]
    if not current or keep <= 0:
        return None
    hist = report_dir / HISTORY_DIR
    hist.mkdir(exist_ok=True)
    base = _history_name(old_entry, report_dir)
    name, n = base, 1
    while (hist / name).exists():
        name, n = f"{base}-{n}", n + 1
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=hist))
    for p in current:
        _link_or_copy(p, tmp / p.name)
    earlier = history_entries(report_dir.parent, report_dir.name)
    record = {k: (old_entry or {}).get(k) for k in ("built_at", "inputs", "catalog_files", "params", "headline")}
    record["sequence"] = max([_sequence(p) for p in earlier] + [len(earlier)]) + 1
    (tmp / HISTORY_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(tmp, dir_mode())
    os.replace(tmp, hist / name)
    entries = history_entries(report_dir.parent, report_dir.name)
    for old in entries[: max(0, len(entries) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return hist / name



def _replace_path(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst`` (a file atomically; a folder by rename-aside, rename, delete)."""
    if src.is_dir() and dst.exists():
        aside = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, aside)
        os.replace(src, dst)
        remove_path(aside)
    else:
        if dst.is_dir() and not src.is_dir():
            shutil.rmtree(dst)
        os.replace(src, dst)


#: Inside a report folder while a new version is published: the new files, and the list of them.
PUBLISHING_DIR = ".publishing"
PUBLISH_LIST = ".files.json"


def repair_publish(report_dir: Path) -> bool:
    """Finish a publish that was interrupted (a SIGKILL between two renames): roll forward.

    ``report_dir/.publishing/`` holds the complete new version and the list of its files; every
    file still there replaces its old copy, old files the new version lacks are removed, then the
    folder goes. Returns True when there was something to repair. A folder that is a symlink is
    never followed.
    """
    incoming = report_dir / PUBLISHING_DIR
    if report_dir.is_symlink() or incoming.is_symlink() or not incoming.is_dir():
        return False
    listing = read_json_file(incoming / PUBLISH_LIST)
    names = listing.get("files") if listing else None
    if not isinstance(names, list) or not all(isinstance(n, str) and "/" not in n and n not in ("", ".", "..")
                                              for n in names):
        shutil.rmtree(incoming, ignore_errors=True)  # the rename that made it never completed: nothing published
        return True
    for name in names:
        src = incoming / name
        if os.path.lexists(src):
            _replace_path(src, report_dir / name)
    for p in report_dir.iterdir():
        if p.name not in names and p.name != HISTORY_DIR and not p.name.startswith("."):
            remove_path(p)
    shutil.rmtree(incoming, ignore_errors=True)
    return True


def publish_report(staged: Path, report_dir: Path, old_entry: Mapping[str, Any] | None, keep: int) -> Path | None:
    """Archive the current report, then publish the staged version as a unit.

    The staged folder first gets the list of its files and moves, in one rename, to
    ``report_dir/.publishing/`` (the journal); then each file replaces its old copy with one rename
    and files the new version lacks (say a PDF no longer asked for) are removed. A publish killed
    half-way is finished by :func:`repair_publish` on the next refresh or run, so a report is never
    left with a new report.html beside an old report.pdf. ``history/`` is kept.
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    repair_publish(report_dir)
    archived = _archive(report_dir, old_entry, keep)
    names = sorted(p.name for p in staged.iterdir() if p.name != PUBLISH_LIST)
    (staged / PUBLISH_LIST).write_text(json.dumps({"files": names}) + "\n", encoding="utf-8")
    incoming = report_dir / PUBLISHING_DIR
    remove_path(incoming)
    os.replace(staged, incoming)
    repair_publish(report_dir)
    os.chmod(report_dir, dir_mode())
    return archived

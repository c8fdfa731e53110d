"""Keep every report current: rebuild the scenarios whose inputs changed, skip the rest.

::

    refresh(["params/"], out_dir="reports", jobs=2)
      1. lock          fcntl.flock on reports/.refresh.lock (a second refresh waits or stops)
      2. plan          validate each params file and hash its inputs (files only; no estimates)
      3. compare       against reports/manifest.json: unchanged scenarios are skipped
      4. build         runner.run_scenario in worker processes, into reports/.refresh-staging/
      5. publish       the previous report goes to reports/<scenario>/history/<date-time>/,
                       then each new file replaces the old one (os.replace, one file at a time)
      6. record        reports/manifest.json after every scenario, reports/index.html at the end

A scenario's inputs, each hashed (SHA-256 of file contents):

``scenario``     the params file
``notebook``     ``notebooks/<kind>.ipynb``
``template``     every file of the report template (``templates/report/``)
``catalog``      the catalog files the scenario names: its models and GPUs (aliases resolved
                 through the catalog, a GPU's ``derived_from`` parent included), the cloud
                 instances carrying those GPUs, and ``precisions.yaml``; a model given as a
                 ``config.json`` path hashes that file
``assumptions``  ``assumptions/*.py`` plus the scenario's overrides
``library``      the version and every ``lib/llmsizing/**/*.py`` outside ``assumptions/``
``formats``      the output formats asked for (html, pdf)

Planning imports only the catalog and scenario modules (no papermill, nbconvert, pandas or
estimators), so a refresh with nothing to do takes a fraction of a second.

A scenario that fails (invalid params, a notebook error, a render error, a crashed worker)
keeps its last good report; the manifest and index mark it failed with the reason, the
other scenarios still build, and :attr:`RefreshReport.exit_code` is 1. A failed scenario is
tried again by the next refresh even if nothing changed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from llmsizing.errors import SizingError

__all__ = [
    "EXIT_BUSY",
    "EXIT_FAILED",
    "HISTORY_DIR",
    "INDEX_FILE",
    "LOCK_FILE",
    "MANIFEST_FILE",
    "Change",
    "RefreshBusy",
    "RefreshReport",
    "ScenarioPlan",
    "catalog_files",
    "diff_results",
    "format_value",
    "headline",
    "history_entries",
    "plan_refresh",
    "read_json_file",
    "read_manifest",
    "refresh",
    "refresh_lock",
    "render_index",
]

#: Files and folders under the reports folder.
MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.html"
LOCK_FILE = ".refresh.lock"
STAGING_DIR = ".refresh-staging"
#: Folder inside ``reports/<scenario>/`` holding earlier reports, one ``<date-time>/`` each.
HISTORY_DIR = "history"
#: Previous-build record written into each history entry.
HISTORY_RECORD = "build.json"
MANIFEST_SCHEMA = 1
#: History entries kept per scenario (oldest pruned first).
DEFAULT_KEEP_HISTORY = 20
#: Exit codes of ``llmsizing refresh`` besides 0 (all good) and 2 (bad input).
EXIT_FAILED = 1
EXIT_BUSY = 75  # sysexits EX_TEMPFAIL: another refresh holds the lock; try again later

#: Input hash keys, in the order reasons are reported.
INPUT_KEYS = ("scenario", "notebook", "template", "catalog", "assumptions", "library", "formats")

_LIB_DIR = Path(__file__).resolve().parents[1]


class RefreshBusy(SizingError):
    """Another refresh holds the lock on the reports folder."""


# --------------------------------------------------------------------------- small helpers


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)


def _iso(t: _dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(text: object, limit: int = 600) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _combine(parts: Mapping[str, str]) -> str:
    """One hash over named hashes (order-independent)."""
    h = hashlib.sha256()
    for k in sorted(parts):
        h.update(f"{k}\0{parts[k]}\n".encode())
    return h.hexdigest()


def _shown(path: Path) -> str:
    """``path`` for messages: relative to the working directory when inside it."""
    try:
        return Path(os.path.abspath(path)).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def _rel(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- hashing


class _Hasher:
    """SHA-256 of files, each read once per refresh."""

    def __init__(self) -> None:
        self._cache: dict[Path, str] = {}

    def file(self, path: Path) -> str:
        key = Path(os.path.abspath(path))
        if key not in self._cache:
            try:
                self._cache[key] = hashlib.sha256(key.read_bytes()).hexdigest()
            except FileNotFoundError:
                self._cache[key] = "missing"
            except IsADirectoryError:
                self._cache[key] = "directory"
        return self._cache[key]

    def tree(self, root: Path, pattern: str, skip: Callable[[Path], bool] = lambda p: False) -> str:
        files = {}
        for p in sorted(root.rglob(pattern)):
            if p.is_file() and "__pycache__" not in p.parts and not skip(p):
                files[p.relative_to(root).as_posix()] = self.file(p)
        return _combine(files)


def _quick_yaml(path: Path) -> dict[str, Any]:
    """A catalog file's top-level mapping, read fast (libyaml when present) for indexing only.

    The catalog module validates these files strictly when estimates need them; here only
    ``gpu`` and ``derived_from`` are read, and an unreadable file gives an empty mapping.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_bytes(), Loader=loader)  # noqa: S506 - a safe loader
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _entry_files(kind: str) -> dict[str, Path]:
    """Catalog files of ``kind`` by slug (= file stem); ``$LLMSIZING_CATALOG_DIR`` overrides built-ins."""
    from llmsizing import catalog

    files: dict[str, Path] = {}
    for d in catalog._catalog_dirs(kind):
        for p in sorted(d.glob("*.yaml")):
            files[p.stem] = p
    return files


@dataclass
class _SharedInputs:
    """Inputs every scenario shares, hashed once per refresh, and the catalog file index."""

    hasher: _Hasher
    template: str
    library: str
    assumptions_code: str
    gpu_files: dict[str, Path]
    instances_by_gpu: dict[str, list[Path]]
    notebook_dir: Path
    _derived: dict[str, str | None] = field(default_factory=dict)

    def gpu_parent(self, slug: str) -> str | None:
        """The ``derived_from`` GPU of a GPU entry, if any."""
        if slug not in self._derived:
            path = self.gpu_files.get(slug)
            parent = _quick_yaml(path).get("derived_from") if path else None
            self._derived[slug] = parent if isinstance(parent, str) else None
        return self._derived[slug]

    @classmethod
    def collect(cls, notebook_dir: Path) -> "_SharedInputs":
        from llmsizing import __version__, catalog
        from llmsizing.report.render import TEMPLATE_DIR, TEMPLATE_NAME

        hasher = _Hasher()
        assumptions_dir = _LIB_DIR / "assumptions"
        library = _combine({
            "version": __version__,
            "source": hasher.tree(_LIB_DIR, "*.py", skip=lambda p: assumptions_dir in p.parents),
        })
        by_gpu: dict[str, list[Path]] = {}
        for path in _entry_files("instances").values():
            gpu = _quick_yaml(path).get("gpu")
            if not isinstance(gpu, str):
                continue
            try:
                gpu = catalog.load_gpu(gpu).slug
            except SizingError:
                pass
            by_gpu.setdefault(gpu, []).append(path)
        return cls(
            hasher=hasher,
            template=hasher.tree(TEMPLATE_DIR / TEMPLATE_NAME, "*"),
            library=library,
            assumptions_code=hasher.tree(assumptions_dir, "*.py"),
            gpu_files=_entry_files("gpus"),
            instances_by_gpu=by_gpu,
            notebook_dir=notebook_dir,
        )


def catalog_files(scenario: Any, shared: _SharedInputs | None = None) -> dict[str, Path]:
    """The catalog files ``scenario`` uses, by label (``gpus/h100-80gb.yaml``, ...).

    Its models and GPUs (already resolved to slugs by validation), each GPU's
    ``derived_from`` parent, every cloud instance whose GPU is one of them, and
    ``precisions.yaml``. A model given as a path to a ``config.json`` is that file.
    """
    from llmsizing import catalog

    if shared is None:
        from llmsizing.report.runner import notebooks_dir

        shared = _SharedInputs.collect(notebooks_dir())
    # Labels name an entry, not where it was found: an identical copy of a built-in entry in
    # LLMSIZING_CATALOG_DIR changes nothing; a different one changes the hash under the same label.
    out: dict[str, Path] = {}
    models = catalog.model_entries()
    for name in scenario.models:
        entry = models.get(name)
        if entry is not None:
            out[f"models/{entry.path.name}"] = entry.path
        else:
            path = Path(name)
            if path.is_dir():
                path = path / "config.json"
            out[f"config:{path}"] = path
    gpus = list(scenario.gpus)
    for slug in list(gpus):
        parent = shared.gpu_parent(slug)
        if parent is not None and parent in shared.gpu_files and parent not in gpus:
            gpus.append(parent)
    for slug in gpus:
        path = shared.gpu_files.get(slug)
        if path is not None:
            out[f"gpus/{path.name}"] = path
    for slug in scenario.gpus:
        for path in shared.instances_by_gpu.get(slug, ()):
            out[f"instances/{path.name}"] = path
    out["precisions.yaml"] = catalog.CATALOG_DIR / "precisions.yaml"
    return out


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# --------------------------------------------------------------------------- plan


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
    from llmsizing.catalog import safe_yaml_loads

    with contextlib.suppress(Exception):
        data = safe_yaml_loads(path.read_text(encoding="utf-8"), str(path), SizingError)
        name = data.get("scenario_name") if isinstance(data, dict) else None
        if isinstance(name, str) and name and "/" not in name and not name.startswith("."):
            return name
    return path.stem


def _plan_one(path: Path, shared: _SharedInputs, formats: Sequence[str]) -> ScenarioPlan:
    from llmsizing.report.scenario import load_scenario

    try:
        sc = load_scenario(path)
    except SizingError as exc:
        return ScenarioPlan(path, _guess_name(path), inputs={"scenario": shared.hasher.file(path)},
                            error=_one_line(exc))
    h = shared.hasher
    files = catalog_files(sc, shared)
    cat = {label: h.file(p) for label, p in sorted(files.items())}
    notebook = shared.notebook_dir / sc.notebook
    inputs = {
        "scenario": h.file(path),
        "notebook": h.file(notebook),
        "template": shared.template,
        "catalog": _combine(cat),
        "assumptions": _combine({"code": shared.assumptions_code,
                                 "overrides": _canonical_json(dict(sc.assumptions))}),
        "library": shared.library,
        "formats": ",".join(formats),
    }
    return ScenarioPlan(path, sc.scenario_name, sc.kind, sc.title, sc.customer, inputs, cat, _shown(notebook))


def _expected_files(formats: Sequence[str]) -> tuple[str, ...]:
    from llmsizing.report.runner import HTML_FILE, NOTEBOOK_FILE, PDF_FILE, RESULTS_FILE

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
    missing = [f for f in _expected_files(formats) if not (out_dir / plan.name / f).is_file()]
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
    from llmsizing.errors import ScenarioError

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
    from llmsizing.report.runner import notebooks_dir, parse_formats

    formats = parse_formats(to)
    root = Path(out_dir)
    paths = _params_files(params)
    shared = _SharedInputs.collect(Path(notebook_dir) if notebook_dir is not None else notebooks_dir())
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


# --------------------------------------------------------------------------- lock


@contextlib.contextmanager
def refresh_lock(out_dir: str | os.PathLike[str], wait: float = 0.0,
                 on_wait: Callable[[str], None] | None = None):
    """Hold ``fcntl.flock`` on ``<out_dir>/.refresh.lock`` for the duration of the block.

    ``wait`` is how long to wait for another holder, in seconds (0: not at all, ``math.inf``:
    for ever); when it runs out, :class:`RefreshBusy` names the holder. ``on_wait`` is called
    once with a message when waiting starts. The lock file is never deleted (deleting a
    lock file lets two processes lock two different files); the kernel releases the lock
    when the process ends, however it ends.
    """
    import fcntl

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(fd)
                if time.monotonic() >= deadline:
                    hint = ("; pass --wait to wait for it" if wait == 0 else
                            f"; gave up after waiting {wait:g} s")
                    raise RefreshBusy(f"another refresh is running on {root}/ ({holder}){hint}") from None
                if not told and on_wait is not None:
                    on_wait(f"waiting for another refresh on {root}/ to finish ({holder})")
                    told = True
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": _iso(_now()),
                "command": " ".join(sys.argv[:1] + sys.argv[1:8])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _lock_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        if info:
            return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started_at')}"
    return "holder unknown"


# --------------------------------------------------------------------------- manifest


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of ``out_dir`` (an empty one when absent or unreadable)."""
    path = Path(out_dir) / MANIFEST_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"schema": MANIFEST_SCHEMA, "scenarios": {}}
    if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA or not isinstance(doc.get("scenarios"), dict):
        return {"schema": MANIFEST_SCHEMA, "scenarios": {}}
    return doc


def _write_manifest(out_dir: Path, doc: Mapping[str, Any]) -> None:
    _write_atomic(out_dir / MANIFEST_FILE, json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- headline numbers and diffs


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


def read_json_file(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else None
    return None


def history_entries(out_dir: str | os.PathLike[str], scenario: str) -> list[Path]:
    """Earlier reports of ``scenario``, oldest first (``reports/<scenario>/history/<date-time>/``)."""
    hist = Path(out_dir) / scenario / HISTORY_DIR
    if not hist.is_dir():
        return []
    return sorted(p for p in hist.iterdir() if p.is_dir() and not p.name.startswith("."))


# --------------------------------------------------------------------------- build (worker process)


#: Output of a build (papermill, the kernel, WeasyPrint) goes to this file in its staging folder;
#: a failed build keeps it as ``reports/<scenario>.failed.log``.
BUILD_LOG = "build.log"


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's stdout and stderr (file descriptors 1 and 2, so child kernels too) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def _build_worker(params_path: str, staging_root: str, formats: tuple[str, ...],
                  notebook_dir: str | None) -> dict[str, Any]:
    """Run one scenario with :func:`llmsizing.runner.run_scenario` (in a worker process).

    The report lands in ``staging_root/<scenario>/``; the build's console output in
    ``staging_root/build.log``. Returns a plain dict (picklable whatever happened): ``ok``,
    ``seconds``, and ``reason`` (one line) on failure.
    """
    t0 = time.perf_counter()
    with _output_to(Path(staging_root) / BUILD_LOG):
        try:
            from llmsizing.report.runner import run_scenario

            r = run_scenario(params_path, staging_root, formats, notebook_dir=notebook_dir)
            return {"ok": True, "seconds": time.perf_counter() - t0, "dir": str(r.report_dir)}
        except SizingError as exc:
            return {"ok": False, "seconds": time.perf_counter() - t0, "reason": _one_line(exc)}
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not stop the others
            import traceback

            traceback.print_exc()
            return {"ok": False, "seconds": time.perf_counter() - t0,
                    "reason": f"unexpected {type(exc).__name__}: {_one_line(exc)}",
                    "traceback": traceback.format_exc()}


# --------------------------------------------------------------------------- publish (parent, under the lock)


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
    record = {k: (old_entry or {}).get(k) for k in ("built_at", "inputs", "catalog_files", "params", "headline")}
    (tmp / HISTORY_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(tmp, _dir_mode())
    os.replace(tmp, hist / name)
    entries = history_entries(report_dir.parent, report_dir.name)
    for old in entries[: max(0, len(entries) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return hist / name


def _dir_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _replace_path(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst`` (a file atomically; a folder by rename-aside, rename, delete)."""
    if src.is_dir() and dst.exists():
        aside = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, aside)
        os.replace(src, dst)
        _remove(aside)
    else:
        if dst.is_dir() and not src.is_dir():
            shutil.rmtree(dst)
        os.replace(src, dst)


def _publish(staged: Path, report_dir: Path, old_entry: Mapping[str, Any] | None, keep: int) -> Path | None:
    """Archive the current report, then move the staged files over it, one rename per file.

    Every file a reader opens is whole at any moment; ``history/`` is kept; files of the
    old report that the new one lacks (say a PDF no longer asked for) are removed.
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    archived = _archive(report_dir, old_entry, keep)
    new_names = set()
    for src in sorted(staged.iterdir()):
        new_names.add(src.name)
        _replace_path(src, report_dir / src.name)
    for p in report_dir.iterdir():
        if p.name not in new_names and p.name != HISTORY_DIR and not p.name.startswith("."):
            _remove(p)
    os.chmod(report_dir, _dir_mode())
    return archived


# --------------------------------------------------------------------------- progress


class _Progress:
    """Lines on ``stream`` per scenario; on a terminal, also a live status line."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._status = ""

    def line(self, text: str) -> None:
        if self.stream is None:
            return
        if self.tty and self._status:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        if self.tty and self._status:
            self.stream.write(self._status)
        self.stream.flush()

    def status(self, text: str) -> None:
        if not self.tty or self.stream is None:
            return
        self._status = text[:200]
        self.stream.write("\r\x1b[K" + self._status)
        self.stream.flush()

    def clear(self) -> None:
        if self.tty and self.stream is not None and self._status:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self._status = ""


# --------------------------------------------------------------------------- refresh


@dataclass
class RefreshReport:
    """What a refresh did."""

    built: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    out_dir: Path = Path("reports")
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.failed else 0

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / MANIFEST_FILE

    @property
    def index_path(self) -> Path:
        return self.out_dir / INDEX_FILE

    def summary(self) -> str:
        t = f"{self.seconds:.2f} s"
        if self.dry_run:
            return (f"refresh (dry run): {len(self.reasons)} would be built, {len(self.up_to_date)} up to date, "
                    f"{len(self.failed)} invalid")
        if not self.built and not self.failed:
            return f"refresh: nothing changed; {len(self.up_to_date)} up to date, nothing rebuilt ({t})"
        return (f"refresh: {len(self.built)} built, {len(self.up_to_date)} up to date, {len(self.failed)} failed "
                f"({t}); index: {self.index_path}")

    def to_dict(self) -> dict[str, Any]:
        return {"built": self.built, "up_to_date": self.up_to_date, "failed": self.failed,
                "reasons": self.reasons, "seconds": round(self.seconds, 3), "dry_run": self.dry_run,
                "manifest": str(self.manifest_path), "index": str(self.index_path), "exit_code": self.exit_code}


def _default_jobs(n: int) -> int:
    return max(1, min(n, os.cpu_count() or 1, 4))


def _entry_paths(out_dir: Path, name: str) -> dict[str, str]:
    from llmsizing.report.runner import HTML_FILE, NOTEBOOK_FILE, PDF_FILE, RESULTS_FILE

    paths = {"dir": name}
    for key, fname in (("html", HTML_FILE), ("pdf", PDF_FILE), ("ipynb", NOTEBOOK_FILE), ("results", RESULTS_FILE)):
        if (out_dir / name / fname).is_file():
            paths[key] = f"{name}/{fname}"
    for key, fname in (("failed_notebook", f"{name}.failed.ipynb"), ("failed_log", f"{name}.failed.log")):
        if (out_dir / fname).is_file():
            paths[key] = fname
    return paths


def refresh(
    params: Sequence[str | os.PathLike[str]] = ("params",),
    out_dir: str | os.PathLike[str] = "reports",
    *,
    jobs: int | None = None,
    force: bool = False,
    wait: float = 0.0,
    to: str | Sequence[str] = ("html", "pdf"),
    notebook_dir: str | os.PathLike[str] | None = None,
    keep_history: int = DEFAULT_KEEP_HISTORY,
    dry_run: bool = False,
    progress: TextIO | None = None,
) -> RefreshReport:
    """Rebuild the reports whose inputs changed; write ``manifest.json`` and ``index.html``.

    ``params`` are folders (every ``*.yaml`` in them) or files. ``jobs`` worker processes
    build in parallel (default: up to 4, at most the CPU count). ``wait`` seconds for a
    running refresh (0: raise :class:`RefreshBusy` at once). ``dry_run`` only plans.
    Progress goes to ``progress`` (e.g. ``sys.stderr``). Raises
    :class:`~llmsizing.errors.SizingError` on bad arguments; a failing *scenario* is not
    an exception but an entry in :attr:`RefreshReport.failed`.
    """
    from llmsizing.report.runner import parse_formats

    t0 = time.perf_counter()
    formats = parse_formats(to)
    if jobs is not None and jobs < 1:
        from llmsizing.errors import ScenarioError

        raise ScenarioError(f"-j must be at least 1, got {jobs}")
    root = Path(out_dir)
    out = _Progress(progress)
    report = RefreshReport(out_dir=root, dry_run=dry_run)

    if dry_run:
        for pl in plan_refresh(params, root, to=formats, force=force, notebook_dir=notebook_dir):
            if pl.error:
                report.failed[pl.name] = pl.error
            elif pl.build:
                report.reasons[pl.name] = pl.reasons
            else:
                report.up_to_date.append(pl.name)
        report.seconds = time.perf_counter() - t0
        return report

    with refresh_lock(root, wait, on_wait=out.line):
        manifest = read_manifest(root)
        plans = plan_refresh(params, root, to=formats, force=force, notebook_dir=notebook_dir, manifest=manifest)
        entries: dict[str, dict[str, Any]] = manifest["scenarios"]
        # Forget scenarios whose params file is gone (their report folders stay on disk).
        for name in [n for n, e in entries.items() if not Path(str(e.get("params", ""))).is_file()]:
            del entries[name]
        now = _iso(_now())
        todo = [pl for pl in plans if pl.build]
        invalid = [pl for pl in plans if pl.error]
        n_jobs = min(jobs or _default_jobs(len(todo)), max(1, len(todo)))
        if todo or invalid:
            out.line(f"refresh {_when(now)}: {len(plans)} scenarios; {len(todo)} to build, "
                     f"{sum(1 for pl in plans if not pl.build and not pl.error)} up to date, {len(invalid)} invalid"
                     + (f" (-j {n_jobs})" if todo else ""))
        for pl in plans:
            entry = entries.setdefault(pl.name, {"scenario": pl.name})
            entry.update({"params": str(pl.params_path), "checked_at": now})
            if pl.kind:
                entry.update({"kind": pl.kind, "title": pl.title, "customer": pl.customer})
            if pl.error:
                _mark_failed(entry, pl, pl.error, now)
                entry["paths"] = _entry_paths(root, pl.name)
                report.failed[pl.name] = pl.error
                out.line(f"  invalid {pl.name}: {pl.error}")
            elif not pl.build:
                entry["action"] = "up-to-date"
                report.up_to_date.append(pl.name)
            else:
                report.reasons[pl.name] = pl.reasons
                out.line(f"  build   {pl.name}: {'; '.join(pl.reasons)}")
        manifest.update({"schema": MANIFEST_SCHEMA, "generated_at": now, "formats": list(formats)})
        if todo:
            _build_all(todo, root, formats, notebook_dir, n_jobs, keep_history, manifest, report, out)
        report.seconds = time.perf_counter() - t0
        manifest["last_refresh"] = {"at": now, "seconds": round(report.seconds, 3), "built": report.built,
                                    "failed": sorted(report.failed), "up_to_date": report.up_to_date}
        _write_manifest(root, manifest)
        render_index(root, manifest)
    report.seconds = time.perf_counter() - t0
    return report


def _mark_failed(entry: dict[str, Any], pl: ScenarioPlan, reason: str, now: str) -> None:
    entry.update({"status": "failed", "action": "failed", "reason": reason, "failed_at": now,
                  "attempted_inputs": pl.inputs, "rebuild_reasons": pl.reasons})


def _build_all(todo: list[ScenarioPlan], root: Path, formats: tuple[str, ...], notebook_dir: Any, n_jobs: int,
               keep: int, manifest: dict[str, Any], report: RefreshReport, out: _Progress) -> None:
    import concurrent.futures as cf
    import multiprocessing

    staging = root / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)  # leftovers of a killed refresh (we hold the lock)
    staging.mkdir(parents=True)
    entries = manifest["scenarios"]
    started: dict[Any, tuple[ScenarioPlan, float]] = {}
    try:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx) as pool:
            for pl in todo:
                stage = staging / pl.name
                stage.mkdir()
                fut = pool.submit(_build_worker, str(pl.params_path), str(stage), formats,
                                  None if notebook_dir is None else str(notebook_dir))
                started[fut] = (pl, time.monotonic())
            pending = set(started)
            try:
                _collect(pending, started, todo, root, staging, entries, keep, manifest, report, out)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # builds not started yet never start
                raise
    finally:
        out.clear()
        shutil.rmtree(staging, ignore_errors=True)


def _collect(pending: set, started: dict, todo: list[ScenarioPlan], root: Path, staging: Path,
             entries: dict[str, Any], keep: int, manifest: dict[str, Any], report: RefreshReport,
             out: _Progress) -> None:
    """Publish each build as it finishes (manifest written after each); show what is running."""
    import concurrent.futures as cf

    done = 0
    while pending:
        finished, pending = cf.wait(pending, timeout=1.0, return_when=cf.FIRST_COMPLETED)
        for fut in finished:
            pl, t_start = started[fut]
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. BrokenProcessPool: the worker died
                result = {"ok": False, "seconds": time.monotonic() - t_start,
                          "reason": f"worker process died: {type(exc).__name__}: {_one_line(exc)}"}
            done += 1
            _finish(pl, result, root, staging / pl.name, entries, keep, report)
            if result["ok"]:
                out.line(f"[{done}/{len(todo)}] built   {pl.name} ({result['seconds']:.1f} s)")
            else:
                out.line(f"[{done}/{len(todo)}] FAILED  {pl.name}: {report.failed[pl.name]}")
            _write_manifest(root, manifest)
        if pending:
            running = [started[f] for f in pending if f.running()]
            shown = ", ".join(f"{p.name} {time.monotonic() - t:.0f}s" for p, t in running[:4])
            out.status(f"[{done}/{len(todo)}] running: {shown or 'starting workers'}")


def _finish(pl: ScenarioPlan, result: Mapping[str, Any], root: Path, stage: Path, entries: dict[str, Any],
            keep: int, report: RefreshReport) -> None:
    """Publish a finished build (or record its failure) and update its manifest entry."""
    entry = entries[pl.name]
    now = _iso(_now())
    staged_failed_nb = stage / f"{pl.name}.failed.ipynb"
    final_failed_nb = root / f"{pl.name}.failed.ipynb"
    final_log = root / f"{pl.name}.failed.log"
    if not result["ok"]:
        reason = str(result["reason"])
        if staged_failed_nb.is_file():
            os.chmod(staged_failed_nb, _file_mode())
            os.replace(staged_failed_nb, final_failed_nb)
            reason = reason.replace(str(staged_failed_nb), str(final_failed_nb))
        if (stage / BUILD_LOG).is_file():
            os.replace(stage / BUILD_LOG, final_log)
        reason = reason.replace(str(stage) + os.sep, str(root) + os.sep)
        if result.get("traceback"):
            reason = reason + " (traceback in manifest)"
            entry["traceback"] = result["traceback"]
        _mark_failed(entry, pl, reason, now)
        entry["paths"] = _entry_paths(root, pl.name)
        report.failed[pl.name] = reason
        return
    from llmsizing.report.runner import RESULTS_FILE

    report_dir = root / pl.name
    before = read_json_file(report_dir / RESULTS_FILE) if report_dir.is_dir() else None
    old_entry = dict(entry) if entry.get("inputs") else None
    archived = _publish(stage / pl.name, report_dir, old_entry, keep)
    for stale in (final_failed_nb, final_log):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    after = read_json_file(report_dir / RESULTS_FILE)
    changes = diff_results(before, after) if before is not None else []
    for k in ("reason", "failed_at", "attempted_inputs", "traceback"):
        entry.pop(k, None)
    entry.update({
        "status": "ok", "action": "built", "built_at": now, "seconds": round(float(result["seconds"]), 2),
        "inputs": pl.inputs, "catalog_files": pl.catalog_files, "rebuild_reasons": pl.reasons,
        "paths": _entry_paths(root, pl.name), "headline": headline(after),
        "previous": _rel(archived, root) if archived else None,
        "changes": [c.to_dict() for c in changes] if before is not None else None,
        "history": [p.name for p in history_entries(root, pl.name)],
    })
    report.built.append(pl.name)


# --------------------------------------------------------------------------- index.html

#: Folder of the index template (``index.html.j2``).
INDEX_TEMPLATE_DIR = _LIB_DIR / "report" / "templates" / "index"
#: Headline numbers shown per report in the index (the least nested first), and changed numbers
#: listed per report; the rest are in results.json and ``llmsizing diff``.
INDEX_HEADLINE_MAX = 10
INDEX_CHANGES_MAX = 25


def _index_headline(head: Mapping[str, Any]) -> list[tuple[str, str]]:
    keys = sorted(head, key=lambda k: (k.count(".") + k.count("["), list(head).index(k)))
    return [(k, format_value(k, head[k])) for k in keys[:INDEX_HEADLINE_MAX]]


def format_value(key: str, value: Any) -> str:
    """A headline number for people: bytes in GiB, hours as h/days, dollars, counts with separators."""
    from llmsizing.units import fmt_bytes, fmt_hours

    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return "n/a"
        leaf = key.rsplit(".", 1)[-1]
        if leaf.endswith("_bytes"):
            return fmt_bytes(value)
        if leaf == "hours" or leaf.endswith("_hours"):
            return fmt_hours(value)
        if leaf.endswith("_usd_per_hour"):
            return f"${value:,.2f}/h"
        if leaf.endswith("_usd"):
            return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"
        if leaf.endswith("_s"):
            return f"{value:,.3g} s"
        if isinstance(value, int):
            return f"{value:,}"
        return f"{value:,.4g}"
    return str(value)


def _fmt_delta(c: Mapping[str, Any]) -> str:
    rel = c.get("relative")
    if isinstance(rel, (int, float)):
        return f"{rel * 100:+.1f}%"
    return ""


def _when(stamp: Any) -> str:
    """``2031-02-03T04:05:06Z`` -> ``2031-02-03 04:05 UTC`` (anything else unchanged)."""
    text = str(stamp or "")
    if len(text) == 20 and text[10] == "T" and text.endswith("Z"):
        return f"{text[:10]} {text[11:16]} UTC"
    return text


def _href(path: str | None) -> str | None:
    from urllib.parse import quote

    return quote(path, safe="/") if path else None


def render_index(out_dir: str | os.PathLike[str], manifest: Mapping[str, Any] | None = None) -> Path:
    """Write ``<out_dir>/index.html`` from the manifest: every report, its status and numbers.

    Every string from scenarios, results and error messages is escaped by Jinja's autoescape.
    """
    import jinja2

    root = Path(out_dir)
    doc = manifest if manifest is not None else read_manifest(root)
    rows = []
    for name, e in sorted(doc.get("scenarios", {}).items()):
        paths = e.get("paths") or {}
        rows.append({
            "name": name,
            "title": e.get("title") or "",
            "customer": e.get("customer") or "",
            "kind": e.get("kind") or "",
            "params": e.get("params") or "",
            "status": e.get("status") or "unknown",
            "action": e.get("action") or "",
            "built_at": e.get("built_at"),
            "failed_at": e.get("failed_at"),
            "reason": e.get("reason"),
            "rebuild_reasons": e.get("rebuild_reasons") or [],
            "headline": _index_headline(e.get("headline") or {}),
            "headline_more": max(0, len(e.get("headline") or {}) - INDEX_HEADLINE_MAX),
            "links": [(label, _href(paths.get(key))) for key, label in
                      (("html", "HTML"), ("pdf", "PDF"), ("ipynb", "notebook"), ("results", "results.json"),
                       ("failed_notebook", "failed run"), ("failed_log", "build log")) if paths.get(key)],
            "changes": [{"key": c.get("key"), "before": format_value(str(c.get("key")), c.get("before")),
                         "after": format_value(str(c.get("key")), c.get("after")), "delta": _fmt_delta(c)}
                        for c in (e.get("changes") or [])[:INDEX_CHANGES_MAX]],
            "changes_more": max(0, len(e.get("changes") or []) - INDEX_CHANGES_MAX),
            "previous": e.get("previous"),
            "previous_href": _href((e.get("previous") or "") + "/" if e.get("previous") else None),
            "history": e.get("history") or [],
        })
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(INDEX_TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    from llmsizing import __version__

    last = doc.get("last_refresh") or {}
    html = env.get_template("index.html.j2").render(
        rows=rows,
        generated_at=doc.get("generated_at") or _iso(_now()),
        version=__version__,
        last=last,
        counts={"ok": sum(r["status"] == "ok" for r in rows), "failed": sum(r["status"] == "failed" for r in rows)},
        changed=sorted((r for r in rows if r["changes"]), key=lambda r: r["built_at"] or "", reverse=True),
    )
    root.mkdir(parents=True, exist_ok=True)
    target = root / INDEX_FILE
    _write_atomic(target, html)
    return target

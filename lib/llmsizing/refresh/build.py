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

A scenario's inputs are listed in :mod:`llmsizing.refresh.inputs`.

Planning imports only the catalog and scenario modules (no papermill, nbconvert, pandas or
estimators), so a refresh with nothing to do takes a fraction of a second.

Modules: ``inputs`` (hashing), ``plan`` (what to build and why), ``lock``, ``history`` (earlier
versions, diffs), ``index`` (manifest.json, index.html), ``files`` (atomic writes, time stamps);
this one runs the plan: worker processes, publishing, recording.

A scenario that fails (invalid params, a notebook error, a render error, a crashed worker)
keeps its last good report; the manifest and index mark it failed with the reason, the
other scenarios still build, and :attr:`RefreshReport.exit_code` is 1. A failed scenario is
tried again by the next refresh even if nothing changed.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from llmsizing.errors import ScenarioError, SizingError
from llmsizing.refresh.files import file_mode, iso, now_utc, one_line, read_json_file, rel
from llmsizing.refresh.history import diff_results, headline, history_entries, publish_report, repair_publish
from llmsizing.refresh.index import (INDEX_FILE, MANIFEST_FILE, MANIFEST_SCHEMA, read_manifest, render_index, when,
                                     write_manifest)
from llmsizing.refresh.lock import refresh_lock
from llmsizing.refresh.plan import ScenarioPlan, plan_refresh
from llmsizing.report.parameters import scenario_name_problem
from llmsizing.report.runner import (HTML_FILE, NOTEBOOK_FILE, PDF_FILE, RESULTS_FILE, check_out_dir,
                                     owned_report_problem, parse_formats, run_scenario)

__all__ = ["DEFAULT_KEEP_HISTORY", "EXIT_FAILED", "RefreshReport", "refresh"]

STAGING_DIR = ".refresh-staging"
#: History entries kept per scenario (oldest pruned first).
DEFAULT_KEEP_HISTORY = 20
#: Exit code of ``llmsizing refresh`` when a scenario failed (0: all good, 2: bad input, 75: busy).
EXIT_FAILED = 1


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


def _worker_init(parent_pid: int) -> None:
    """In each worker: exit when the refresh that started it is gone (killed with SIGKILL, say), instead of
    waiting for work for ever. Its notebook kernel follows (ipykernel exits when its parent does)."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(70)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the refresh, which stops the workers
    threading.Thread(target=watch, name="llmsizing-parent-watch", daemon=True).start()


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Stop every worker of ``pool`` now (a refresh that is interrupted leaves no process behind)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)  # builds not started yet never start
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(1)


def _build_worker(params_path: str, staging_root: str, formats: tuple[str, ...],
                  notebook_dir: str | None) -> dict[str, Any]:
    """Run one scenario with :func:`llmsizing.runner.run_scenario` (in a worker process).

    The report lands in ``staging_root/<scenario>/``; the build's console output in
    ``staging_root/build.log``. Returns a plain dict (picklable whatever happened): ``ok``,
    ``seconds``, and ``reason`` (one line) on failure.
    """
    t0 = time.perf_counter()
    stage_file = Path(staging_root) / STAGE_FILE

    def step(_scenario: str, stage: str, seconds: float) -> None:
        # the parent's live status line reads what the build is doing now
        nxt = {"execute": "html", "html": "pdf"}.get(stage, "")
        with contextlib.suppress(OSError):
            stage_file.write_text(f"{stage} {seconds:.1f} s" + (f", {nxt}" if nxt and nxt in formats else ""),
                                  encoding="utf-8")

    with _output_to(Path(staging_root) / BUILD_LOG):
        try:
            r = run_scenario(params_path, staging_root, formats, notebook_dir=notebook_dir, progress=step)
            return {"ok": True, "seconds": time.perf_counter() - t0, "dir": str(r.report_dir)}
        except SizingError as exc:
            return {"ok": False, "seconds": time.perf_counter() - t0, "reason": one_line(exc)}
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not stop the others
            traceback.print_exc()
            return {"ok": False, "seconds": time.perf_counter() - t0,
                    "reason": f"unexpected {type(exc).__name__}: {one_line(exc)}",
                    "traceback": traceback.format_exc()}



# --------------------------------------------------------------------------- progress

#: A worker's last finished stage (execute, html, pdf) with its time, for the live status line.
STAGE_FILE = "stage.txt"


def _stage_of(stage_dir: Path) -> str:
    """" (execute 12.3 s, html)" from a running build's stage file, or "" (still executing the notebook)."""
    try:
        return f" ({(stage_dir / STAGE_FILE).read_text(encoding='utf-8').strip()})"
    except OSError:
        return " (execute)"


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


def _owned_folder(root: Path, name: str) -> bool:
    """``root/name`` is a real report folder this tool created (never a symlink)."""
    d = root / name
    return d.is_dir() and not d.is_symlink() and owned_report_problem(d) is None


def _entry_paths(out_dir: Path, name: str) -> dict[str, str]:
    paths = {"dir": name}
    if (out_dir / name).is_symlink():
        return paths  # never link into a folder elsewhere
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
    t0 = time.perf_counter()
    formats = parse_formats(to)
    if jobs is not None and jobs < 1:
        raise ScenarioError(f"-j must be at least 1, got {jobs}")
    root = check_out_dir(out_dir)
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
        for name in list(manifest.get("scenarios") or {}):  # finish publishes a killed refresh left half done
            if scenario_name_problem(name) is None and _owned_folder(root, name):
                repair_publish(root / name)
        plans = plan_refresh(params, root, to=formats, force=force, notebook_dir=notebook_dir, manifest=manifest)
        entries: dict[str, dict[str, Any]] = manifest["scenarios"]
        now = iso(now_utc())
        planned = {pl.name for pl in plans}
        # A scenario whose params file is gone: its report folder stays on disk, untouched, and the
        # index says so ("orphaned"); when the folder is gone too, the entry goes.
        for name in [n for n in entries if n not in planned]:
            if _owned_folder(root, name) and not Path(str(entries[name].get("params", ""))).is_file():
                entries[name].update({"status": "orphaned", "action": "params-missing", "checked_at": now,
                                      "reason": f"params file {entries[name].get('params')} no longer exists; the "
                                                f"report is kept as it was (delete {rel(root / name, root)}/ to "
                                                f"drop it)", "paths": _entry_paths(root, name)})
            else:
                del entries[name]
        todo = [pl for pl in plans if pl.build]
        invalid = [pl for pl in plans if pl.error]
        n_jobs = min(jobs or _default_jobs(len(todo)), max(1, len(todo)))
        if todo or invalid:
            out.line(f"refresh {when(now)}: {len(plans)} scenarios; {len(todo)} to build, "
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
        write_manifest(root, manifest)
        render_index(root, manifest)
    report.seconds = time.perf_counter() - t0
    return report


def _mark_failed(entry: dict[str, Any], pl: ScenarioPlan, reason: str, now: str) -> None:
    entry.update({"status": "failed", "action": "failed", "reason": reason, "failed_at": now,
                  "attempted_inputs": pl.inputs, "rebuild_reasons": pl.reasons})


def _build_all(todo: list[ScenarioPlan], root: Path, formats: tuple[str, ...], notebook_dir: Any, n_jobs: int,
               keep: int, manifest: dict[str, Any], report: RefreshReport, out: _Progress) -> None:
    staging = root / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)  # leftovers of a killed refresh (we hold the lock)
    staging.mkdir(parents=True)
    entries = manifest["scenarios"]
    started: dict[Any, tuple[ScenarioPlan, float]] = {}
    try:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=_worker_init,
                                    initargs=(os.getpid(),)) as pool:
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
                _stop_workers(pool)
                raise
    finally:
        out.clear()
        shutil.rmtree(staging, ignore_errors=True)


def _collect(pending: set, started: dict, todo: list[ScenarioPlan], root: Path, staging: Path,
             entries: dict[str, Any], keep: int, manifest: dict[str, Any], report: RefreshReport,
             out: _Progress) -> None:
    """Publish each build as it finishes (manifest written after each); show what is running."""
    done = 0
    while pending:
        finished, pending = cf.wait(pending, timeout=1.0, return_when=cf.FIRST_COMPLETED)
        for fut in finished:
            pl, t_start = started[fut]
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. BrokenProcessPool: the worker died
                result = {"ok": False, "seconds": time.monotonic() - t_start,
                          "reason": f"worker process died: {type(exc).__name__}: {one_line(exc)}"}
            done += 1
            _finish(pl, result, root, staging / pl.name, entries, keep, report)
            if result["ok"]:
                out.line(f"[{done}/{len(todo)}] built   {pl.name} ({result['seconds']:.1f} s)")
            else:
                out.line(f"[{done}/{len(todo)}] FAILED  {pl.name}: {report.failed[pl.name]}")
            write_manifest(root, manifest)
        if pending:
            running = [started[f] for f in pending if f.running()]
            shown = ", ".join(f"{p.name} {time.monotonic() - t:.0f}s{_stage_of(staging / p.name)}"
                              for p, t in running[:4])
            out.status(f"[{done}/{len(todo)}] running: {shown or 'starting workers'}")


def _finish(pl: ScenarioPlan, result: Mapping[str, Any], root: Path, stage: Path, entries: dict[str, Any],
            keep: int, report: RefreshReport) -> None:
    """Publish a finished build (or record its failure) and update its manifest entry."""
    entry = entries[pl.name]
    now = iso(now_utc())
    staged_failed_nb = stage / f"{pl.name}.failed.ipynb"
    final_failed_nb = root / f"{pl.name}.failed.ipynb"
    final_log = root / f"{pl.name}.failed.log"
    if not result["ok"]:
        reason = str(result["reason"])
        if staged_failed_nb.is_file():
            os.chmod(staged_failed_nb, file_mode())
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
    report_dir = root / pl.name
    problem = owned_report_problem(report_dir)
    archived = None
    if problem is None:
        before = read_json_file(report_dir / RESULTS_FILE) if report_dir.is_dir() else None
        old_entry = dict(entry) if entry.get("inputs") else None
        try:
            archived = publish_report(stage / pl.name, report_dir, old_entry, keep)
        except OSError as exc:
            problem = f"cannot publish the new report ({exc.strerror or type(exc).__name__}); the previous files stay"
    if problem is not None:
        # a symlink, a file or a folder the tool did not create is never followed, emptied or replaced
        reason = f"{rel(report_dir, root)} {problem}" if not problem.startswith("cannot") else problem
        _mark_failed(entry, pl, one_line(reason), now)
        entry["paths"] = _entry_paths(root, pl.name)
        report.failed[pl.name] = entry["reason"]
        return
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
        "previous": rel(archived, root) if archived else None,
        "changes": [c.to_dict() for c in changes] if before is not None else None,
        "history": [p.name for p in history_entries(root, pl.name)],
    })
    report.built.append(pl.name)

"""Build one report per scenario: validate, execute the notebook, render HTML and PDF.

::

    run_scenario("params/deepseek-r1-family.yaml")
      1. load_scenario()                 strict validation; nothing runs on bad input
      2. reports/.<name>.<random>.tmp/   a fresh build folder beside the target
      3. render.execute_notebook()       notebooks/<kind>.ipynb with the validated primitives
                                         (the notebook writes results.json through llmsizing.results)
      4. metadata.llmsizing              cover fields: customer, title, scenario, date, version
      5. render.notebook_to_html()       report.html (no code, customer strings escaped)
      6. render.html_to_pdf()            report.pdf
      7. move into place                 reports/<name>/ is replaced only when all steps succeeded

A failed run leaves ``reports/<name>/`` as it was (absent, or the previous complete report).
When a notebook cell fails, the partly executed notebook is kept as
``reports/<name>.failed.ipynb`` for the analyst, and its path is in the error message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmsizing import catalog
from llmsizing.errors import RenderError, ScenarioError
from llmsizing.files import read_bytes_bounded
from llmsizing.resources import package_dir
from llmsizing.report import i18n, render, results
from llmsizing.report.parameters import MAX_PARAMS_FILE_BYTES
from llmsizing.report.scenario import Scenario, load_scenario

__all__ = ["FORMATS", "RunResult", "notebooks_dir", "run_scenario", "run_scenarios"]

#: Output formats ``run_scenario`` can build besides the notebook and results.json.
FORMATS = ("html", "pdf")
#: File names inside ``reports/<scenario>/``.
NOTEBOOK_FILE = "report.ipynb"
HTML_FILE = "report.html"
PDF_FILE = "report.pdf"
RESULTS_FILE = "results.json"
#: Beside the report: every table as a workbook sheet and as a CSV (written by the notebook's last cell).
XLSX_FILE = "tables.xlsx"
TABLES_DIR = "tables"
#: ``progress(scenario, stage, seconds)``: a stage (execute, html, pdf) of a scenario has ended.
Progress = Callable[[str, str, float], None]
#: Longest a single notebook cell may run (seconds).
CELL_TIMEOUT_S = 600
#: Ownership marker: written into every report folder (and build folder) this tool creates. A folder
#: without it is never deleted or replaced (``--out .`` with a scenario named ``docs`` leaves docs/ alone).
OWNER_MARKER = ".llmsizing-report"


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_scenario` built."""

    scenario: str
    params_path: Path
    report_dir: Path
    files: dict[str, Path] = field(default_factory=dict)  # ipynb, html, pdf, results
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step: execute, html, pdf


def notebooks_dir() -> Path:
    """Folder holding ``serving.ipynb``, ``finetune.ipynb`` and ``customer.ipynb``.

    ``LLMSIZING_NOTEBOOK_DIR`` overrides it; the default is the package's ``notebooks/``
    (package data in a wheel; in a source checkout a link to the repository's ``notebooks/``).
    """
    env = os.environ.get("LLMSIZING_NOTEBOOK_DIR")
    if env:
        return Path(env)
    return package_dir("notebooks")


def parse_formats(to: str | Iterable[str]) -> tuple[str, ...]:
    """``"html,pdf"`` or ``("pdf",)`` -> validated tuple; raises ScenarioError on anything else."""
    items = [t.strip().lower() for t in (to.split(",") if isinstance(to, str) else to)]
    items = [t for t in items if t]
    bad = [t for t in items if t not in FORMATS]
    if bad:
        raise ScenarioError(f"unknown output format '{bad[0]}'; choose from: {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(items))


def _file_mode_dir() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _sha256(path: Path) -> str:
    return hashlib.sha256(read_bytes_bounded(path, MAX_PARAMS_FILE_BYTES, error=ScenarioError,
                                             what="params file")).hexdigest()


def _set_cover(ipynb: Path, cover: dict[str, str], params_path: Path) -> None:
    """Write ``metadata.llmsizing`` (the template's cover) into the executed notebook."""
    # nbformat (the Jupyter stack) is imported only when a report is built, to keep the CLI's start-up fast.
    import nbformat

    nb = nbformat.read(ipynb, as_version=4)
    meta = dict(nb.metadata.get("llmsizing", {}))
    meta.update(cover)
    meta["params_file"] = params_path.name
    nb.metadata["llmsizing"] = meta
    nbformat.write(nb, ipynb)


def _finish_results(path: Path, scenario: Scenario, params_path: Path, cover: dict[str, str]) -> None:
    """Add provenance (params file, its hash, version, date) outside the numbers section."""
    if not path.is_file():
        raise RenderError(f"notebook {scenario.notebook!r} did not write {RESULTS_FILE} "
                          f"(it must call llmsizing.results.save_results(..., results_path))")
    doc = results.read_results(path)
    if "audit_table" in doc.get("scenario", {}):
        doc["scenario"]["audit_table"] = scenario.audit_table   # as written, not the build machine's path
    doc["provenance"] = {
        "params_file": params_path.name,
        "params_sha256": _sha256(params_path),
        "version": cover["version"],
        "date": cover["date"],
    }
    # Hugging Face ids read from the cache or the Hub: the commit each report sized.
    revisions = {m: spec.revision for m in scenario.models if (spec := catalog.load_model(m)).revision}
    if revisions:
        doc["provenance"]["model_revisions"] = revisions
    results.write_results(path, doc)


def owned_report_problem(target: Path) -> str | None:
    """Why the tool may not replace ``target`` (None: absent, or a report folder it created).

    Ours: a real folder (not a symlink) holding :data:`OWNER_MARKER`, or -- reports built before the marker
    existed -- a ``results.json`` carrying this tool's ``provenance.params_sha256``.
    """
    if not os.path.lexists(target):
        return None
    if target.is_symlink():
        return "is a symbolic link, not a report folder this tool created"
    if not target.is_dir():
        return "is a file, not a report folder this tool created"
    if (target / OWNER_MARKER).is_file() and not (target / OWNER_MARKER).is_symlink():
        return None
    with contextlib.suppress(Exception):
        doc = json.loads(read_bytes_bounded(target / RESULTS_FILE, 50_000_000).decode("utf-8"))
        if isinstance(doc, dict) and isinstance(doc.get("provenance"), dict) and \
                "params_sha256" in doc["provenance"]:
            return None
    return "exists and is not a report folder this tool created (no llmsizing report in it)"


def _write_marker(folder: Path) -> None:
    (folder / OWNER_MARKER).write_text(json.dumps({"tool": "llmsizing", "pid": os.getpid()}) + "\n",
                                       encoding="utf-8")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def clean_stale_builds(root: Path, name: str) -> list[Path]:
    """Remove hidden build folders of ``name`` left by a run that was killed (``.<name>.<pid>.*.tmp`` and
    ``.<name>.<pid>.*.old`` holding :data:`OWNER_MARKER`, whose process is gone). Returns what was removed."""
    removed = []
    with contextlib.suppress(OSError):
        for p in root.glob(f".{name}.*"):
            parts = p.name[len(name) + 2:].split(".")
            if not (p.name.endswith((".tmp", ".old")) and parts and parts[0].isdigit()):
                continue
            if p.is_symlink() or not p.is_dir() or not (p / OWNER_MARKER).is_file():
                continue
            if _pid_alive(int(parts[0])):
                continue
            target = root / name
            if p.name.endswith(".old") and not os.path.lexists(target):
                os.replace(p, target)  # killed between the two renames of a swap: the previous report returns
                continue
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _move_into_place(build: Path, target: Path) -> None:
    """Replace ``target`` by ``build``; the old report is removed only after the swap, and only if ours."""
    problem = owned_report_problem(target)
    if problem:
        raise ScenarioError(f"{target}: {problem}; it was left untouched (move it away, or choose another "
                            f"--out folder or scenario_name)")
    old: Path | None = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".old", dir=target.parent))
        old.rmdir()
        os.replace(target, old)
    try:
        os.replace(build, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_scenario(
    params_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = "reports",
    to: str | Sequence[str] = FORMATS,
    *,
    notebook_dir: str | os.PathLike[str] | None = None,
    report_language: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Build ``<out_dir>/<scenario>/`` from ``params_path``: report.ipynb, results.json, and ``to``.

    Raises :class:`~llmsizing.errors.ScenarioError` on bad input (before anything runs) and
    :class:`~llmsizing.errors.RenderError` when executing or rendering fails; in both cases
    the previous report folder, if any, is untouched and no build folder is left behind.

    ``report_language`` (``en``, ``zh``) overrides the scenario's ``report_language``; ``progress``
    is called as ``progress(scenario, stage, seconds)`` when a stage (execute, html, pdf) ends.
    """
    t0 = time.perf_counter()
    formats = parse_formats(to)
    params = Path(params_path)
    scenario = load_scenario(params)
    if report_language is not None and report_language != scenario.report_language:
        scenario = scenario.replace(report_language=report_language)
    step = progress or (lambda _scenario, _stage, _seconds: None)
    nb_dir = Path(notebook_dir) if notebook_dir is not None else notebooks_dir()
    notebook = nb_dir / scenario.notebook
    if not notebook.is_file():
        raise RenderError(f"{params}: notebook {str(notebook)!r} for kind '{scenario.kind}' does not exist "
                          f"(set LLMSIZING_NOTEBOOK_DIR to the folder holding {scenario.notebook})")

    root = check_out_dir(out_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"{params}: cannot create the reports folder {str(root)!r}: {exc.strerror or exc}") from None
    target = root / scenario.scenario_name
    # Defense in depth: the name is a validated slug, so the target is a direct child of root.
    if target.resolve().parent != root.resolve():
        raise ScenarioError(f"{params}: key 'scenario_name': {scenario.scenario_name!r} would write outside {root}")
    problem = owned_report_problem(target)
    if problem:  # checked before anything runs, and again at the swap
        raise ScenarioError(f"{params}: {target} {problem}; it was left untouched (move it away, or choose "
                            f"another --out folder or scenario_name)")
    clean_stale_builds(root, scenario.scenario_name)
    failed_nb = root / f"{scenario.scenario_name}.failed.ipynb"

    cover = scenario.cover()
    cover["labels"] = i18n.cover_labels(scenario.report_language, cover["date"])
    parameters = scenario.parameters()
    parameters["date"] = cover["date"]
    parameters["results_path"] = RESULTS_FILE
    if scenario.audit_table_path is not None:
        # the notebook runs in the build folder: give it the table's absolute path
        parameters["audit_table"] = str(scenario.audit_table_path.resolve())

    try:
        build = Path(tempfile.mkdtemp(prefix=f".{scenario.scenario_name}.{os.getpid()}.", suffix=".tmp", dir=root))
        _write_marker(build)
    except OSError as exc:
        raise RenderError(f"{params}: cannot write in the reports folder {str(root)!r}: {exc.strerror or exc}") from None
    timings: dict[str, float] = {}
    try:
        ipynb = build / NOTEBOOK_FILE
        t = time.perf_counter()
        try:
            render.execute_notebook(notebook, ipynb, parameters, cwd=build, timeout_s=CELL_TIMEOUT_S)
        except RenderError as exc:
            kept = build / f"{Path(NOTEBOOK_FILE).stem}.failed.ipynb"
            if kept.exists():
                os.replace(kept, failed_nb)
                raise RenderError(f"{params}: {_without_kept_path(str(exc))} (partial run kept in "
                                  f"{str(failed_nb)!r})") from exc
            raise RenderError(f"{params}: {exc}") from exc
        timings["execute"] = time.perf_counter() - t
        step(scenario.scenario_name, "execute", timings["execute"])
        _finish_results(build / RESULTS_FILE, scenario, params, cover)
        _set_cover(ipynb, cover, params)
        if formats:
            t = time.perf_counter()
            render.notebook_to_html(ipynb, build / HTML_FILE, cover)
            timings["html"] = time.perf_counter() - t
            step(scenario.scenario_name, "html", timings["html"])
        if "pdf" in formats:
            t = time.perf_counter()
            render.html_to_pdf(build / HTML_FILE, build / PDF_FILE)
            timings["pdf"] = time.perf_counter() - t
            step(scenario.scenario_name, "pdf", timings["pdf"])
            if "html" not in formats:
                (build / HTML_FILE).unlink()
        os.chmod(build, _file_mode_dir())
        _move_into_place(build, target)
    except OSError as exc:
        # A full disk, a permission or quota problem while writing: the build folder is removed
        # below and the previous report, if any, is still in place.
        # exc.filename may name the build folder, removed below: the message names the reports folder only
        kept = "the previous report is unchanged" if target.exists() else "no report was written"
        raise RenderError(f"{params}: cannot write the report in {str(root)!r}: {exc.strerror or type(exc).__name__}; "
                          f"{kept}") from exc
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
    if failed_nb.is_file() and not failed_nb.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            failed_nb.unlink()

    files = {"ipynb": target / NOTEBOOK_FILE, "results": target / RESULTS_FILE}
    if "html" in formats:
        files["html"] = target / HTML_FILE
    if "pdf" in formats:
        files["pdf"] = target / PDF_FILE
    if (target / XLSX_FILE).is_file():
        files["xlsx"] = target / XLSX_FILE
        files["csv"] = target / TABLES_DIR
    return RunResult(scenario.scenario_name, params, target, files, time.perf_counter() - t0, timings)


def check_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """The reports folder: refuse an empty name (``--out ""`` would write into the working directory)."""
    text = os.fspath(out_dir)
    if not str(text).strip():
        raise ScenarioError("--out must name a reports folder (got an empty name); e.g. --out reports")
    return Path(text)


def _without_kept_path(message: str) -> str:
    """Drop render's '(partial run kept in ...)' suffix, which points into the build folder."""
    cut = message.rfind(" (partial run kept in ")
    return message[:cut] if cut >= 0 else message


def run_scenarios(
    params_paths: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] = "reports",
    to: str | Sequence[str] = FORMATS,
    *,
    report_language: str | None = None,
    progress: Progress | None = None,
) -> list[RunResult]:
    """Validate every params file first, then build each report in turn.

    Validation of all files comes first, so a typo in the third file fails before the first
    report is built. Two files naming the same scenario are an error.
    """
    paths = [Path(p) for p in params_paths]
    if not paths:
        raise ScenarioError("no params files given")
    check_out_dir(out_dir)
    formats = parse_formats(to)
    seen: dict[str, Path] = {}
    for p in paths:
        sc = load_scenario(p)
        if report_language is not None and report_language != sc.report_language:
            sc = sc.replace(report_language=report_language)
        if sc.scenario_name in seen:
            raise ScenarioError(f"{p}: key 'scenario_name': {sc.scenario_name!r} is also the scenario of "
                                f"{seen[sc.scenario_name]}; each report needs its own name")
        seen[sc.scenario_name] = p
    return [run_scenario(p, out_dir, formats, report_language=report_language, progress=progress) for p in paths]


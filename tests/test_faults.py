"""Faults while building a report (issue #8): a kernel that dies, a full disk, an interrupted run.

Each test first builds a good report through the real runner (papermill -> nbconvert ->
WeasyPrint) from the tiny notebook in ``tests/data/fault_notebooks/`` (``notes`` containing
``FAULT:DIE`` makes the kernel ``os._exit(1)``, ``FAULT:RAISE`` fails a cell, ``FAULT:SLEEP``
sleeps so the run can be interrupted), then injects the fault and checks that

* the command exits with the documented code (2 for a failure, 130 for Ctrl-C) and says what
  happened on one ``llmsizing:`` line, with no Python traceback from the tool itself;
* the good report is byte-identical afterwards (no half-written file replaced it);
* no temporary build folder or stray file is left in the reports folder.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmsizing import catalog
from llmsizing.report import render, results
from llmsizing.cli import main

pytestmark = [pytest.mark.notebook, pytest.mark.render, pytest.mark.slow]

DATA = Path(__file__).parent / "data"
FAULT_NOTEBOOKS = DATA / "fault_notebooks"
REPO = Path(__file__).resolve().parents[1]

SCENARIO = """\
kind: serving
scenario_name: faulty
customer: ACME Fault Testing
title: Fault injection
models: [deepseek-r1-distill-qwen-7b]
gpus: [h100]
users: 3
"""


def _weasyprint_usable() -> bool:
    try:
        import weasyprint  # noqa: F401
    except OSError:
        return False
    return True


pytestmark.append(pytest.mark.skipif(not _weasyprint_usable(), reason="WeasyPrint system libraries missing"))


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LLMSIZING_CATALOG_DIR", raising=False)
    monkeypatch.setenv("LLMSIZING_NOTEBOOK_DIR", str(FAULT_NOTEBOOKS))
    catalog.model_entries.cache_clear()
    catalog.gpu_catalog.cache_clear()


def _params(tmp_path: Path, notes: str = "") -> Path:
    p = tmp_path / ("faulty.yaml" if not notes else f"faulty-{notes.split(':')[-1].lower()}.yaml")
    text = SCENARIO + (f"notes: '{notes}'\n" if notes else "")
    p.write_text(text, encoding="utf-8")
    return p


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256), hidden build folders included."""
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def _good_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete report, built once per module through the real runner."""
    root = tmp_path_factory.mktemp("good")
    out = root / "reports"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LLMSIZING_CATALOG_DIR", raising=False)
        mp.setenv("LLMSIZING_NOTEBOOK_DIR", str(FAULT_NOTEBOOKS))
        from llmsizing.report.runner import run_scenario

        run_scenario(_params(root), out)
    return out


@pytest.fixture
def good(tmp_path: Path, _good_build: Path) -> tuple[Path, dict[str, str]]:
    """A private copy of a complete report in ``tmp_path/reports/faulty`` and the hash of every file."""
    out = tmp_path / "reports"
    shutil.copytree(_good_build, out)
    files = _snapshot(out)
    assert {"faulty/report.pdf", "faulty/report.html", "faulty/report.ipynb", "faulty/results.json"} <= set(files)
    return out, files


def _one_error_line(err: str) -> str:
    """The tool's own message: exactly one ``llmsizing`` line, no traceback through llmsizing code."""
    ours = [line for line in err.splitlines() if line.startswith("llmsizing")]
    assert len(ours) == 1, err
    assert "Traceback" not in err, err
    return ours[0]


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch, _good_build: Path) -> None:
    """Replace notebook execution by a copy of the good run's outputs (the disk faults below
    happen after execution; starting a kernel for each would only cost time)."""

    def execute_notebook(notebook_path, output_path, parameters, cwd=None, **kwargs):
        shutil.copyfile(_good_build / "faulty" / "report.ipynb", output_path)
        shutil.copyfile(_good_build / "faulty" / "results.json", Path(cwd) / parameters["results_path"])

    monkeypatch.setattr(render, "execute_notebook", execute_notebook)


def _check_unchanged(out: Path, files: dict[str, str]) -> None:
    assert _snapshot(out) == files, "the good report changed or a stray file was left behind"
    assert _entries(out) == ["faulty"], _entries(out)


# --------------------------------------------------------------------------- kernel faults


def test_kernel_that_dies_mid_run_keeps_the_good_report(tmp_path, good, capsys):
    out, files = good
    code = main(["run", str(_params(tmp_path, "FAULT:DIE")), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    line = _one_error_line(err)
    assert "DeadKernelError" in line or "died" in line.lower(), line
    _check_unchanged(out, files)


def test_failing_cell_keeps_the_good_report_and_names_the_partial_run(tmp_path, good, capsys):
    out, files = good
    code = main(["run", str(_params(tmp_path, "FAULT:RAISE")), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    line = _one_error_line(err)
    assert "fault notebook told to raise" in line, line
    kept = out / "faulty.failed.ipynb"
    assert str(kept) in line and kept.is_file(), "the partial run is kept beside the report for the analyst"
    kept.unlink()
    _check_unchanged(out, files)


# --------------------------------------------------------------------------- full disk

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_writing_html(tmp_path, good, capsys, monkeypatch, no_kernel):
    """The HTML writer gets half its bytes out, then the disk is full."""
    out, files = good
    real_write_text = Path.write_text

    def write_text(self, data, *args, **kwargs):
        if ".tmp.html" in self.name:
            real_write_text(self, data[: len(data) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    code = main(["run", str(_params(tmp_path)), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    line = _one_error_line(err)
    assert "No space left on device" in line, line
    assert "previous report is unchanged" in line, line
    _check_unchanged(out, files)


def test_full_disk_while_writing_pdf(tmp_path, good, capsys, monkeypatch, no_kernel):
    """WeasyPrint writes part of the PDF, then the disk is full."""
    import weasyprint

    out, files = good

    def write_pdf(self, target=None, *args, **kwargs):
        Path(target).write_bytes(b"%PDF-1.7\n% truncated")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(weasyprint.HTML, "write_pdf", write_pdf)
    monkeypatch.setattr(weasyprint.Document, "write_pdf", write_pdf)   # the report lays out, then writes
    code = main(["run", str(_params(tmp_path)), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    line = _one_error_line(err)
    assert "No space left on device" in line, line
    _check_unchanged(out, files)


def test_full_disk_while_writing_results(tmp_path, good, capsys, monkeypatch, no_kernel):
    """The disk fills up when the runner adds provenance to results.json."""
    out, files = good

    def write_results(path, doc):
        Path(path).write_text("{", encoding="utf-8")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(results, "write_results", write_results)
    code = main(["run", str(_params(tmp_path)), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "No space left on device" in _one_error_line(err)
    _check_unchanged(out, files)


def test_reports_folder_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "reports"
    blocker.write_text("not a folder")
    code = main(["run", str(_params(tmp_path)), "--out", str(blocker)])
    err = capsys.readouterr().err
    assert code == 2
    assert "reports folder" in _one_error_line(err)
    assert blocker.read_text() == "not a folder"


# --------------------------------------------------------------------------- interrupted runs


def test_keyboard_interrupt_while_rendering_keeps_the_good_report(tmp_path, good, capsys, monkeypatch, no_kernel):
    out, files = good

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "html_to_pdf", interrupted)
    code = main(["run", str(_params(tmp_path)), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130
    assert _one_error_line(err) == "llmsizing: interrupted; nothing was written"
    _check_unchanged(out, files)


def _llmsizing_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("llmsizing")
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from llmsizing.cli import main; sys.exit(main())"]


@pytest.mark.parametrize("target", ["process", "group"])
def test_sigint_during_kernel_run(tmp_path, good, target):
    """Ctrl-C (SIGINT to the process, or to its whole process group as a terminal does) once the
    kernel is running: exit 130, one line, the good report untouched, the kernel gone."""
    out, files = good
    marker = tmp_path / "kernel.pid"
    env = dict(os.environ, LLMSIZING_FAULT_MARKER=str(marker), LLMSIZING_NOTEBOOK_DIR=str(FAULT_NOTEBOOKS))
    proc = subprocess.Popen(
        [*_llmsizing_cmd(), "run", str(_params(tmp_path, "FAULT:SLEEP")), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (marker.is_file() and marker.read_text()) and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"run ended before the kernel started: {proc.communicate()}")
            time.sleep(0.05)
        assert marker.is_file(), "the kernel never started"
        kernel_pid = int(marker.read_text())
        time.sleep(0.2)
        if target == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    ours = [line for line in err.splitlines() if line.startswith("llmsizing")]
    assert ours == ["llmsizing: interrupted; nothing was written"], err
    assert 'File "' + str(REPO / "lib" / "llmsizing") not in err, "traceback through llmsizing code"
    _check_unchanged(out, files)
    for _ in range(50):  # the kernel is shut down with the run, not left orphaned
        try:
            os.kill(kernel_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(kernel_pid, signal.SIGKILL)
        pytest.fail(f"kernel {kernel_pid} still running after the interrupted run")

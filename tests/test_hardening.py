"""Hardening v2 (issue #16): no data loss, no hangs, "does not fit" always renders.

The one-line bad inputs of this round are rows of ``tests/test_bad_inputs.py``; here are the
cases that need processes, special files, signals or a real report:

* special files (a FIFO, a symlink to /dev/zero, a directory, a 2 GB sparse file) as params file,
  config.json, audit table, catalog entry and inside a refreshed params folder: refused at once
  (every subprocess runs under a timeout, so a hang fails the test instead of blocking it);
* ownership: ``run --out DIR`` never deletes or replaces a folder the tool did not create; refresh
  never follows a symlinked report folder; a report folder replaced by a file, or a deleted params
  file, gets a clear status while manifest.json and index.html are still written;
* publish as a unit with roll-forward repair, history ordered by sequence (not the clock);
* signals: SIGTERM unwinds run and refresh (no build folder, no worker, lock released); a
  SIGKILLed refresh leaves no worker behind; a SIGKILLed run's hidden build folder is removed by
  the next run;
* text: the one sanitizer (``llmsizing.text``) on the terminal, in index.html and charts;
  ``O'Brien`` shows as O'Brien;
* "does not fit" renders: a serving report with 2 GiB GPUs, 100,000 users, or a context sweep
  past the model's maximum is a report that says so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmsizing import catalog
from llmsizing.cli import main
from llmsizing.errors import SizingError
from llmsizing.files import read_bytes_bounded, read_text_bounded
from llmsizing.refresh.history import (HISTORY_RECORD, PUBLISH_LIST, PUBLISHING_DIR, history_entries, publish_report,
                                       repair_publish)
from llmsizing.report.runner import OWNER_MARKER, owned_report_problem
from llmsizing.text import clean_text, for_chart, for_terminal
from llmsizing.units import parse_count

DATA = Path(__file__).parent / "data"
FAULT_NOTEBOOKS = DATA / "fault_notebooks"
REPO = Path(__file__).resolve().parents[1]
MODEL = "deepseek-r1-distill-qwen-7b"
SCENARIO = f"kind: serving\nmodels: [{MODEL}]\ngpus: [h100]\n"
#: Longest any command below may take; a hang fails the test at this point.
TIMEOUT_S = 60


def _cmd() -> list[str]:
    exe = Path(sys.executable).with_name("llmsizing")
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from llmsizing.cli import main; sys.exit(main())"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LLMSIZING_CATALOG_DIR"}
    env.setdefault("PYTHONPATH", str(REPO / "lib"))
    env["LLMSIZING_NOTEBOOK_DIR"] = str(FAULT_NOTEBOOKS)
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, timeout: float = TIMEOUT_S, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*_cmd(), *args], capture_output=True, text=True, cwd=cwd, env=_env(**env),
                          timeout=timeout)


def _tree(folder: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        out[key] = (p.read_bytes() if p.is_file() and not p.is_symlink() else
                    f"link->{os.readlink(p)}" if p.is_symlink() else "<dir>")
    return out


@pytest.fixture(autouse=True)
def _catalog(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LLMSIZING_CATALOG_DIR", raising=False)
    monkeypatch.setenv("LLMSIZING_NOTEBOOK_DIR", str(FAULT_NOTEBOOKS))
    catalog.model_entries.cache_clear()
    catalog.gpu_catalog.cache_clear()
    yield
    catalog.model_entries.cache_clear()
    catalog.gpu_catalog.cache_clear()


# --------------------------------------------------------------------------- the one bounded reader


def _special(kind: str, path: Path) -> Path:
    """Make ``path`` a special file of ``kind``: fifo, dev-zero (symlink), directory or sparse (2 GB)."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    elif kind == "sparse":
        with open(path, "wb") as fh:
            fh.truncate(2 * 10**9)
    return path


SPECIALS = ["fifo", "dev-zero", "directory", "sparse"]
SPECIAL_MESSAGE = {"fifo": "named pipe", "dev-zero": "character device", "directory": "directory",
                   "sparse": "too large"}


@pytest.mark.unit
@pytest.mark.parametrize("kind", SPECIALS)
def test_bounded_reader_refuses_special_files_at_once(kind: str, tmp_path: Path):
    path = _special(kind, tmp_path / "input.yaml")
    t0 = time.monotonic()
    with pytest.raises(SizingError, match=SPECIAL_MESSAGE[kind]):
        read_text_bounded(path, 1_000_000, what="params file")
    assert time.monotonic() - t0 < 2, "refused at once, without reading"


@pytest.mark.unit
def test_bounded_reader_reads_at_most_the_limit(tmp_path: Path):
    p = tmp_path / "f.txt"
    p.write_bytes(b"a" * 100)
    assert read_bytes_bounded(p, 100) == b"a" * 100
    with pytest.raises(SizingError, match="too large"):
        read_bytes_bounded(p, 99)
    with pytest.raises(SizingError, match="no such"):
        read_bytes_bounded(tmp_path / "missing", 99)


@pytest.mark.parametrize("kind", SPECIALS)
@pytest.mark.parametrize("use", ["params", "config", "audit", "catalog"])
def test_special_file_as_input_is_refused_without_hanging(use: str, kind: str, tmp_path: Path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env: dict[str, str] = {}
    if use == "params":
        args = ["run", str(_special(kind, tmp_path / "p.yaml")), "--out", str(tmp_path / "out")]
    elif use == "config":
        args = ["model", str(_special(kind, tmp_path / "config.json")), "--json"]
    elif use == "audit":
        args = ["audit", str(_special(kind, tmp_path / "table.yaml"))]
    else:
        (tmp_path / "cat" / "gpus").mkdir(parents=True)
        _special(kind, tmp_path / "cat" / "gpus" / "odd.yaml")
        args, env = ["gpus", "--json"], {"LLMSIZING_CATALOG_DIR": str(tmp_path / "cat")}
    proc = _run(args, cwd, **env)
    if use == "config" and kind == "directory":  # a folder is read as folder/config.json, which is missing
        assert proc.returncode == 2 and "no such config file" in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 2, proc.stderr
        assert SPECIAL_MESSAGE[kind] in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert list(cwd.iterdir()) == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "sparse"])
def test_special_file_in_a_refreshed_params_folder(kind: str, tmp_path: Path):
    """refresh marks the special file invalid at once, writes manifest and index, and releases its lock."""
    params = tmp_path / "params"
    params.mkdir()
    _special(kind, params / "odd.yaml")
    out = tmp_path / "reports"
    proc = _run(["refresh", str(params), "--out", str(out), "--to", "html"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenarios"]["odd"]["status"] == "failed"
    assert SPECIAL_MESSAGE[kind] in manifest["scenarios"]["odd"]["reason"]
    assert (out / "index.html").is_file()
    again = _run(["refresh", str(params), "--out", str(out), "--to", "html"], tmp_path)
    assert again.returncode == 1, "the lock was released (a held lock exits 75)"


# --------------------------------------------------------------------------- ownership: run


def _params(folder: Path, name: str, extra: str = "") -> Path:
    p = folder / f"{name}.yaml"
    p.write_text(SCENARIO + f"scenario_name: {name}\n" + extra, encoding="utf-8")
    return p


@pytest.mark.notebook
def test_run_never_deletes_a_folder_it_did_not_create(tmp_path: Path, capsys):
    """``llmsizing run p.yaml --out .`` with a scenario named ``docs`` leaves the project's docs/ alone."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "architecture.md").write_text("precious")
    (tmp_path / "notes").write_text("a file, not a folder")
    before = _tree(tmp_path)
    params_dir = tmp_path.parent / f"{tmp_path.name}-params"
    params_dir.mkdir()
    for name in ("docs", "notes"):
        code = main(["run", str(_params(params_dir, name)), "--out", str(tmp_path), "--to", "html"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "not a report folder this tool created" in err and "left untouched" in err, err
        assert len(err.splitlines()) == 1
    assert _tree(tmp_path) == before, "nothing the tool did not create was touched"


@pytest.mark.notebook
def test_run_replaces_its_own_report_and_legacy_reports(tmp_path: Path, capsys):
    params = _params(tmp_path, "mine")
    out = tmp_path / "reports"
    assert main(["run", str(params), "--out", str(out), "--to", "html"]) == 0, capsys.readouterr().err
    assert (out / "mine" / OWNER_MARKER).is_file()
    assert main(["run", str(params), "--out", str(out), "--to", "html"]) == 0, capsys.readouterr().err
    # a report built before the marker existed: results.json with this tool's provenance
    (out / "mine" / OWNER_MARKER).unlink()
    assert owned_report_problem(out / "mine") is None
    assert main(["run", str(params), "--out", str(out), "--to", "html"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["mine"], "no build folder left behind"


@pytest.mark.notebook
def test_symlinked_report_folder_is_refused_by_run(tmp_path: Path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    out = tmp_path / "reports"
    out.mkdir()
    (out / "alpha").symlink_to(outside, target_is_directory=True)
    code = main(["run", str(_params(tmp_path, "alpha")), "--out", str(out), "--to", "html"])
    assert code == 2
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


# --------------------------------------------------------------------------- ownership: refresh


def _refresh(params: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return _run(["refresh", str(params), "--out", str(out), "--to", "html", "-j", "1", *extra], params.parent,
                timeout=180)


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two scenarios, alpha and beta, refreshed once (copied by each test that changes them)."""
    root = tmp_path_factory.mktemp("refreshed")
    params = root / "params"
    params.mkdir()
    for name in ("alpha", "beta"):
        _params(params, name)
    proc = _refresh(params, root / "reports")
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture
def copy_of(refreshed: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(refreshed, tmp_path / "w", symlinks=True)
    manifest = tmp_path / "w" / "reports" / "manifest.json"
    doc = json.loads(manifest.read_text())
    for e in doc["scenarios"].values():  # the params paths point into the copy
        e["params"] = str(tmp_path / "w" / "params" / Path(e["params"]).name)
    manifest.write_text(json.dumps(doc))
    return tmp_path / "w"


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("replacement", ["symlink", "file", "foreign-folder"])
def test_refresh_never_touches_a_report_folder_it_does_not_own(copy_of: Path, replacement: str):
    out = copy_of / "reports"
    import shutil

    shutil.rmtree(out / "alpha")
    outside = copy_of / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    if replacement == "symlink":
        (out / "alpha").symlink_to(outside, target_is_directory=True)
    elif replacement == "file":
        (out / "alpha").write_text("a file where the report was")
    else:
        (out / "alpha").mkdir()
        (out / "alpha" / "precious.txt").write_text("keep")
    before_outside = _tree(outside)
    before_alpha = _tree(out / "alpha") if (out / "alpha").is_dir() and replacement != "symlink" else None
    proc = _refresh(copy_of / "params", out)
    assert proc.returncode == 1, proc.stderr  # a failed scenario, documented exit code 1
    assert "Traceback" not in proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    alpha = manifest["scenarios"]["alpha"]
    assert alpha["status"] == "failed"
    assert {"symlink": "symbolic link", "file": "is a file", "foreign-folder": "not a report folder"}[replacement] \
        in alpha["reason"]
    assert manifest["scenarios"]["beta"]["status"] == "ok"
    assert "alpha" in (out / "index.html").read_text()
    assert _tree(outside) == before_outside
    if before_alpha is not None:
        assert _tree(out / "alpha") == before_alpha
    if replacement == "file":
        assert (out / "alpha").read_text() == "a file where the report was"
    assert not (out / ".refresh-staging").exists()


@pytest.mark.notebook
@pytest.mark.slow
def test_deleted_params_file_keeps_its_report_in_manifest_and_index(copy_of: Path):
    out = copy_of / "reports"
    (copy_of / "params" / "beta.yaml").unlink()
    before = _tree(out / "beta")
    proc = _refresh(copy_of / "params", out)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    beta = manifest["scenarios"]["beta"]
    assert beta["status"] == "orphaned" and "no longer exists" in beta["reason"]
    index = (out / "index.html").read_text()
    assert "beta" in index and "orphaned" in index
    assert _tree(out / "beta") == before, "the orphaned report is kept as it was"


# --------------------------------------------------------------------------- publish as a unit; history order


def _stage(folder: Path, version: str) -> Path:
    folder.mkdir()
    for name in ("report.html", "report.pdf", "results.json"):
        (folder / name).write_text(f"{name} {version}")
    return folder


@pytest.mark.unit
def test_half_published_report_is_repaired_forward(tmp_path: Path):
    """A SIGKILL after report.html moved but before report.pdf and results.json: the next publish or
    refresh finishes the job, so the three files are one version again."""
    report = tmp_path / "reports" / "s"
    publish_report(_stage(tmp_path / "v1", "v1"), report, None, keep=5)
    staged = _stage(tmp_path / "v2", "v2")
    (staged / PUBLISH_LIST).write_text(json.dumps({"files": ["report.html", "report.pdf", "results.json"]}))
    os.replace(staged, report / PUBLISHING_DIR)
    os.replace(report / PUBLISHING_DIR / "report.html", report / "report.html")  # ... killed here
    assert {p.name: p.read_text().split()[-1] for p in report.iterdir() if p.is_file()} == \
        {"report.html": "v2", "report.pdf": "v1", "results.json": "v1"}
    assert repair_publish(report)
    assert {p.name: p.read_text().split()[-1] for p in report.iterdir() if p.is_file()} == \
        {"report.html": "v2", "report.pdf": "v2", "results.json": "v2"}
    assert not (report / PUBLISHING_DIR).exists()
    assert not repair_publish(report), "nothing left to repair"


@pytest.mark.unit
def test_history_is_ordered_by_sequence_not_by_the_clock(tmp_path: Path):
    """A build stamped in the future must not make the next archive prune the real previous version."""
    out = tmp_path / "reports"
    report = out / "s"
    stamps = [None, "2031-01-01T00:00:00Z", "2099-12-31T23:59:59Z", "2031-01-02T00:00:00Z",
              "2031-01-03T00:00:00Z"]
    for i, built_at in enumerate(stamps):
        old = {"built_at": built_at, "inputs": {"v": i - 1}} if built_at else None
        publish_report(_stage(tmp_path / f"v{i}", f"v{i}"), report, old, keep=2)
    versions = history_entries(out, "s")
    assert [json.loads((v / HISTORY_RECORD).read_text())["inputs"]["v"] for v in versions] == [2, 3], \
        "the two newest archives are kept, whatever their time stamps"
    assert (versions[-1] / "report.html").read_text() == "report.html v3"


# --------------------------------------------------------------------------- signals: no hangs, nothing left


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with_state = stat.read_text().rsplit(")", 1)[1].split() if stat.exists() else ["Z"]
    return with_state[0] != "Z"


def _start(args: list[str], cwd: Path, marker: Path) -> subprocess.Popen:
    return subprocess.Popen([*_cmd(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=_env(LLMSIZING_FAULT_MARKER=str(marker)), start_new_session=True)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_stopped_refresh_leaves_no_worker_and_no_lock(tmp_path: Path, sig: int):
    params = tmp_path / "params"
    params.mkdir()
    _params(params, "sleepy", "notes: 'FAULT:SLEEP'\n")
    out = tmp_path / "reports"
    marker = tmp_path / "kernel.pid"
    proc = _start(["refresh", str(params), "--out", str(out), "--to", "html", "-j", "1"], tmp_path, marker)
    try:
        _wait_for(lambda: marker.is_file() and marker.read_text(), 90, "the kernel to start")
        workers = _descendants(proc.pid)
        assert int(marker.read_text()) in workers
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=TIMEOUT_S)
        _wait_for(lambda: not any(_alive(p) for p in workers), 30, "the workers and the kernel to exit")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for p in _descendants(proc.pid):
            os.kill(p, signal.SIGKILL)
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert "stopped by signal" in err and "Traceback" not in err, err
        assert not (out / ".refresh-staging").exists()
    again = _run(["refresh", str(params), "--out", str(out), "--dry-run"], tmp_path)
    assert again.returncode != 75, "the lock was released"


@pytest.mark.notebook
@pytest.mark.slow
def test_killed_run_leaves_nothing_after_the_next_run(tmp_path: Path):
    """SIGTERM: the build folder goes at once. SIGKILL: the next run of the scenario removes it."""
    out = tmp_path / "reports"
    sleepy = _params(tmp_path, "sleepy", "notes: 'FAULT:SLEEP'\n")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        marker = tmp_path / f"kernel-{int(sig)}.pid"
        proc = _start(["run", str(sleepy), "--out", str(out), "--to", "html"], tmp_path, marker)
        try:
            _wait_for(lambda: marker.is_file() and marker.read_text(), 90, "the kernel to start")
            kernel = int(marker.read_text())
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=TIMEOUT_S)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if sig == signal.SIGTERM:
            assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
            assert [p.name for p in out.iterdir()] == [], "no hidden build folder after SIGTERM"
            _wait_for(lambda: not _alive(kernel), 30, "the kernel to exit")
        else:
            with_tmp = [p.name for p in out.iterdir()]
            assert len(with_tmp) == 1 and with_tmp[0].startswith(".sleepy.") and with_tmp[0].endswith(".tmp")
            with pytest.raises(ProcessLookupError):
                for _ in range(600):
                    os.kill(kernel, 0)
                    time.sleep(0.05)
    good = _params(tmp_path, "sleepy")  # the same scenario, now without the sleep
    proc = _run(["run", str(good), "--out", str(out), "--to", "html"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["sleepy"], "the stale build folder was removed"


# --------------------------------------------------------------------------- text: the one sanitizer


@pytest.mark.unit
@pytest.mark.parametrize("raw, clean", [
    ("ACME\x1b[2J\x07 Corp", "ACME[2J Corp"),
    ("evil\u202egnp.exe", "evilgnp.exe"),
    ("a\u2066b\u2069c\u200fd", "abcd"),
    ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ("pair \ud83d\ude80", "pair \U0001F680"),
    ("O'Brien & <b>", "O'Brien & <b>"),
    ("tab\tand\nnewline", "tab\tand\nnewline"),
    ("\x85\x9b31m", "31m"),
])
def test_clean_text(raw: str, clean: str):
    assert clean_text(raw) == clean


@pytest.mark.unit
def test_terminal_and_chart_forms():
    assert for_terminal("line one\nfake: line two\x1b]0;title\x07") == "line one fake: line two]0;title"
    assert for_chart("$x^2$ costs \\$5") == "\\$x^2\\$ costs \\$5"
    assert parse_count("8", "gpus") == 8
    with pytest.raises(SizingError, match="accepted: 1 to 100,000"):
        parse_count("9" * 5000, "gpus")


@pytest.mark.unit
def test_error_lines_carry_no_escape_sequences(tmp_path: Path, capsys):
    bad = tmp_path / "x\x1b[31mred\x07\u202eevil.yaml"
    bad.write_text("kind: nonsense\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err
    assert len(err.splitlines()) == 1


@pytest.mark.slow
def test_invalid_params_file_name_is_sanitized_in_index_and_terminal(tmp_path: Path):
    params = tmp_path / "params"
    params.mkdir()
    (params / "evil\x1b[2J\x07\u202e.yaml").write_text("kind: serving\nusers: 0\n")
    out = tmp_path / "reports"
    proc = _run(["refresh", str(params), "--out", str(out)], tmp_path)
    assert proc.returncode == 1, proc.stderr
    entry = next(iter(json.loads((out / "manifest.json").read_text())["scenarios"].values()))
    # manifest.json keeps the real path under "params" (programs open it); every shown text is sanitized
    for text in (proc.stderr, (out / "index.html").read_text(), entry["reason"], json.dumps(entry["paths"])):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


@pytest.mark.unit
def test_charts_draw_names_as_text():
    """Names reach matplotlib as text: '$\\frac{1}{$' does not crash, '$x^2$' is not math, a lone
    surrogate does not raise UnicodeEncodeError."""
    from llmsizing.report import figures

    with figures.matplotlib.rc_context(figures.RC):
        fig, (ax,) = figures._new(2.0)
        names = ["$\\frac{1}{$", "$x^2$", clean_text("lone \ud800"), "ok"]
        ax.barh(names, [1, 2, 3, 4])
        ax.set_title(names[0])
    png = figures.ReportFigure(fig, "caption").png()
    assert png[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- "does not fit" always renders


@pytest.mark.notebook
@pytest.mark.render
@pytest.mark.slow
def test_does_not_fit_renders_as_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """2 GiB GPUs, 100,000 users, a context sweep past the model's maximum: each is a report that says it
    does not fit (the real serving notebook; no 'Data cannot be log-scaled'). The customer O'Brien shows
    as O'Brien (escaped once)."""
    monkeypatch.delenv("LLMSIZING_NOTEBOOK_DIR")
    monkeypatch.chdir(tmp_path)
    cases = {"tiny-gpu": "gpu_memory: 2GiB\n", "many-users": "users: 100000\n",
             "long-sweep": "context_sweep: [4096, 131072, 262144, 1048576]\n"}
    files = [_params(tmp_path, name, extra + "customer: \"O'Brien \\u202eevil\"\n") for name, extra in cases.items()]
    code = main(["run", *map(str, files), "--out", "reports", "--to", "html"])
    assert code == 0, capsys.readouterr().err
    for name in cases:
        html = (tmp_path / "reports" / name / "report.html").read_text(encoding="utf-8")
        assert "Traceback" not in html and "log-scaled" not in html
        assert "&amp;#x27;" not in html and "O&amp;#39;" not in html and "O&amp;" not in html
        assert "O&#x27;Brien" in html or "O'Brien" in html or "O&#39;Brien" in html
        assert "\u202e" not in html
        if name != "long-sweep":
            assert "does not fit" in html.lower()
        results = json.loads((tmp_path / "reports" / name / "results.json").read_text())
        assert results["provenance"]["params_file"] == f"{name}.yaml"


# --------------------------------------------------------------------------- a second set of the same classes


@pytest.mark.unit
def test_more_special_files_are_refused(tmp_path: Path):
    import socket

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "link-to-fifo.yaml").symlink_to(fifo)
    sock_path = tmp_path / "sock.yaml"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(sock_path))
        for path, message in ((tmp_path / "link-to-fifo.yaml", "named pipe"), (sock_path, "socket"),
                              (Path("/dev/null"), "character device"), (tmp_path, "directory")):
            t0 = time.monotonic()
            with pytest.raises(SizingError, match=message):
                read_text_bounded(path, 1000)
            assert time.monotonic() - t0 < 2
    finally:
        sock.close()


@pytest.mark.unit
def test_yaml_12_scalars_and_text_fields():
    from llmsizing.report.scenario import Scenario
    from llmsizing.catalog import safe_yaml_loads

    doc = safe_yaml_loads("a: 0x10\nb: 012\nc: on\nd: No\ne: 1:30:00\nf: 1.5e+3\ng: TRUE\n", "t", SizingError)
    assert doc == {"a": 16, "b": 12, "c": "on", "d": "No", "e": "1:30:00", "f": 1500.0, "g": True}
    sc = Scenario.from_dict({"kind": "serving", "models": [MODEL], "gpus": ["h100"],
                             "title": "Q3 \u202eplan\x1b[1m\x07", "customer": "O'Brien & Sons"})
    assert sc.title == "Q3 plan[1m" and sc.customer == "O'Brien & Sons"


@pytest.mark.unit
@pytest.mark.parametrize("name", ["manifest.json", "index.html", "beta.failed.ipynb", "beta.failed.log", "history",
                                  ".refresh.lock", "x.tmp", "Beta", "a" * 81, "con"])
def test_the_name_rule_refuses_reserved_names(name: str):
    from llmsizing.report.parameters import scenario_name_problem

    assert scenario_name_problem(name)
    assert scenario_name_problem("beta-2.1") is None


@pytest.mark.unit
def test_run_with_a_report_folder_that_is_a_file_or_link_is_refused_before_running(tmp_path: Path, capsys):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "gamma").write_text("not a folder")
    (out / "delta").symlink_to(tmp_path / "nowhere")
    for name in ("gamma", "delta"):
        code = main(["run", str(_params(tmp_path, name)), "--out", str(out), "--to", "html"])
        err = capsys.readouterr().err
        assert code == 2 and ("is a file" in err or "symbolic link" in err or "would write outside" in err), err
    assert (out / "gamma").read_text() == "not a folder" and (out / "delta").is_symlink()
    assert sorted(p.name for p in out.iterdir()) == ["delta", "gamma"]


@pytest.mark.unit
def test_catalog_names_are_sanitized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A customer catalog entry named with a lone surrogate, ESC and '$' cannot break a table, chart or terminal."""
    import yaml

    builtin = Path(catalog.__file__).parent / "catalog" / "gpus" / "l40s.yaml"
    data = yaml.safe_load(builtin.read_text(encoding="utf-8"))
    data.update(slug="odd-gpu", aliases=["odd-gpu"], name="Odd \ud800 \x1b[31m$x^2$ GPU")
    (tmp_path / "gpus").mkdir()
    (tmp_path / "gpus" / "odd-gpu.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv("LLMSIZING_CATALOG_DIR", str(tmp_path))
    catalog.gpu_catalog.cache_clear()
    assert catalog.load_gpu("odd-gpu").name == "Odd \ufffd [31m$x^2$ GPU"

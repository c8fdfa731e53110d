"""``llmsizing refresh`` and ``llmsizing diff`` (issue #7).

Fast tests cover planning (which inputs are hashed), the lock, diffs and the index. The
end-to-end tests build real reports through :func:`llmsizing.runner.run_scenario`
(papermill -> nbconvert -> WeasyPrint) from tiny notebooks in ``tests/data/notebooks/``
and small scenarios in ``tests/data/params/``, so a kernel run costs about a second.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llmsizing.report.runner import OWNER_MARKER
from llmsizing import catalog
from llmsizing.cli import main
from llmsizing.refresh.build import refresh
from llmsizing.refresh.history import HISTORY_DIR, diff_results, headline
from llmsizing.refresh.index import INDEX_FILE, MANIFEST_FILE, format_value, read_manifest, render_index
from llmsizing.refresh.lock import EXIT_BUSY, LOCK_FILE, RefreshBusy, refresh_lock
from llmsizing.refresh.plan import plan_refresh

DATA = Path(__file__).parent / "data"
NOTEBOOKS = DATA / "notebooks"
PARAMS = DATA / "params"
REPO = Path(__file__).resolve().parents[1]

#: What a refresh with nothing to do must not import: the data, plotting, notebook and PDF stack,
#: and the report-building parts of the library. (Scenario validation may call the estimators'
#: own checks; those are cheap and import none of this.)
HEAVY_MODULES = ("numpy", "pandas", "matplotlib", "papermill", "nbconvert", "nbclient", "jupyter_client",
                 "weasyprint", "llmsizing.report.tables", "llmsizing.report.figures", "llmsizing.report.study")


def _weasyprint_usable() -> bool:
    try:
        import weasyprint  # noqa: F401
    except OSError:
        return False
    return True


needs_weasyprint = pytest.mark.skipif(not _weasyprint_usable(), reason="WeasyPrint system libraries missing")


@pytest.fixture
def params(tmp_path: Path) -> Path:
    """A private copy of tests/data/params (alpha: serving on H100; beta: fine-tuning on L40S)."""
    dst = tmp_path / "params"
    shutil.copytree(PARAMS, dst)
    return dst


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "reports"


@pytest.fixture(autouse=True)
def _fresh_catalog(monkeypatch: pytest.MonkeyPatch):
    """Each test sees the built-in catalog unless it sets LLMSIZING_CATALOG_DIR itself."""
    monkeypatch.delenv("LLMSIZING_CATALOG_DIR", raising=False)
    monkeypatch.setenv("LLMSIZING_NOTEBOOK_DIR", str(NOTEBOOKS))
    catalog.model_entries.cache_clear()
    catalog.gpu_catalog.cache_clear()
    yield
    catalog.model_entries.cache_clear()
    catalog.gpu_catalog.cache_clear()


def _override_catalog_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, slug: str) -> None:
    """Change one catalog entry the supported way: a changed copy in LLMSIZING_CATALOG_DIR."""
    extra = tmp_path / "catalog-extra"
    (extra / kind).mkdir(parents=True, exist_ok=True)
    src = catalog.CATALOG_DIR / kind / f"{slug}.yaml"
    text = src.read_text(encoding="utf-8").rstrip("\n") + "\n# price checked again by the test\n"
    (extra / kind / src.name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("LLMSIZING_CATALOG_DIR", str(extra))
    catalog.model_entries.cache_clear()
    catalog.gpu_catalog.cache_clear()


def _plans(params: Path, out: Path, **kw):
    return {p.name: p for p in plan_refresh([params], out, to="html", notebook_dir=NOTEBOOKS, **kw)}


def _changed(before, after) -> set[str]:
    """Input keys whose hash differs, leaving out 'library': this test suite runs from a source
    tree others may be editing, and any edit of lib/llmsizing/*.py changes that hash."""
    return {k for k in after.inputs if k != "library" and after.inputs[k] != before.inputs.get(k)}


def _only_library_changed(progress: str) -> bool:
    """True when every rebuild in a refresh's progress output was for 'llmsizing library changed'."""
    reasons = [line.split(": ", 1)[1] for line in progress.splitlines() if line.startswith("  build   ")]
    return bool(reasons) and all(r == "llmsizing library changed" for r in reasons)


def _assert_report_whole(report_dir: Path, formats=("html",)) -> None:
    import nbformat

    doc = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
    assert doc["schema"] == 1 and "results" in doc
    nb = nbformat.read(report_dir / "report.ipynb", as_version=4)
    nbformat.validate(nb)
    if "html" in formats:
        html = (report_dir / "report.html").read_text(encoding="utf-8")
        assert html.rstrip().endswith("</html>")
    if "pdf" in formats:
        from pypdf import PdfReader

        assert len(PdfReader(str(report_dir / "report.pdf")).pages) >= 1


# --------------------------------------------------------------------------- planning (no kernels)


@pytest.mark.unit
def test_plan_names_the_catalog_files_a_scenario_uses(params: Path, out: Path) -> None:
    plans = _plans(params, out)
    alpha, beta = plans["alpha"], plans["beta"]
    # alias 'h100' resolves to gpus/h100-80gb.yaml; the instances carrying that GPU come along
    assert "gpus/h100-80gb.yaml" in alpha.catalog_files
    assert "models/deepseek-r1-distill-qwen-7b.yaml" in alpha.catalog_files
    assert "instances/aws-p5.48xlarge.yaml" in alpha.catalog_files
    assert "precisions.yaml" in alpha.catalog_files and "precisions.yaml" in beta.catalog_files
    assert "gpus/l40s.yaml" in beta.catalog_files and "gpus/l40s.yaml" not in alpha.catalog_files
    assert not any(k.startswith("instances/aws-p5") for k in beta.catalog_files)
    assert alpha.build and alpha.reasons == ["new scenario"]
    assert set(alpha.inputs) == {"scenario", "notebook", "template", "catalog", "assumptions", "library", "formats"}


@pytest.mark.unit
def test_derived_gpu_brings_its_parent_entry(params: Path, out: Path) -> None:
    (params / "beta.yaml").write_text((params / "beta.yaml").read_text().replace("[l40s]", "[a10g]"))
    beta = _plans(params, out)["beta"]
    assert {"gpus/a10g.yaml", "gpus/a10.yaml"} <= set(beta.catalog_files)


@pytest.mark.unit
def test_changing_one_catalog_entry_changes_only_its_users(params: Path, out: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    before = _plans(params, out)
    _override_catalog_entry(tmp_path, monkeypatch, "gpus", "l40s")
    after = _plans(params, out)
    assert _changed(before["alpha"], after["alpha"]) == set()
    assert _changed(before["beta"], after["beta"]) == {"catalog"}
    assert {k for k in after["beta"].catalog_files
            if after["beta"].catalog_files[k] != before["beta"].catalog_files[k]} == {"gpus/l40s.yaml"}


@pytest.mark.unit
def test_identical_override_changes_nothing(params: Path, out: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    before = _plans(params, out)
    extra = tmp_path / "same"
    (extra / "gpus").mkdir(parents=True)
    shutil.copy(catalog.CATALOG_DIR / "gpus" / "l40s.yaml", extra / "gpus" / "l40s.yaml")
    monkeypatch.setenv("LLMSIZING_CATALOG_DIR", str(extra))
    assert _changed(before["beta"], _plans(params, out)["beta"]) == set()


@pytest.mark.unit
def test_assumption_override_is_an_input(params: Path, out: Path) -> None:
    from llmsizing.assumptions import registry

    name, a = next((n, a) for n, a in sorted(registry().items()) if isinstance(a.value, float))
    before = _plans(params, out)
    with (params / "alpha.yaml").open("a") as fh:
        fh.write(f"assumptions: {{{name}: {a.value * 0.5 + 0.01}}}\n")
    after = _plans(params, out)
    assert _changed(before["alpha"], after["alpha"]) == {"scenario", "assumptions"}
    assert _changed(before["beta"], after["beta"]) == set()


@pytest.mark.unit
def test_invalid_and_duplicate_scenarios_fail_without_building(params: Path, out: Path) -> None:
    (params / "broken.yaml").write_text("kind: serving\nscenario_name: broken\nusers: '3'\n")
    (params / "twin.yaml").write_text((params / "alpha.yaml").read_text())
    plans = plan_refresh([params], out, to="html", notebook_dir=NOTEBOOKS)
    broken = [p for p in plans if p.name == "broken"][0]
    assert not broken.build and "key 'users'" in broken.error
    twins = [p for p in plans if p.name == "alpha"]
    assert len(twins) == 2 and all("also used by" in p.error for p in twins)


@pytest.mark.unit
def test_missing_params_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["refresh", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "no such params file or folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- lock


@pytest.mark.unit
def test_second_refresh_exits_75_with_a_clear_message(params: Path, out: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    with refresh_lock(out):
        code = main(["refresh", str(params), "--out", str(out), "--to", "html"])
        err = capsys.readouterr().err
        assert code == EXIT_BUSY
        assert "another refresh is running" in err and f"pid {os.getpid()}" in err and "--wait" in err
        t0 = time.monotonic()
        with pytest.raises(RefreshBusy, match="gave up after waiting 0.3 s"):
            with refresh_lock(out, wait=0.3):
                pass
        assert time.monotonic() - t0 >= 0.3
    assert not (out / MANIFEST_FILE).exists(), "a refused refresh writes nothing"
    assert (out / LOCK_FILE).exists(), "the lock file is never deleted"


@pytest.mark.unit
def test_waiting_refresh_gets_the_lock_when_released(out: Path) -> None:
    held = threading.Event()
    release = threading.Event()

    def holder():
        with refresh_lock(out):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    messages: list[str] = []
    threading.Timer(0.3, release.set).start()
    with refresh_lock(out, wait=float("inf"), on_wait=messages.append):
        pass
    t.join(5)
    assert len(messages) == 1 and "waiting for another refresh" in messages[0]


# --------------------------------------------------------------------------- diffs and index


@pytest.mark.unit
def test_headline_and_diff() -> None:
    a = {"results": {"headline": {"gpus": 4, "memory_per_gpu_bytes": 2**31, "fits": True},
                     "detail": {"rows": [1, 2]}}}
    b = {"results": {"headline": {"gpus": 6, "memory_per_gpu_bytes": 2**31, "fits": 1, "cost_usd": 9.5},
                     "detail": {"rows": [1, 3]}}}
    assert headline(a) == {"gpus": 4, "memory_per_gpu_bytes": 2**31, "fits": True}
    changes = {c.key: c for c in diff_results(a, b)}
    assert set(changes) == {"gpus", "fits", "cost_usd"}  # True -> 1 is a change of kind
    assert changes["gpus"].delta == 2 and changes["gpus"].relative == pytest.approx(0.5)
    assert changes["cost_usd"].before is None
    assert {c.key for c in diff_results(a, b, everything=True)} >= {"detail.rows[1]", "headline.gpus"}
    assert headline({"results": {"n": 1, "nested": {"x": 2}}}) == {"n": 1}


@pytest.mark.unit
def test_format_value_says_units() -> None:
    assert format_value("memory_per_gpu_bytes", 3 * 2**30) == "3.0 GiB"
    assert format_value("a.train_hours", 0.5) == "30.0 min"
    assert format_value("cost_usd", 1234.4) == "$1,234"
    assert format_value("gpus", 1200) == "1,200"
    assert format_value("fits", False) == "no"
    assert format_value("x", None) == "n/a"


@pytest.mark.unit
def test_index_escapes_every_string(out: Path) -> None:
    evil = "<script>alert(1)</script>"
    manifest = {"schema": 1, "generated_at": "2031-02-03T04:05:06Z", "scenarios": {
        "x": {"scenario": "x", "title": evil, "customer": evil, "kind": "serving", "params": f"p/{evil}.yaml",
              "status": "failed", "reason": f"boom {evil}", "built_at": None,
              "headline": {evil: evil}, "paths": {"html": f"x/{evil}.html"},
              "changes": [{"key": evil, "before": evil, "after": 1, "relative": None}]}},
        "last_refresh": {"built": ["x"], "failed": [], "up_to_date": [], "seconds": 1}}
    html = render_index(out, manifest).read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="x/%3Cscript%3Ealert%281%29%3C/script%3E.html"' in html


@pytest.mark.unit
def test_unreadable_manifest_counts_as_empty(out: Path) -> None:
    out.mkdir()
    (out / MANIFEST_FILE).write_text("{not json")
    assert read_manifest(out) == {"schema": 1, "scenarios": {}}


# --------------------------------------------------------------------------- end to end (real runner)


@pytest.mark.notebook
@pytest.mark.slow
def test_refresh_builds_skips_and_follows_one_catalog_change(params: Path, out: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    first = refresh([params], out, jobs=2, to="html", notebook_dir=NOTEBOOKS, progress=log)
    assert sorted(first.built) == ["alpha", "beta"] and not first.failed and first.exit_code == 0
    for name in ("alpha", "beta"):
        _assert_report_whole(out / name)
    manifest = read_manifest(out)
    assert {e["status"] for e in manifest["scenarios"].values()} == {"ok"}
    entry = manifest["scenarios"]["alpha"]
    assert entry["paths"]["html"] == "alpha/report.html" and entry["headline"]["gpus_needed"] == 3
    index = (out / INDEX_FILE).read_text(encoding="utf-8")
    assert "Alpha serving test" in index and "Beta fine-tuning test" in index and 'href="alpha/report.html"' in index
    assert "[2/2] built" in log.getvalue()

    # Nothing changed: nothing is rebuilt, it says so, and it is quick (run as a user would: the CLI).
    env = {**os.environ, "LLMSIZING_NOTEBOOK_DIR": str(NOTEBOOKS)}
    cmd = [sys.executable, "-m", "llmsizing.cli", "refresh", str(params), "--out", str(out), "--to", "html"]
    for attempt in range(2):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        if attempt == 0 and _only_library_changed(proc.stderr):
            continue  # someone edited lib/llmsizing meanwhile; the next refresh must then be a no-op
        break
    assert "nothing changed" in proc.stdout and "nothing rebuilt" in proc.stdout
    assert read_manifest(out)["scenarios"]["alpha"]["built_at"] == entry["built_at"]

    # Planning does not import the estimator or rendering stack.
    probe = ("import sys; from llmsizing.refresh.build import refresh; "
             f"r = refresh([{str(params)!r}], {str(out)!r}, to='html'); assert not r.built, r.to_dict(); "
             f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"heavy modules imported by a no-change refresh: {proc.stdout}"

    # One catalog entry changes: exactly the scenario using it is rebuilt, and the reason names it.
    _override_catalog_entry(tmp_path, monkeypatch, "gpus", "l40s")
    dry = refresh([params], out, to="html", notebook_dir=NOTEBOOKS, dry_run=True)
    assert list(dry.reasons) == ["beta"] and dry.reasons["beta"] == ["catalog entry gpus/l40s.yaml changed"]
    third = refresh([params], out, jobs=2, to="html", notebook_dir=NOTEBOOKS)
    assert third.built == ["beta"] and third.up_to_date == ["alpha"]
    beta = read_manifest(out)["scenarios"]["beta"]
    assert beta["rebuild_reasons"] == ["catalog entry gpus/l40s.yaml changed"]
    assert beta["changes"] == [] and len(beta["history"]) == 1


@pytest.mark.notebook
@pytest.mark.slow
def test_failing_scenario_among_good_ones(params: Path, out: Path, capsys: pytest.CaptureFixture) -> None:
    assert refresh([params], out, jobs=2, to="html", notebook_dir=NOTEBOOKS).exit_code == 0
    alpha_html = (out / "alpha" / "report.html").read_bytes()
    alpha_built = read_manifest(out)["scenarios"]["alpha"]["built_at"]

    # alpha now fails in its notebook, delta is invalid, beta changes, gamma is new.
    (params / "alpha.yaml").write_text((params / "alpha.yaml").read_text() + "notes: FAIL on purpose\n")
    (params / "delta.yaml").write_text("kind: serving\nscenario_name: delta\nusers: '3'\n")
    (params / "beta.yaml").write_text((params / "beta.yaml").read_text().replace("gpus: [l40s]", "gpus: [l40s, h200]"))
    (params / "gamma.yaml").write_text("kind: serving\nscenario_name: gamma\ntitle: Gamma\nmodels: [llama-3.1-8b]\n"
                                       "gpus: [l4]\nusers: 2\n")
    code = main(["refresh", str(params), "--out", str(out), "--to", "html", "-j", "2", "-q"])
    stdout = capsys.readouterr().out
    assert code == 1
    assert "FAILED alpha" in stdout and "FAILED delta" in stdout

    manifest = read_manifest(out)["scenarios"]
    assert manifest["beta"]["status"] == "ok" and manifest["gamma"]["status"] == "ok"
    _assert_report_whole(out / "beta")
    _assert_report_whole(out / "gamma")
    # the failed scenario keeps its previous report, untouched, and says why
    assert (out / "alpha" / "report.html").read_bytes() == alpha_html
    assert manifest["alpha"]["status"] == "failed" and manifest["alpha"]["built_at"] == alpha_built
    assert "told to fail: FAIL on purpose" in manifest["alpha"]["reason"]
    assert manifest["alpha"]["paths"]["html"] == "alpha/report.html"
    assert (out / "alpha.failed.ipynb").is_file() and (out / "alpha.failed.log").is_file()
    assert manifest["delta"]["status"] == "failed" and "key 'users'" in manifest["delta"]["reason"]
    assert not (out / "delta").exists()
    index = (out / INDEX_FILE).read_text(encoding="utf-8")
    assert "told to fail: FAIL on purpose" in index and "key &#39;users&#39;" in index
    assert "Showing the last good report" in index and 'href="alpha.failed.ipynb"' in index
    # beta's previous report went to history; the diff shows what moved
    versions = sorted((out / "beta" / HISTORY_DIR).iterdir())
    assert len(versions) == 1
    _assert_report_whole(versions[0])
    assert json.loads((versions[0] / "results.json").read_text())["results"]["headline"]["gpus_needed"] == 3
    assert manifest["beta"]["changes"][0] == {"key": "gpus_needed", "before": 3, "after": 6, "delta": 3,
                                              "relative": 1.0}
    assert "What changed" in index and "+100.0%" in index
    assert main(["diff", "beta", "--out", str(out)]) == 0
    assert "gpus_needed" in capsys.readouterr().out
    assert main(["diff", str(params / "beta.yaml"), "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["previous"].endswith(versions[0].name) and doc["changes"][0]["after"] == 6
    # left-overs: no staging or temporary files
    assert not list(out.glob(".refresh-staging*")) and not list(out.rglob("*.tmp"))

    # Fix alpha: it is rebuilt (a failed scenario is always retried), the failure files go away.
    (params / "alpha.yaml").write_text((params / "alpha.yaml").read_text().replace("FAIL on purpose", "fixed"))
    (params / "delta.yaml").unlink()
    again = refresh([params], out, jobs=2, to="html", notebook_dir=NOTEBOOKS)
    assert again.built == ["alpha"] and again.exit_code == 0, again.reasons
    assert not (out / "alpha.failed.ipynb").exists() and not (out / "alpha.failed.log").exists()
    assert "delta" not in read_manifest(out)["scenarios"]


@pytest.mark.notebook
@pytest.mark.render
@pytest.mark.slow
@needs_weasyprint
def test_two_refreshes_at_once_leave_every_report_whole(params: Path, out: Path) -> None:
    env = {**os.environ, "LLMSIZING_NOTEBOOK_DIR": str(NOTEBOOKS)}
    cmd = [sys.executable, "-m", "llmsizing.cli", "refresh", str(params), "--out", str(out), "--wait",
           "-j", "1", "--json", "-q"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
             for _ in range(2)]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=240)
        assert p.returncode == 0, stderr
        results.append(json.loads(stdout))
    first, second = sorted(results, key=lambda r: -len(r["built"]))
    assert sorted(first["built"]) == ["alpha", "beta"], results
    # the other waited, then found nothing to do (unless lib/llmsizing was edited meanwhile)
    assert not second["built"] or all(r == ["llmsizing library changed"] for r in second["reasons"].values()), results
    manifest = read_manifest(out)
    assert {n: e["status"] for n, e in manifest["scenarios"].items()} == {"alpha": "ok", "beta": "ok"}
    for name in ("alpha", "beta"):
        _assert_report_whole(out / name, formats=("html", "pdf"))
    assert (out / INDEX_FILE).read_text(encoding="utf-8").rstrip().endswith("</html>")
    # the lock, and each report folder's ownership marker (llmsizing.report.runner.OWNER_MARKER), nothing else
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".") and p.name not in (LOCK_FILE, OWNER_MARKER)]
    assert leftovers == []


@pytest.mark.unit
def test_publish_keeps_history_and_prunes(tmp_path: Path) -> None:
    from llmsizing.refresh.history import history_entries, publish_report

    out = tmp_path / "reports"
    report = out / "s"
    for i in range(4):
        staged = tmp_path / f"stage{i}"
        staged.mkdir()
        (staged / "report.html").write_text(f"<html>v{i}</html>")
        (staged / "results.json").write_text(json.dumps({"v": i}))
        if i == 0:
            (staged / "report.pdf").write_text("pdf v0")  # a format later dropped
        # the manifest entry of the report being replaced (version i - 1)
        old = {"built_at": f"2031-02-03T04:05:0{i - 1}Z", "inputs": {"scenario": str(i - 1)}} if i else None
        archived = publish_report(staged, report, old, keep=2)
        assert (archived is None) == (i == 0)
    assert (report / "report.html").read_text() == "<html>v3</html>"
    assert not (report / "report.pdf").exists(), "files the new build lacks are removed"
    versions = history_entries(out, "s")
    assert [v.name for v in versions] == ["2031-02-03T04-05-01Z", "2031-02-03T04-05-02Z"]  # pruned to 2
    assert (versions[-1] / "report.html").read_text() == "<html>v2</html>"  # hard link kept the old bytes
    assert json.loads((versions[-1] / "build.json").read_text())["inputs"] == {"scenario": "2"}
    assert (versions[0] / "report.html").read_text() == "<html>v1</html>"

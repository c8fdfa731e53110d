"""llmsizing.report.runner: validate, execute, render, move into place; hostile inputs stay text.

One small serving scenario (a 1.5B model on one GPU type) keeps each notebook run to seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, weasyprint_usable
from nbformat.v4 import new_code_cell, new_notebook

from llmsizing.report import render
from llmsizing.cli import main
from llmsizing.errors import RenderError, ScenarioError
from llmsizing.report.results import read_results
from llmsizing.report.runner import notebooks_dir, run_scenario

pytestmark = [pytest.mark.notebook, pytest.mark.render, pytest.mark.slow]

EVIL_CUSTOMER = "<script>alert(1)</script>"
EVIL_TITLE = "\"; import os; os.system('touch pwned'); \""
EVIL_NOTES = "<img src=x onerror=alert(1)> **not bold** $x$ {{ 7*7 }} ${HOME}"
FORMATS = ("html", "pdf") if weasyprint_usable() else ("html",)


def small_params(tmp_path: Path, name: str = "tiny", **extra) -> Path:
    data = {
        "kind": "serving", "scenario_name": name, "customer": EVIL_CUSTOMER, "title": EVIL_TITLE,
        "notes": EVIL_NOTES, "date": "2031-02-03", "models": ["deepseek-r1-distill-qwen-1.5b"], "gpus": ["l40s"],
        "users": 2, "context_tokens": 4096, "context_sweep": [2048, 4096],
    }
    data.update(extra)
    p = tmp_path / f"{name}.yaml"
    p.write_text(json.dumps(data), encoding="utf-8")  # JSON is YAML
    return p


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("runner")
    params = small_params(root)
    out = root / "reports"
    cwd = os.getcwd()
    os.chdir(root)  # a 'touch pwned' would land here
    try:
        result = run_scenario(params, out, FORMATS)
    finally:
        os.chdir(cwd)
    return {"root": root, "params": params, "out": out, "result": result}


def test_report_folder(built):
    r = built["result"]
    assert r.report_dir == built["out"] / "tiny"
    names = {p.name for p in r.report_dir.iterdir()}
    assert {"report.ipynb", "results.json", "report.html"} <= names
    assert ("report.pdf" in names) == ("pdf" in FORMATS)
    assert leftovers(built["out"]) == [], "no build folder may be left behind"


def test_results_json(built):
    doc = read_results(built["result"].files["results"])
    text = built["result"].files["results"].read_text()
    assert text == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "sorted, canonical"
    assert doc["provenance"]["params_file"] == "tiny.yaml"
    assert doc["provenance"]["date"] == "2031-02-03"
    assert len(doc["provenance"]["params_sha256"]) == 64
    assert "date" not in doc["scenario"], "no dates outside provenance"
    head = doc["results"]["headline"]
    assert head["serving.deepseek-r1-distill-qwen-1.5b.gpus"] == 1


def test_cover_metadata(built):
    nb = nbformat.read(built["result"].files["ipynb"], as_version=4)
    meta = nb.metadata["llmsizing"]
    assert meta["customer"] == EVIL_CUSTOMER and meta["title"] == EVIL_TITLE and meta["scenario"] == "tiny"
    assert meta["date"] == "2031-02-03" and meta["version"]


def test_no_scenario_value_runs_code(built):
    for where in (built["root"], built["out"], built["result"].report_dir, ROOT, notebooks_dir()):
        assert not (where / "pwned").exists(), where
    nb = nbformat.read(built["result"].files["ipynb"], as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert "title = " + json.dumps(EVIL_TITLE) in injected[0].source or repr(EVIL_TITLE) in injected[0].source
    assert nb.metadata["papermill"]["parameters"]["title"] == EVIL_TITLE


def test_customer_strings_escaped_in_html(built):
    html = built["result"].files["html"].read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "<img src=x" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<strong>not bold</strong>" not in html


@pytest.mark.skipif("pdf" not in FORMATS, reason="WeasyPrint system libraries missing")
def test_customer_strings_are_text_in_pdf(built):
    flat = " ".join(render.pdf_text(built["result"].files["pdf"]).split())
    assert EVIL_CUSTOMER in flat
    assert "import os; os.system('touch pwned');" in flat
    assert "<img src=x onerror=alert(1)> **not bold** $x$ {{ 7*7 }} ${HOME}" in flat
    assert "49" not in flat.split("not bold")[1][:40], "no template evaluation"


def test_rerun_replaces_report_and_failure_keeps_it(built, monkeypatch):
    out, params = built["out"], built["params"]
    before = built["result"].files["results"].read_bytes()

    def broken_pdf(*_a, **_k):
        raise RenderError("typesetting failed (test)")

    monkeypatch.setattr(render, "html_to_pdf", broken_pdf)
    with pytest.raises(RenderError, match="typesetting failed"):
        run_scenario(params, out, ("html", "pdf"))
    assert built["result"].files["results"].read_bytes() == before, "a failed build must not touch the report"
    assert leftovers(out) == []
    monkeypatch.undo()

    changed = small_params(built["root"], users=3)
    r = run_scenario(changed, out, ("html",))
    assert r.report_dir == built["result"].report_dir
    doc = read_results(r.files["results"])
    assert doc["scenario"]["users"] == 3
    assert not (r.report_dir / "report.pdf").exists(), "the new report replaces the old folder as a whole"
    assert leftovers(out) == []


def test_failing_notebook_keeps_partial_run_outside_the_report(tmp_path, monkeypatch):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    src = nbformat.read(ROOT / "notebooks" / "serving.ipynb", as_version=4)
    src.cells.append(new_code_cell("raise ValueError('broken on purpose')"))
    nbformat.write(src, nbdir / "serving.ipynb")
    out = tmp_path / "reports"
    with pytest.raises(RenderError) as info:
        run_scenario(small_params(tmp_path), out, ("html",), notebook_dir=nbdir)
    msg = str(info.value)
    assert "\n" not in msg and "broken on purpose" in msg and "tiny.failed.ipynb" in msg
    assert not (out / "tiny").exists()
    assert (out / "tiny.failed.ipynb").is_file()
    assert leftovers(out) == []


def test_bad_input_writes_nothing(tmp_path):
    out = tmp_path / "reports"
    with pytest.raises(ScenarioError, match="'userz'"):
        run_scenario(small_params(tmp_path, userz=3), out)
    with pytest.raises(ScenarioError, match="scenario_name"):
        run_scenario(small_params(tmp_path, scenario_name="../../etc/x"), out)
    assert not out.exists() or not any(out.iterdir())
    assert not (tmp_path / "etc").exists()


def test_missing_notebook_is_a_render_error(tmp_path):
    with pytest.raises(RenderError, match="serving.ipynb"):
        run_scenario(small_params(tmp_path), tmp_path / "reports", notebook_dir=tmp_path)


def test_params_file_is_a_papermill_parameters_file(tmp_path):
    """`papermill notebooks/serving.ipynb out.ipynb -f params/...yaml` runs (papermill reads the YAML itself)."""
    params = ROOT / "params" / "chat-70b-h100-200-users.yaml"
    out = tmp_path / "out.ipynb"
    proc = subprocess.run(
        [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "serving.ipynb"), str(out), "-f", str(params),
         "--cwd", str(tmp_path), "-k", render.KERNEL_NAME, "--no-progress-bar"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Passed unknown parameter" not in proc.stderr
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata["papermill"]["parameters"]["users"] == 200


def test_cli_run(tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["run", str(small_params(tmp_path)), "--to", "html", "--out", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["scenario"] == "tiny" and Path(rows[0]["files"]["html"]).is_file()
    assert "pdf" not in rows[0]["files"]

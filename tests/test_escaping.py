"""Customer-supplied strings stay text (issue #8), beyond what tests/test_runner.py covers.

tests/test_runner.py builds one serving report with a hostile customer, title and notes. Here:

* a property test: for *any* scenario text, the parameters papermill injects are plain literals
  (the injected cell is only assignments of constants, and evaluates back to the exact text);
* a run through the real runner with many injection payloads at once (tiny test notebook), which
  checks the kernel received every string unchanged, nothing ran, and HTML and PDF show text;
* the real fine-tuning and customer notebooks with hostile notes (test_runner covers serving);
* report folders: a scenario name cannot leave the reports folder, not even through a symlink.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from papermill.translators import PythonTranslator

from llmsizing import catalog
from llmsizing.report import render
from llmsizing.cli import main
from llmsizing.errors import SizingError
from llmsizing.report.results import read_results
from llmsizing.report.runner import run_scenario
from llmsizing.report.scenario import MAX_TEXT_CHARS, Scenario
from llmsizing.text import clean_text

DATA = Path(__file__).parent / "data"
FAULT_NOTEBOOKS = DATA / "fault_notebooks"
REPO = Path(__file__).resolve().parents[1]


def _weasyprint_usable() -> bool:
    try:
        import weasyprint  # noqa: F401
    except OSError:
        return False
    return True


FORMATS = ("html", "pdf") if _weasyprint_usable() else ("html",)


@pytest.fixture(autouse=True)
def _catalog(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LLMSIZING_CATALOG_DIR", raising=False)
    catalog.model_entries.cache_clear()
    catalog.gpu_catalog.cache_clear()


# ------------------------------------------------------------------ papermill injects literals only

scenario_text = st.text(max_size=200)


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(customer=scenario_text, title=scenario_text, notes=st.text(max_size=600))
def test_injected_parameters_are_literals_for_any_text(customer, title, notes):
    try:
        sc = Scenario.from_dict({"kind": "serving", "customer": customer, "title": title, "notes": notes,
                                 "models": ["deepseek-r1-distill-qwen-7b"], "gpus": ["h100"]}, where="property")
    except SizingError:
        assert "\x00" in customer + title + notes, "only NUL characters may be refused here"
        return
    params = sc.parameters()
    cell = PythonTranslator.codify(params)
    tree = ast.parse(cell)
    values = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign), ast.dump(node)[:200]
        assert len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        # literal_eval accepts constants, lists, dicts, ... and never calls anything
        values[node.targets[0].id] = ast.literal_eval(node.value)
    assert values == params, "the injected cell evaluates back to exactly the scenario's values"


def test_text_limits_and_unprintable_characters_are_refused():
    base = {"kind": "serving", "models": ["deepseek-r1-distill-qwen-7b"], "gpus": ["h100"]}
    for key, limit in MAX_TEXT_CHARS.items():
        Scenario.from_dict({**base, key: "y" * limit})
        with pytest.raises(SizingError, match=f"key '{key}'.*at most {limit}"):
            Scenario.from_dict({**base, key: "y" * (limit + 1)})
        with pytest.raises(SizingError, match="NUL"):
            Scenario.from_dict({**base, key: "a\x00b"})
        with pytest.raises(SizingError, match="lone surrogate"):
            Scenario.from_dict({**base, key: "a\ud800b"})


# ------------------------------------------------------------------ hostile strings through a real run


def _payloads(marker_dir: Path) -> dict[str, str]:
    m = str(marker_dir)
    return {
        "customer": "<script>alert('cust')</script> &amp; ACME \"Corp\" 'Ltd' \\",
        "title": f"\"; open(r'{m}/pwned-title', 'w'); \" ''' {{{{ 7*7 }}}} ${{HOME}} </title><b>bold</b>",
        "notes": (f"'''\nimport os; os.system('touch {m}/pwned-notes')\n'''\n"
                  f"\"\"\"; __import__('os').system('touch {m}/pwned-notes2') #\n"
                  "<img src=x onerror=alert(1)> <iframe src='javascript:alert(2)'></iframe>\n"
                  "**not bold** `code` [link](javascript:alert(3)) $x^2$ {% raw %}{{ 7*7 }}{% endraw %}\n"
                  "trailing backslash \\\\ and \\n escape, RTL \u202egnp.exe, emoji \U0001F680, CJK 漢字\n"
                  "<!-- comment --> ]]> <![CDATA[x]]> \\"),
    }


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("hostile")
    markers = root / "markers"
    markers.mkdir()
    texts = _payloads(markers)
    params = root / "hostile.yaml"
    params.write_text(json.dumps({"kind": "serving", "scenario_name": "hostile", "date": "2031-02-03",
                                  "models": ["deepseek-r1-distill-qwen-7b"], "gpus": ["h100"], **texts}),
                      encoding="utf-8")
    cwd = os.getcwd()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMSIZING_NOTEBOOK_DIR", str(FAULT_NOTEBOOKS))
        mp.delenv("LLMSIZING_CATALOG_DIR", raising=False)
        os.chdir(root)
        try:
            result = run_scenario(params, root / "reports", FORMATS)
        finally:
            os.chdir(cwd)
    return {"root": root, "markers": markers, "texts": texts, "result": result}


def test_no_payload_ran(hostile_run):
    assert list(hostile_run["markers"].iterdir()) == []
    for where in (hostile_run["root"], hostile_run["result"].report_dir, REPO, FAULT_NOTEBOOKS):
        assert not list(where.glob("pwned*")), where


def test_kernel_received_every_string_unchanged(hostile_run):
    doc = read_results(hostile_run["result"].files["results"])
    detail = doc["results"]["detail"]
    for key in ("customer", "title", "notes"):
        # unchanged but for what the one sanitizer removes (bidi overrides, control characters; llmsizing.text)
        assert detail[key] == clean_text(hostile_run["texts"][key]), key
    assert "\u202e" not in detail["notes"] and "\u202e" in hostile_run["texts"]["notes"]
    nb = nbformat.read(hostile_run["result"].files["ipynb"], as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    for node in ast.parse(injected[0].source).body:
        assert isinstance(node, ast.Assign)
        ast.literal_eval(node.value)


def test_html_shows_hostile_strings_as_text(hostile_run):
    html = hostile_run["result"].files["html"].read_text(encoding="utf-8")
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<iframe" not in lowered and "<img src=x" not in lowered
    assert "</title><b>" not in html
    assert "&lt;script&gt;alert(&#39;cust&#39;)&lt;/script&gt;" in html or "&lt;script&gt;alert('cust')" in html
    assert "&amp;amp; ACME" in html, "an entity typed by the customer is shown, not decoded"
    assert "49" not in html.split("7*7")[0][-20:], "no template evaluation"


@pytest.mark.skipif("pdf" not in FORMATS, reason="WeasyPrint system libraries missing")
def test_pdf_shows_hostile_strings_as_text(hostile_run):
    flat = " ".join(render.pdf_text(hostile_run["result"].files["pdf"]).split())
    assert "<script>alert('cust')</script> &amp; ACME" in flat
    assert "{{ 7*7 }}" in flat and "${HOME}" in flat


# ------------------------------------------------------------------ the real fine-tuning and customer notebooks

HOSTILE_NOTES = "<script>alert(1)</script> <img src=x onerror=alert(2)> **not bold** {{ 7*7 }}"
HOSTILE_CUSTOMER = "<b>ACME</b> & \"Sons\""


@pytest.mark.notebook
@pytest.mark.render
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["finetune", "customer"])
def test_real_notebooks_escape_notes_and_customer(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LLMSIZING_NOTEBOOK_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    scenario = {"kind": kind, "scenario_name": f"esc-{kind}", "customer": HOSTILE_CUSTOMER, "notes": HOSTILE_NOTES,
                "title": "Escaping check", "date": "2031-02-03", "models": ["deepseek-r1-distill-qwen-1.5b"],
                "gpus": ["l40s"], "methods": ["lora"], "data_sizes": ["1GB"]}
    if kind == "customer":
        scenario.update(users=2, context_tokens=4096, context_sweep=[4096])
    params = tmp_path / f"esc-{kind}.yaml"
    params.write_text(json.dumps(scenario), encoding="utf-8")
    out = tmp_path / "reports"
    assert main(["run", str(params), "--out", str(out), "--to", ",".join(FORMATS)]) == 0, capsys.readouterr().err
    report = out / f"esc-{kind}"
    html = (report / "report.html").read_text(encoding="utf-8")
    lowered = html.lower()
    assert "<script" not in lowered and "<img src=x" not in lowered and "<b>acme</b>" not in lowered
    assert "<strong>not bold</strong>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;ACME&lt;/b&gt;" in html
    if "pdf" in FORMATS:
        flat = " ".join(render.pdf_text(report / "report.pdf").split())
        assert HOSTILE_NOTES in flat
        assert HOSTILE_CUSTOMER in flat
    assert not list(tmp_path.glob("pwned*"))


# ------------------------------------------------------------------ report folders stay inside the reports folder


def test_symlinked_report_folder_is_not_followed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMSIZING_NOTEBOOK_DIR", str(FAULT_NOTEBOOKS))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    out = tmp_path / "reports"
    out.mkdir()
    (out / "evil").symlink_to(outside, target_is_directory=True)
    params = tmp_path / "evil.yaml"
    params.write_text("kind: serving\nscenario_name: evil\nmodels: [deepseek-r1-distill-qwen-7b]\ngpus: [h100]\n")
    code = main(["run", str(params), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "would write outside" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    assert (outside / "precious.txt").read_text() == "keep"
    assert sorted(p.name for p in out.iterdir()) == ["evil"]


@pytest.mark.parametrize("name", ["../../etc/x", "../escape", "/etc/passwd", "a/b", ".hidden", "..", "x/../../y",
                                  "C:\\\\windows", "name\nwith-newline"])
def test_scenario_names_cannot_leave_the_reports_folder(name, tmp_path, capsys):
    params = tmp_path / "p.yaml"
    params.write_text(json.dumps({"kind": "serving", "scenario_name": name,
                                  "models": ["deepseek-r1-distill-qwen-7b"], "gpus": ["h100"]}))
    code = main(["run", str(params), "--out", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 2 and "not a safe folder name" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]

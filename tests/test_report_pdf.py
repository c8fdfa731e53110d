"""The default report set (`make report`) read back as the customer receives it: the PDF's text.

Built once per session by the ``default_report`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path
import re

import nbformat
import pytest
from conftest import weasyprint_usable

from llmsizing import __version__
from llmsizing.report.render import pdf_text
from llmsizing.choices import DEEPSEEK_R1_FAMILY
from llmsizing.report.scenario import load_scenario

pytestmark = [pytest.mark.render, pytest.mark.notebook, pytest.mark.slow]

needs_weasyprint = pytest.mark.skipif(not weasyprint_usable(), reason="WeasyPrint system libraries missing")


@pytest.fixture(scope="module")
def text(default_report) -> str:
    if "pdf" not in default_report.files:
        pytest.skip("WeasyPrint system libraries missing")
    return pdf_text(default_report.files["pdf"])


@pytest.fixture(scope="module")
def flat(text) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def pages(text) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\f")]


def _model_names() -> list[str]:
    from llmsizing import catalog

    return [catalog.load_model(m).name for m in DEEPSEEK_R1_FAMILY]


def _has(text: str, name: str) -> bool:
    """``name`` in PDF text, where a table cell may wrap after a hyphen or between words."""
    pattern = r"\s*".join(re.escape(part) for part in re.split(r"(?<=-)|\s+", name) if part)
    return re.search(pattern, text) is not None


@needs_weasyprint
def test_cover(pages, default_report):
    sc = load_scenario(default_report.params_path)
    cover = pages[0]
    assert sc.customer in cover and sc.title in cover and sc.scenario_name in cover
    assert f"version {__version__}" in cover
    assert re.search(r"\d{4}-\d{2}-\d{2}", cover), "the cover shows the date"


@needs_weasyprint
def test_executive_summary_comes_first(pages):
    assert "Executive summary" in pages[1], "the executive summary starts right after the cover"
    first = [i for i, p in enumerate(pages) if "Executive summary" in p][0]
    for later in ("Serving", "Fine-tuning", "Appendix A"):
        assert any(later in p for p in pages[first + 1:])


@needs_weasyprint
def test_serving_table_has_all_seven_models(flat):
    i = flat.index("Serving: smallest deployment on")
    j = flat.index("roofline estimates", i)
    table = flat[i:j]
    for name in _model_names():
        assert _has(table, name), name
    assert "Weights (GiB)" in table and "GPUs" in table


@needs_weasyprint
def test_three_users_explained(flat):
    assert "Does 3 users mean 3 × the weights? No." in flat
    assert "Weights are shared; only the KV cache grows per user" in flat


@needs_weasyprint
def test_finetune_matrix(flat):
    i = flat.index("Fine-tuning within 24 h: GPUs · time")
    block = flat[i:i + 6000]
    for size in ("1K", "1M", "1GB", "10GB", "100GB", "1TB"):
        assert size in block
    for method in ("LoRA", "QLoRA", "full"):
        assert method in block
    for name in _model_names():
        assert _has(block, name), name


@needs_weasyprint
def test_assumptions_table_lists_what_was_used(flat, default_report):
    doc = json.loads(default_report.files["results"].read_text())
    used = doc["results"]["assumptions"]
    assert "Assumptions used in this report" in flat
    assert f"{len(used)} assumptions were used by the estimates in this report" in flat
    for name in list(used)[:10]:
        # the names column is narrow: a long name may wrap anywhere
        assert re.search(r"\s?".join(re.escape(c) for c in name), flat), name
    assert "Appendix B: Methodology" in flat and "arXiv:1910.02054" in flat


@needs_weasyprint
def test_page_numbers_and_running_header(pages):
    n = len(pages)
    assert n >= 5
    for i, p in enumerate(pages, start=1):
        assert f"Page {i} of {n}" in p
    assert all("Serving and fine-tuning the DeepSeek-R1 family" in p for p in pages[1:]), "running header"


@needs_weasyprint
def test_no_code_prompts_tracebacks_or_reprs(flat):
    forbidden = ["In [", "Out[", "In&nbsp;", "Traceback", "<llmsizing.", "object at 0x", "PosixPath(",
                 "import ", "Scenario.from_dict", "run_study", "save_results", "study)", "scenario =",
                 "results_path", "Table(df=", "Narrative(", "ReportFigure(", "<Figure size", "dtype:"]
    for f in forbidden:
        assert f not in flat, f


@needs_weasyprint
def test_sizes_say_gib_or_gb(flat):
    # a number directly followed by a bare G (not GB, GiB, Gbit, GPU...) would be ambiguous
    bare = re.findall(r"\b\d[\d,.]*\s?G\b(?![BbiP])", flat)
    assert not bare, bare[:5]


def test_html_has_no_code(default_report):
    html = default_report.files["html"].read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "class=\"jp-InputPrompt" not in html and "class=\"highlight" not in html, "no code cell input"
    for f in ("Scenario.from_dict", "run_study(", "from llmsizing", "Traceback", "object at 0x"):
        assert f not in html, f


def test_notebook_records_cover_and_parameters(default_report):
    nb = nbformat.read(default_report.files["ipynb"], as_version=4)
    cover = nb.metadata["llmsizing"]
    sc = load_scenario(default_report.params_path)
    assert cover["customer"] == sc.customer and cover["scenario"] == sc.scenario_name
    assert cover["version"] == __version__ and cover["date"]
    params = nb.metadata["papermill"]["parameters"]
    assert params["models"] == list(DEEPSEEK_R1_FAMILY) and params["results_path"] == "results.json"


@needs_weasyprint
def test_audit_of_the_hand_made_table(flat):
    assert "Audit of the hand-made fine-tuning table" in flat
    assert "rows of the hand-made fine-tuning table" in flat
    # the rows as the customer wrote them, Chinese included, print in the CJK font
    assert re.search(r"[\u3400-\u9fff]", flat), "the customer's own words (模型并行 ...) come back from the PDF"


def test_validation_appendix_has_summary_and_plot(flat, default_report):
    """Issue #9: the customer report's appendix shows the validation summary and a predicted-vs-measured plot."""
    assert re.search(r"Appendix [D-F]: Validation", flat)
    assert "Predicted against measured" in flat
    html = Path(default_report.files["html"]).read_text()
    assert html.count("data:image/png;base64,") >= 7  # six report figures + the validation plot

"""Issue 15: every page of every shipped scenario's PDF, in both languages, is clean.

No word ends past the right margin (``pdftotext -bbox``) and no page but the cover is less
than a fifth full (``pdftoppm``). The reports are built once per session per language.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, weasyprint_usable

from llmsizing.report import pdfcheck
from llmsizing.report.render import pdf_text

pytestmark = [pytest.mark.render, pytest.mark.notebook, pytest.mark.slow,
              pytest.mark.skipif(not weasyprint_usable(), reason="WeasyPrint system libraries missing")]

SCENARIOS = sorted(p.name for p in (ROOT / "params").glob("*.yaml"))


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("params", SCENARIOS)
def test_pages_are_clean(params, language, build_report):
    pdf = build_report(ROOT / "params" / params, language).files["pdf"]
    past = pdfcheck.words_past_margin(pdf)
    assert not past, [(w.page, w.text, round(w.x1, 1)) for w in past[:10]]
    fills = pdfcheck.page_fill(pdf)
    thin = [(i, round(f, 2)) for i, f in enumerate(fills, start=1) if i > 1 and f < 0.2]
    assert not thin, f"pages less than a fifth full (page, fill): {thin}"


@pytest.mark.parametrize("params", SCENARIOS)
def test_no_internal_keys_reprs_or_exponents(params, build_report):
    flat = " ".join(pdf_text(build_report(ROOT / "params" / params, "en").files["pdf"]).split())
    for bad in ("C-llmfoundry", "C-megatron", "{name: value}", "deepseek_v3", "method lora", "base units",
                "Bills of materials for the other methods Appendix"):
        assert bad not in flat, bad
    import re

    assert not re.search(r"\b\d(?:\.\d+)?e[+-]\d+\b", flat), re.findall(r"\b\d(?:\.\d+)?e[+-]\d+\b", flat)[:5]


def test_small_scenario_has_no_empty_sections(build_report):
    flat = " ".join(pdf_text(build_report(ROOT / "params" / "qlora-7b-single-24gb.yaml", "en").files["pdf"]).split())
    assert "Bills of materials for the other methods" not in flat, "one method: no appendix of other methods"
    assert "Fine-tuning cost per run" not in flat, "no priced instance: no cost table of dashes"
    assert "On one RTX 4090:" in flat and "QLoRA on 1GB takes" in flat, "how long 1GB takes on the one card"

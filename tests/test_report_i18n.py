"""Issue 15: the report in Chinese and English, read back from the PDF; the catalogs complete and compiled.

The reports are built once per session per language (``build_report`` in conftest.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import weasyprint_usable

from llmsizing.report import i18n, pdfcheck
from llmsizing.report.render import pdf_text

pytestmark = [pytest.mark.render, pytest.mark.notebook, pytest.mark.slow]
needs_pdf = pytest.mark.skipif(not weasyprint_usable(), reason="WeasyPrint system libraries missing")

CJK = re.compile(r"[\u3400-\u9fff]")
CUSTOMER_ZH = "深度求索 部署团队"


@pytest.fixture(scope="module")
def zh_params(tmp_path_factory) -> Path:
    """A one-card QLoRA scenario written for a Chinese customer (report_language in the file)."""
    p = tmp_path_factory.mktemp("zh") / "qlora-zh.yaml"
    p.write_text(json.dumps({
        "kind": "finetune", "scenario_name": "qlora-zh", "customer": CUSTOMER_ZH,
        "title": "单卡 24 GB 上 7B 模型的 QLoRA 微调", "notes": "中文备注：在单张 RTX 4090 上微调。",
        "models": ["deepseek-r1-distill-qwen-7b"], "gpus": ["rtx-4090"], "methods": ["qlora"],
        "data_sizes": ["10M", "1GB"], "report_language": "zh", "seq_len": 2048,
        "optimizer": "paged-adamw-8bit", "train_precision": "bf16"}, ensure_ascii=False), encoding="utf-8")
    return p


def test_catalogs_complete_and_compiled():
    assert i18n.check_catalogs() == []


def test_formats_follow_the_language():
    with i18n.language("zh"):
        assert i18n.date("2026-12-07") == "2026年12月7日"
        assert i18n.num(1234567.891, 1) == "1,234,567.9"
        assert i18n._("Executive summary") == "摘要"
        assert i18n.ngettext("{n} GPU", "{n} GPUs", 2) == "{n} 张 GPU"
    assert i18n.current() == "en"
    assert i18n.date("2026-12-07") == "2026-12-07"
    assert i18n.num(1e6, 0) == "1,000,000", "never exponent notation"
    assert i18n.unit("626.9", "GiB") == "626.9\u00a0GiB", "a unit never breaks from its number"


@needs_pdf
def test_chinese_report_reads_back_in_chinese(zh_params, build_report):
    r = build_report(zh_params, "zh")
    text = pdf_text(r.files["pdf"])
    flat = " ".join(text.split())
    assert CUSTOMER_ZH.split()[0] in flat and "部署团队" in flat, "the Chinese customer name comes back"
    for words in ("摘要", "微调", "物料清单", "附录 A：假设", "GPU 数", "小时", "第 1 页，共"):
        assert words in flat, words
    assert "2026年" in flat or "年" in text.split("\f")[0], "the cover date in Chinese"
    for english in ("Executive summary", "Bill of materials", "Page 1 of", "does not fit"):
        assert english not in flat, english
    fonts = pdfcheck.embedded_fonts(r.files["pdf"])
    assert any("CJK" in name and embedded for name, embedded in fonts), fonts


@needs_pdf
def test_english_report_prints_a_chinese_customer(zh_params, build_report):
    r = build_report(zh_params, "en")     # --report-language en overrides the file
    text = pdf_text(r.files["pdf"])
    assert "部署团队" in text and "Executive summary" in text
    assert "中文备注" in text, "CJK in a user field prints in the English edition too"
    fonts = pdfcheck.embedded_fonts(r.files["pdf"])
    assert all(embedded for _name, embedded in fonts), fonts
    assert any("CJK" in name for name, _e in fonts), fonts


@needs_pdf
def test_one_card_scenario_says_how_long_each_size_takes(zh_params, build_report):
    flat = " ".join(pdf_text(build_report(zh_params, "en").files["pdf"]).split())
    assert re.search(r"On one RTX 4090: QLoRA on 10M takes [0-9.]+ min; QLoRA on 1GB takes [0-9.]+ days", flat), flat[:2000]

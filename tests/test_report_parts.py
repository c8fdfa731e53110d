"""Tables, figures and report text built from small studies: units, escaping, no raw reprs."""

from __future__ import annotations

import re

import pytest

from llmsizing.report import figures
from llmsizing.report import narrative as report
from llmsizing.report import purchase, tables
from llmsizing.report.scenario import Scenario
from llmsizing.report.study import run_study

pytestmark = pytest.mark.unit

EVIL = "<script>alert(1)</script> *x* $y$ [z](http://e) # h"


@pytest.fixture(scope="module")
def serving_study():
    return run_study(Scenario.from_dict({
        "kind": "serving", "customer": EVIL, "notes": EVIL,
        "models": ["deepseek-r1-distill-qwen-1.5b", "deepseek-r1"], "gpus": ["l40s", "rtx-4090"],
        "users": 3, "context_tokens": 8192, "context_sweep": [4096, 8192]}))


@pytest.fixture(scope="module")
def finetune_study():
    return run_study(Scenario.from_dict({
        "kind": "finetune", "models": ["deepseek-r1-distill-qwen-1.5b", "deepseek-r1"], "gpus": ["rtx-4090"],
        "methods": ["qlora", "full"], "data_sizes": ["1M", "100M"], "seq_len": 1024}))


def _all_tables(study):
    out = []
    if study.serving:
        out += [purchase.serving_at_a_glance(study), tables.serving_summary(study), tables.serving_options(study),
                tables.users_vs_weights(study)]
    if study.finetune:
        out += [purchase.finetune_at_a_glance(study), tables.finetune_matrix(study), tables.finetune_cost_matrix(study),
                tables.finetune_by_gpu(study), tables.finetune_bill_of_materials(study), tables.dataset_table(study),
                *tables.other_bills_of_materials(study).tables]
    out.append(tables.assumptions_table(study))
    return out


BARE_G = re.compile(r"\b\d[\d,.]*\s?G\b(?![BbiP])")


@pytest.mark.parametrize("which", ["serving_study", "finetune_study"])
def test_tables_are_formatted_with_units(which, request):
    study = request.getfixturevalue(which)
    for t in _all_tables(study):
        assert len(t.df) > 0, t.caption
        html = t.to_html()
        assert html == t._repr_html_()
        assert "<thead>" in html and "<caption" in html
        for col in t.df.columns:
            assert not BARE_G.search(str(col)), col
        for v in t.df.to_numpy().ravel():
            assert isinstance(v, str), (t.caption, v)
            assert not BARE_G.search(v), (t.caption, v)
            assert "object at 0x" not in v and "<llmsizing" not in v and "nan" != v.lower()
        assert t.caption in repr(t)


def test_size_columns_say_gib_or_gb(serving_study, finetune_study):
    headers = [c for t in _all_tables(serving_study) + _all_tables(finetune_study) for c in t.df.columns]
    sized = [h for h in headers if any(w in h.lower() for w in ("weights", "memory", "ram", "storage", "kv cache"))]
    assert sized and all("GiB" in h or "GB" in h for h in sized), sized


def test_customer_strings_escaped_in_text_and_tables(serving_study):
    intro = report.summary_intro(serving_study)
    assert "<script>" not in intro and "&lt;script&gt;" in intro
    assert "$" not in intro and "*x*" not in intro and "](" not in intro.replace("&#93;(", "")
    assert intro._repr_markdown_() == str(intro)


def test_narratives_are_markdown(serving_study, finetune_study):
    for n in (report.summary_intro(serving_study), report.summary_serving(serving_study),
              report.serving_intro(serving_study), report.users_vs_weights_text(serving_study),
              report.summary_finetune(finetune_study), report.finetune_intro(finetune_study),
              report.assumptions_intro(finetune_study), report.methodology(finetune_study)):
        assert isinstance(n, report.Narrative) and str(n).strip()
        assert "None" not in n and "object at 0x" not in n
    m = report.methodology(serving_study)
    assert "KV cache" in m and "arXiv:2405.04434" in m and "Fine-tuning memory" not in m


def test_figures_render_png_with_caption(serving_study, finetune_study):
    figs = [figures.memory_breakdown(serving_study), figures.context_sweep(serving_study),
            figures.serving_cost(serving_study), figures.gpus_vs_data(finetune_study),
            figures.time_vs_gpus(finetune_study)]
    # no RTX 4090 instance has a catalog price: a cost chart would be empty, so there is none (issue 15)
    assert figures.finetune_cost(finetune_study) is None
    for f in figs:
        png = f.png()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
        html = f._repr_html_()
        assert html.startswith("<figure") and "data:image/png;base64," in html and f.caption[:30] in html
        assert repr(f).startswith("Figure: ")
        w, h = f.figure.get_size_inches()
        assert w == pytest.approx(figures.TEXT_WIDTH_IN) and 1 < h < 9, "drawn at print size"
        for ax in f.figure.axes:
            if ax.get_xlabel():
                assert "(" in ax.get_xlabel() or ax.get_xscale() == "linear", ax.get_xlabel()


def test_assumptions_table_lists_only_used_and_marks_overrides():
    study = run_study(Scenario.from_dict({
        "kind": "serving", "models": ["deepseek-r1-distill-qwen-1.5b"], "gpus": ["l40s"], "context_sweep": [4096],
        "assumptions": {"decode_bandwidth_efficiency": 0.5}}))
    t = tables.assumptions_table(study)
    names = list(t.df["Assumption"])
    assert names and set(names) == study.assumptions.used
    row = t.df[t.df["Assumption"] == "decode_bandwidth_efficiency"].iloc[0]
    from llmsizing.assumptions import registry

    assert row["Value"] == f"0.5 (default {registry()['decode_bandwidth_efficiency'].value:g})"
    assert "mfu_full_hopper" not in names, "fine-tuning assumptions are not used by a serving study"


def test_results_numbers_are_plain_json(serving_study, finetune_study):
    import json

    from llmsizing.report.results import canonical

    for s in (serving_study, finetune_study):
        n = s.numbers()
        assert json.loads(json.dumps(canonical(n))) == canonical(n)
        assert all(isinstance(v, (int, float, str, bool, type(None))) for v in n["headline"].values())
        assert n["assumptions"]

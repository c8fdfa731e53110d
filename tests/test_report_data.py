"""Issue 15: no other customer's data in a report, and the report's tables as data (XLSX, CSV)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, weasyprint_usable

from llmsizing.errors import ScenarioError
from llmsizing.report.render import pdf_text
from llmsizing.report.scenario import Scenario, load_scenario

pytestmark = [pytest.mark.render, pytest.mark.notebook, pytest.mark.slow]

SEED_TRACES = ("hand-made", "DeepSeek-R1 deployment team", "A10G 24G", "模型并行", "r1-671b", "seed-table", "Audit of",
               "audit_rows")


@pytest.fixture(scope="module")
def other_customer(tmp_path_factory, build_report):
    """A small customer scenario of another customer, without ``audit_table``."""
    p = tmp_path_factory.mktemp("acme") / "acme.yaml"
    p.write_text(json.dumps({
        "kind": "customer", "scenario_name": "acme", "customer": "Acme Robotics", "title": "Acme sizing",
        "models": ["deepseek-r1-distill-qwen-1.5b"], "gpus": ["l40s", "h100-80gb"], "users": 2,
        "context_tokens": 8192, "context_sweep": [4096, 8192], "methods": ["lora"], "data_sizes": ["1M", "1GB"]}),
        encoding="utf-8")
    return build_report(p, "en")


def test_audit_table_is_a_scenario_input(tmp_path):
    assert load_scenario(ROOT / "params" / "deepseek-r1-family.yaml").audit_table == "audit/seed-table.yaml"
    base = {"kind": "customer", "models": ["deepseek-r1-distill-qwen-1.5b"]}
    assert Scenario.from_dict(base).audit_table == "", "absent by default"
    with pytest.raises(ScenarioError, match="audit_table.*no such file"):
        Scenario.from_dict({**base, "audit_table": "nowhere.yaml"}, where=str(tmp_path / "x.yaml"))
    with pytest.raises(ScenarioError, match="report_language.*choose one of: en, zh"):
        Scenario.from_dict({**base, "report_language": "fr"})


def test_no_trace_of_another_customer(other_customer):
    doc = json.loads(other_customer.files["results"].read_text(encoding="utf-8"))
    assert "audit" not in doc["results"]
    text = json.dumps(doc, ensure_ascii=False)
    if "pdf" in other_customer.files:
        text += pdf_text(other_customer.files["pdf"])
    text += other_customer.files["html"].read_text(encoding="utf-8") if "html" in other_customer.files else ""
    for trace in SEED_TRACES:
        assert trace not in text, trace


def test_tables_written_and_read_back(other_customer):
    xlsx = other_customer.files["xlsx"]
    sheets = pd.read_excel(xlsx, sheet_name=None)
    csvs = sorted(Path(other_customer.files["csv"]).glob("*.csv"))
    assert len(sheets) == len(csvs) >= 8, (list(sheets), csvs)
    for csv in csvs:
        back = pd.read_csv(csv)
        assert list(back.columns) == list(sheets[csv.stem].columns)
        assert len(back) == len(sheets[csv.stem]) > 0
    serving = sheets["serving"]
    assert "Weights (GiB)" in serving.columns, "units in the headers"
    assert pd.api.types.is_numeric_dtype(serving["Weights (GiB)"]), "numbers as numbers"
    assert pd.api.types.is_numeric_dtype(sheets["serving-glance"]["Cost (USD per month)"])
    assert {"assumptions", "finetune-matrix", "bom-lora", "instances"} <= set(sheets)


def test_run_reports_each_stage_and_is_quiet_off_a_terminal(tmp_path, capsys, monkeypatch):
    from llmsizing.cli import main
    from llmsizing.report.runner import run_scenario

    p = tmp_path / "tiny.yaml"
    p.write_text(json.dumps({"kind": "serving", "scenario_name": "tiny", "models": ["deepseek-r1-distill-qwen-1.5b"],
                             "gpus": ["l40s"], "users": 1, "context_tokens": 4096, "context_sweep": [4096]}))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    seen: list[tuple[str, str, float]] = []
    r = run_scenario(p, tmp_path / "out", ("html",), progress=lambda *a: seen.append(a))
    assert [s[:2] for s in seen] == [("tiny", "execute"), ("tiny", "html")] and all(s[2] > 0 for s in seen)
    assert (r.report_dir / "tables.xlsx").is_file()
    assert main(["run", str(p), "--to", "html", "--out", str(tmp_path / "cli")]) == 0
    captured = capsys.readouterr()
    assert "executed the notebook" not in captured.err, "stdout/stderr are not a terminal here: no progress"

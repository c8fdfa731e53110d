"""Audit of the customer's hand-made table (lib/llmsizing/audit.py, params/audit/seed-table.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmsizing.planner.audit import audit_table, default_table_path, load_seed_table, parse_network, parse_strategy
from llmsizing.errors import CatalogError, ScenarioError

TABLE = Path(__file__).resolve().parents[1] / "params" / "audit" / "seed-table.yaml"


@pytest.fixture(scope="module")
def audited():
    return {r.row.id: r for r in audit_table(TABLE)}


def test_table_is_kept_as_data():
    settings, rows = load_seed_table(TABLE)
    assert settings["deadline"] == "24h"
    assert len(rows) == 23
    assert {r.gpu for r in rows} == {"a100-80gb", "a10g", "a100-40gb"}
    assert all(r.row_text for r in rows)
    assert sum(r.method == "qlora" for r in rows) == 12     # the "4-bit" rows
    assert default_table_path().name == "seed-table.yaml"


def test_strategy_and_network_parsing():
    assert parse_strategy("TP=8 + DP=16 + ZeRO-3") == {"tp": 8, "dp": 16, "zero": 3}
    assert parse_strategy("模型并行 (TP=16) + 数据并行 (DP=2)") == {"tp": 16, "dp": 2, "zero": None}
    assert parse_strategy("TP=4 + DP=2 (ZeRO-3 for 70B still recommended)")["zero"] is None
    assert parse_strategy("单卡 LoRA 微调 (Unsloth)") == {"tp": None, "dp": None, "zero": None}
    assert parse_network("25Gbps RDMA") == (25.0, True)
    assert parse_network("1Gbps") == (1.0, False)
    with pytest.raises(ScenarioError):
        parse_network("fast")


def test_671b_bf16_on_16_a100s_cannot_hold_more_than_its_weights(audited):
    a = audited["r1-671b-1m"]
    d = a.to_dict()
    # 671B parameters in bf16 are 1,342 GB: 98% of the 16 × 80 GiB, with nothing left for the rest
    assert d["weights_bytes"] > 0.95 * d["gpu_memory_total_bytes"]
    assert not d["layout_consistent"]              # TP=16 × DP=2 = 32 GPUs on a 16-GPU row
    assert not d["stated_fits"]
    assert "TP=16" in a.verdict


def test_every_row_says_fits_and_hours(audited):
    for rid, a in audited.items():
        d = a.to_dict()
        assert isinstance(d["stated_fits"], bool)
        if d["stated_fits"]:
            assert d["stated_hours"] > 0
        assert d["verdict"].endswith(".")
        assert d["recommended_gpus"] is None or d["recommended_gpus"] >= 1


def test_small_gpu_rows_miss_the_day_with_more_data(audited):
    # 4-bit Distill-Qwen-7B on A10G: the table keeps 2-8 GPUs while the data grows 100-fold
    # (rows whose stated layout no longer fits at the high end of the QLoRA memory range have no hours)
    hours = [h for d in ("1g", "10g", "100g") if (h := audited[f"qwen-7b-{d}"].stated.hours) is not None]
    assert hours == sorted(hours)
    assert not audited["qwen-7b-100g"].stated.meets_deadline
    assert audited["qwen-7b-100g"].recommended.gpus > 8


def test_inconsistent_layouts_are_flagged(audited):
    assert not audited["qwen-32b-1g"].layout_consistent      # TP=4 + DP=2 on 4 GPUs
    assert audited["llama-70b-10g"].layout_consistent


def test_table_errors_name_the_key(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("source: x\ntitle: x\ndeadline: 24h\nlanguage: en\nrows:\n  - {id: a}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="missing key"):
        load_seed_table(bad)

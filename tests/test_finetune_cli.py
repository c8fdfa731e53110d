"""``llmsizing finetune`` and ``llmsizing audit`` through ``llmsizing.cli.main``."""

from __future__ import annotations

import json

import pytest

from llmsizing.cli import main

MEMORY_KEYS = {"weights", "gradients", "optimizer", "activations", "overhead", "allocated", "reserved", "total"}
CLUSTER_KEYS = {"nodes", "gpus_per_node", "cpu_cores", "ram_bytes", "storage_bytes", "network_gbps", "instance"}
TOP_KEYS = {"model", "method", "gpu", "precision", "optimizer", "params_total", "trainable_params", "gpus", "layout",
            "micro_batch", "seq_len", "gradient_checkpointing", "memory_per_gpu", "gpu_memory_bytes", "fits",
            "dataset_tokens", "train_flop", "hours", "gpu_hours", "deadline_hours", "meets_deadline", "cluster",
            "cost_usd"}


def _json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_finetune_json_contract(capsys):
    d = _json(capsys, ["finetune", "deepseek-r1-distill-qwen-7b", "--method", "lora", "--gpu", "h100-80gb",
                       "--data", "1GB", "--deadline", "24h", "--json"])
    assert TOP_KEYS <= set(d)
    assert set(d["layout"]) >= {"tp", "pp", "dp", "ep", "zero", "offload"}
    assert MEMORY_KEYS <= set(d["memory_per_gpu"])
    assert all(isinstance(v, int) for v in d["memory_per_gpu"].values())
    assert CLUSTER_KEYS <= set(d["cluster"])
    assert all(d["cluster"][k] is not None for k in CLUSTER_KEYS)
    assert isinstance(d["gpu_memory_bytes"], int) and isinstance(d["dataset_tokens"], int)
    assert d["meets_deadline"] and d["fits"] and d["deadline_hours"] == 24


@pytest.mark.parametrize("model", ["deepseek-r1", "deepseek-r1-distill-llama-70b"])
@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
def test_finetune_family_at_1tb_meets_or_says_why(capsys, model, method):
    d = _json(capsys, ["finetune", model, "--method", method, "--gpu", "h100-80gb", "--data", "1TB",
                       "--deadline", "24h", "--json"])
    assert d["meets_deadline"] or d["limit"]
    assert all(d["cluster"][k] is not None for k in CLUSTER_KEYS)


def test_given_gpus_evaluates_that_layout(capsys):
    d = _json(capsys, ["finetune", "deepseek-r1-distill-llama-8b", "--method", "qlora", "--gpu", "l40s", "--gpus",
                       "2", "--tp", "1", "--data", "1G", "--zero", "0", "--gradient-checkpointing", "--micro-batch",
                       "1", "--json"])
    assert d["gpus"] == 2 and d["layout"]["dp"] == 2 and d["layout"]["zero"] == 0
    assert d["gradient_checkpointing"] is True and d["micro_batch"] == 1
    assert d["searched"] is False and d["fits"]


def test_a_layout_that_does_not_fit_is_reported(capsys):
    d = _json(capsys, ["finetune", "deepseek-r1-distill-llama-8b", "--method", "qlora", "--gpu", "l40s", "--gpus",
                       "2", "--tp", "1", "--data", "1G", "--no-gradient-checkpointing", "--micro-batch", "8", "--json"])
    assert d["fits"] is False and d["hours"] is None and "GiB" in d["fit_reason"]


def test_finetune_readable_output(capsys):
    assert main(["finetune", "deepseek-r1-distill-qwen-1.5b", "--gpu", "h100-80gb", "--data", "1M"]) == 0
    out = capsys.readouterr().out
    assert "GPUs" in out and "Cost" in out and "bytes/token" in out


@pytest.mark.parametrize("args, needle", [
    (["--deadline", "0h"], "accepted"),
    (["--deadline", "-1h"], "accepted"),
    (["--data", "0"], "accepted"),
    (["--data", "1X"], "accepted"),
    (["--data", "-5GB"], "accepted"),
    (["--epochs", "0"], "accepted"),
    (["--epochs", "-1"], "accepted"),
    (["--epochs", "many"], "accepted"),
    (["--gpus", "0"], "positive"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, needle):
    code = main(["finetune", "deepseek-r1-distill-qwen-7b", "--gpu", "h100-80gb", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and needle in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [["--gpus", "many"], ["--method", "sft"], ["--zero", "4"]])
def test_bad_input_through_argparse_exit(capsys, args):
    with pytest.raises(SystemExit) as exc:
        main(["finetune", "deepseek-r1-distill-qwen-7b", "--gpu", "h100-80gb", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_audit_json(capsys):
    doc = _json(capsys, ["audit", "--json"])
    rows = doc["rows"]
    assert len(rows) == 23 and doc["stated_fits"] <= 23
    for r in rows:
        assert {"id", "stated_fits", "stated_hours", "recommended_gpus", "verdict", "row_text"} <= set(r)


def test_audit_readable(capsys):
    assert main(["audit"]) == 0
    out = capsys.readouterr().out
    assert "r1-671b-1m" in out and "as written" in out

"""``llmsizing serve``: the JSON contract, the acceptance scenarios of issue #3 and one-line errors."""

from __future__ import annotations

import json

import pytest

from llmsizing.cli import main
from llmsizing.units import parse_tokens
from llmsizing.errors import ScenarioError

pytestmark = pytest.mark.unit

CONTRACT_KEYS = ("model", "gpu", "precision", "kv_precision", "users", "context_tokens", "params_total",
                 "params_active", "kv_cache_bytes_per_token", "gpus", "tensor_parallel", "memory_per_gpu",
                 "gpu_memory_bytes", "fits", "kv_cache_capacity_tokens", "max_concurrent_users",
                 "decode_tokens_per_s_per_user", "ttft_s")
ADDED_KEYS = ("pipeline_parallel", "expert_parallel", "nodes", "engine", "reason", "needs", "assumptions")


def run_json(capsys, *args):
    code = main(["serve", *args, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def run_error(capsys, *args):
    try:
        code = main(["serve", *args])
    except SystemExit as exc:  # argparse usage errors (e.g. an --engine outside the choices)
        code = exc.code
    out = capsys.readouterr()
    assert code == 2
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert "Traceback" not in out.err
    return lines[0]


def test_deepseek_r1_fp8_h200_fits_on_8_gpus(capsys):
    d = run_json(capsys, "deepseek-r1", "--gpu", "h200", "--precision", "fp8", "--users", "3", "--context", "32768")
    for key in CONTRACT_KEYS + ADDED_KEYS:
        assert key in d, key
    assert d["fits"] is True and d["gpus"] == 8 and d["nodes"] == 1 and d["tensor_parallel"] == 8
    assert d["precision"] == "fp8-block128" and d["kv_precision"] == "bf16"
    assert d["params_total"] == 671_026_419_200 and d["kv_cache_bytes_per_token"] == 70_272
    assert set(d["memory_per_gpu"]) == {"weights", "kv_cache", "activations", "overhead", "total"}
    assert all(isinstance(v, int) for v in d["memory_per_gpu"].values())
    assert d["memory_per_gpu"]["total"] <= d["gpu_memory_bytes"]
    assert d["max_concurrent_users"] >= 3 and d["kv_cache_capacity_tokens"] >= 3 * 32768
    assert d["decode_tokens_per_s_per_user"] > 0 and d["ttft_s"] > 0
    assert d["needs"] is None and d["reason"].startswith("fits")


def test_deepseek_r1_fp8_h100_needs_two_nodes(capsys):
    d = run_json(capsys, "deepseek-r1", "--gpu", "h100-80gb", "--precision", "fp8", "--users", "3",
                 "--context", "32768")
    assert d["fits"] is True and d["gpus"] == 16 and d["nodes"] == 2
    assert d["tensor_parallel"] * d["pipeline_parallel"] == 16


def test_deepseek_r1_bf16_does_not_fit_one_h200_node(capsys):
    d = run_json(capsys, "deepseek-r1", "--gpu", "h200", "--precision", "bf16", "--users", "3", "--context",
                 "32768", "--gpus", "8")
    assert d["fits"] is False and d["gpus"] == 8
    assert d["needs"] == {"gpus": 16, "nodes": 2, "gpus_per_node": 8, "tensor_parallel": 8,
                          "pipeline_parallel": 2, "expert_parallel": 8}
    assert "needs 16 GPUs" in d["reason"]
    assert d["decode_tokens_per_s_per_user"] is None and d["ttft_s"] is None
    chosen = run_json(capsys, "deepseek-r1", "--gpu", "h200", "--precision", "bf16")
    assert chosen["fits"] is True and chosen["gpus"] == 16


def test_readable_table_says_gib(capsys):
    assert main(["serve", "deepseek-r1-distill-qwen-7b", "--gpu", "l40s", "--context", "32K"]) == 0
    out = capsys.readouterr().out
    assert "GiB" in out and "Layout" in out and "Fits" in out and "estimate" in out
    assert "32,768 tokens" in out


def test_engines_and_options_pass_through(capsys):
    d = run_json(capsys, "deepseek-r1-distill-llama-8b", "--gpu", "rtx-4090", "--engine", "llama.cpp",
                 "--precision", "int4", "--kv-precision", "q8_0", "--users", "2", "--context", "16K")
    assert d["engine"] == "llama.cpp" and d["precision"] == "q4_k_m" and d["kv_precision"] == "q8_0"
    assert d["context_tokens"] == 16384 and d["users"] == 2
    d = run_json(capsys, "deepseek-r1", "--gpu", "h200", "--engine", "sglang", "--mla-cache", "decompressed",
                 "--gpu-memory-utilization", "0.85", "--prompt-tokens", "1024", "--enforce-eager")
    assert d["engine"] == "sglang" and d["mla_cache"] == "decompressed" and d["prompt_tokens"] == 1024
    d = run_json(capsys, "deepseek-r1-distill-llama-8b", "--gpu", "rtx-4090", "--gpu-memory", "48GiB", "--gpus", "1")
    assert d["gpu_memory_bytes"] == 48 * 2**30


@pytest.mark.parametrize("args,fragment", [
    (("deepseek-r1", "--gpu", "h200", "--users", "0"), "users must be a positive integer, got 0"),
    (("deepseek-r1", "--gpu", "h200", "--users", "-1"), "users must be a positive integer"),
    (("deepseek-r1", "--gpu", "h200", "--context", "0"), "context must be a positive integer (between 1 and 16M tokens), got 0"),
    (("deepseek-r1", "--gpu", "h200", "--context", "-5"), "cannot parse token count '-5'"),
    (("deepseek-r1", "--gpu", "h200", "--context", "200000"), "maximum of 163,840 tokens"),
    (("deepseek-r1", "--gpu", "h200", "--context", "1M"), "maximum of 163,840 tokens"),
    (("deepseek-r1", "--gpu", "h200", "--gpus", "3"), "--gpus 3: tensor-parallel size 3 does not divide the 128"),
    (("llama-3.1-8b", "--gpu", "h100", "--gpus", "6"), "--gpus 6"),
    (("deepseek-r1", "--gpu", "a100-80gb", "--precision", "fp8", "--engine", "transformers"), "FP8 tensor cores"),
    (("deepseek-r1-distill-llama-8b", "--gpu", "rtx-4090", "--precision", "fp8", "--engine", "llama.cpp"),
     "GGUF has no FP8 type"),
    (("deepseek-r1", "--gpu", "h200", "--gpu-memory-utilization", "0"), "fraction in (0, 1]"),
    (("deepseek-r1", "--gpu", "h200", "--engine", "tgi"), "invalid choice"),
    (("deepseek-r1", "--gpu", "h300"), "unknown GPU 'h300'"),
    (("deepseek-r2", "--gpu", "h200"), "unknown model 'deepseek-r2'"),
    (("deepseek-r1", "--gpu", "h200", "--precision", "int3"), "unknown precision 'int3'"),
    (("deepseek-r1", "--gpu", "h200", "--gpu-memory", "lots"), "cannot parse memory size"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, fragment):
    line = run_error(capsys, *args)
    assert fragment in line


def test_fp8_on_a100_under_vllm_runs_weight_only_and_says_so(capsys):
    d = run_json(capsys, "deepseek-r1-distill-qwen-14b", "--gpu", "a100-80gb", "--precision", "fp8")
    assert d["fits"] is True
    assert any("W8A16" in n for n in d["notes"])


def test_parse_tokens():
    assert parse_tokens("32768") == 32768
    assert parse_tokens("32K") == 32768 and parse_tokens("128k") == 131072 and parse_tokens("4K") == 4096
    assert parse_tokens("1M") == 1024 * 1024
    with pytest.raises(ScenarioError):
        parse_tokens("lots")
    with pytest.raises(ScenarioError):
        parse_tokens("1.5")


def test_serve_json_has_instances_and_cost(capsys):
    """Serving plans carry instances, cost per hour and per million output tokens (issue #5)."""
    import json

    from llmsizing.cli import main

    assert main(["serve", "deepseek-r1-distill-llama-70b", "--gpu", "h100-80gb", "--users", "3",
                 "--context", "32768", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    c = d["cluster"]
    assert c["gpus"] == d["gpus"] and c["nodes"] * c["gpus_per_node"] >= d["gpus"]
    # cost per hour = nodes × price; $/M tokens = cost per hour / (tokens/s × 3600 / 1e6)
    assert c["cost_usd_per_hour"] == pytest.approx(c["nodes"] * c["price_usd_per_hour"])
    tokens_per_s = d["decode_tokens_per_s_per_user"] * d["users"]
    assert c["cost_usd_per_million_output_tokens"] == pytest.approx(
        c["cost_usd_per_hour"] / (tokens_per_s * 3600 / 1e6))

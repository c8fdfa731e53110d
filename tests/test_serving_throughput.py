"""Steady-state throughput, deployments, launch commands, latency targets and the published serving runs."""

from __future__ import annotations

import json
import math
import shlex

import pytest

from llmsizing import architecture as A
from llmsizing.assumptions import Assumptions
from llmsizing.cli import main
from llmsizing.errors import ScenarioError
from llmsizing.commands.serve import price_per_hour
from llmsizing.serving import launch, roofline, throughput as T
from llmsizing.serving.engines import evaluate_layout
from llmsizing.serving.estimate import serve
from llmsizing.serving.plan import make_plan, snapshot
from llmsizing.serving.sharding import Layout, weight_table
from llmsizing.serving.targets import cheapest_deployment, pareto_table
from llmsizing.units import parse_latency_s
from llmsizing.validation import serving_oos


def _assumptions():
    a = Assumptions()
    return snapshot(a, roofline.ROOFLINE_ASSUMPTIONS + T.THROUGHPUT_ASSUMPTIONS)


def test_steady_state_step_adds_prefill_carried_per_step():
    """t_step = decode step + B·(in/out)·F_prompt / (0.7 · bf16 peak); F_prompt = 2·active matmul + attention."""
    a = _assumptions()
    plan = make_plan("llama-3.1-8b", "h100-80gb", users=8, context_tokens=3000, prompt_tokens=2000)
    mem = evaluate_layout(plan, Layout(1))
    r = T.steady_state(plan, mem, T.Workload(8, 2000, 1000), a)
    spec = plan.spec
    table = weight_table(spec, plan.precision)
    f_tok = (2 * table.stage_sum("matmul_active", 0, spec.num_layers)
             + spec.num_layers * A.attention_flop_per_token_per_layer(spec, 1000.0, "latent", False))
    prefill = 8 * 2.0 * f_tok / (0.70 * 989.4e12)  # H100 SXM dense BF16 peak (catalog)
    assert r.tpot_s_mean == pytest.approx(r.decode_step_s + prefill, rel=1e-9)
    assert r.prefill_share == pytest.approx(prefill / r.tpot_s_mean)
    # closed loop: 8 users x 1000 tokens per (floor + one prompt + 999 steps)
    rho = r.prefill_share
    single = roofline.estimate_speed(plan, mem, a).ttft_s
    assert r.ttft_s_mean == pytest.approx(0.055 + single * (1 + rho / (1 - rho)), rel=1e-3)
    assert r.output_tokens_per_s == pytest.approx(8 * 1000 / (0.055 + single + 999 * r.tpot_s_mean), rel=1e-3)
    assert r.tpot_s_p90 > r.tpot_s_mean and r.ttft_s_p90 >= 0.055 + single


def test_more_prompt_per_answer_is_slower_per_token():
    a = _assumptions()
    plan = make_plan("llama-3.1-8b", "h100-80gb", users=32, context_tokens=4096)
    mem = evaluate_layout(plan, Layout(1))
    short = T.steady_state(plan, mem, T.Workload(32, 128, 2048), a)
    long = T.steady_state(plan, mem, T.Workload(32, 2048, 128), a)
    assert long.tpot_s_mean > 2 * short.tpot_s_mean
    assert long.output_tokens_per_s < short.output_tokens_per_s


def test_speculative_tokens_per_step_hand_computed():
    assert T.speculative_tokens_per_step(1, 0.85) == pytest.approx(1.85)
    assert T.speculative_tokens_per_step(3, 0.5) == pytest.approx(1 + 0.5 + 0.25 + 0.125)
    base = serve("deepseek-r1", "h200", gpus=8, users=1, context_tokens=4096, prompt_tokens=1024)
    mtp = serve("deepseek-r1", "h200", gpus=8, users=1, context_tokens=4096, prompt_tokens=1024, speculative="mtp")
    # 1.85 tokens per step, less the verify step's cost: its 2 tokens per user route to ~2x the experts (MoE),
    # plus the draft layer (1/61 of a step)
    assert 1.1 < base.throughput["tpot_s"]["mean"] / mtp.throughput["tpot_s"]["mean"] < 1.85
    assert "deepseek_mtp" in mtp.launch_command


def test_users_max_is_the_kv_and_batch_limited_point():
    est = serve("llama-3.1-8b", "h100-80gb", gpus=1, users="max", context_tokens=2048)
    probe = serve("llama-3.1-8b", "h100-80gb", gpus=1, users=1, context_tokens=2048, speed=False)
    assert est.users == min(probe.max_concurrent_users, 1024)
    assert est.fits and est.throughput["output_tokens_per_s"] > 0
    with pytest.raises(ScenarioError, match="'max'"):
        serve("llama-3.1-8b", "h100-80gb", users="lots")


def test_attention_dp_shards_requests_so_mla_cache_is_not_replicated():
    """TP8 replicates the 576-value MLA latent on all 8 GPUs; attention DP x8 gives each GPU its own users:
    about 8x the KV tokens, less a little for the attention weights now held whole on every GPU."""
    tp = serve("deepseek-r1", "h200", gpus=8, users=1, context_tokens=8192, speed=False)
    dp = serve("deepseek-r1", "h200", gpus=8, users=1, context_tokens=8192, speed=False, attention_dp=True, ep=8)
    assert dp.layout.attention_dp and dp.layout.expert_parallel == 8
    assert 5 < dp.kv_cache_capacity_tokens / tp.kv_cache_capacity_tokens < 8
    assert dp.memory_per_gpu.weights > tp.memory_per_gpu.weights
    with pytest.raises(ScenarioError, match="mixture-of-experts"):
        serve("llama-3.1-70b", "h200", gpus=8, attention_dp=True)
    with pytest.raises(ScenarioError, match="--ep 3"):
        serve("deepseek-r1", "h200", gpus=8, attention_dp=True, ep=3)


def test_disaggregated_rate_is_the_slower_pool():
    est = serve("deepseek-r1", "h200", users=64, context_tokens=4096, prompt_tokens=2048, disaggregate="8:8",
                attention_dp=True, ep=8)
    d = est.disaggregation
    assert d["prefill_gpus"] == 8 and d["decode_gpus"] == 8
    rate = min(d["prefill_input_tokens_per_s"] / 2048, d["decode_output_tokens_per_s"] / 2048)
    assert est.throughput["output_tokens_per_s"] == pytest.approx(rate * 2048)
    with pytest.raises(ScenarioError, match="P:D"):
        serve("deepseek-r1", "h200", disaggregate="8-8")


def test_nvfp4_weights_on_b200():
    est = serve("deepseek-r1", "b200", gpus=8, precision="nvfp4", users="max", engine="tensorrt-llm",
                attention_dp=True, ep=8, context_tokens=4096)
    assert est.fits and est.precision == "nvfp4"
    fp8 = serve("deepseek-r1", "b200", gpus=8, precision="fp8", users=1, context_tokens=4096, speed=False)
    assert est.memory_per_gpu.weights < 0.75 * fp8.memory_per_gpu.weights


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tensorrt-llm", "llama.cpp"])
def test_launch_command_flags_are_documented(engine):
    kw = {"precision": "q4_k_m"} if engine == "llama.cpp" else {}
    est = serve("qwen3-30b-a3b", "h100-80gb", gpus=1 if engine == "llama.cpp" else 2, users=4,
                context_tokens=8192, engine=engine, kv_precision="fp8" if engine in ("vllm", "sglang") else None,
                **kw)
    argv = shlex.split(est.launch_command)
    assert " ".join(argv[:3]).startswith(launch.engine_flags()[engine]["program"])
    assert launch.undocumented_flags(argv, engine) == []
    assert str(est.max_model_len if engine != "llama.cpp" else 4 * 8192) in argv


def test_launch_command_carries_parallelism_and_memory_fraction():
    est = serve("deepseek-r1", "h200", gpus=8, users=4, engine="sglang", attention_dp=True, ep=8,
                context_tokens=8192)
    argv = shlex.split(est.launch_command)
    assert argv[argv.index("--tp-size") + 1] == "8" and "--enable-dp-attention" in argv
    assert argv[argv.index("--mem-fraction-static") + 1] == "0.81"
    assert launch.undocumented_flags(argv, "sglang") == []
    assert serve("llama-3.1-8b", "h100-80gb", users=1, engine="transformers").launch_command is None


def test_parse_latency():
    assert parse_latency_s("50ms") == pytest.approx(0.05)
    assert parse_latency_s("2s") == 2.0
    for bad in ("2", "fast", "-1s", "0ms"):
        with pytest.raises(ScenarioError):
            parse_latency_s(bad)


def test_cheapest_deployment_meets_targets_and_is_cheapest_priced():
    best, tried = cheapest_deployment("deepseek-r1-distill-llama-70b", ["h100-80gb", "h200"], users=50,
                                      ttft_s=2.0, tpot_s=0.05, price=price_per_hour, context_tokens=8192)
    assert best is not None and best.fits
    assert best.throughput["tpot_s"]["mean"] <= 0.05 and best.throughput["ttft_s"]["mean"] <= 2.0
    ok = [c for c in tried if c.meets and c.price_usd_per_hour is not None]
    assert min(c.price_usd_per_hour for c in ok) == pytest.approx(
        next(c.price_usd_per_hour for c in ok if c.gpu == best.gpu and c.gpus == best.gpus))
    none, _ = cheapest_deployment("deepseek-r1-distill-llama-70b", ["h100-80gb"], users=50, ttft_s=0.001,
                                  tpot_s=None, price=price_per_hour, context_tokens=8192)
    assert none is None


def test_pareto_frontier():
    rows = pareto_table("llama-3.1-8b", "h100-80gb", gpus=1, users=(1, 8, 64), context_tokens=4096)
    assert [r["users"] for r in rows] == [1, 8, 64]
    assert rows[0]["tokens_per_s_per_user"] > rows[-1]["tokens_per_s_per_user"]
    assert rows[-1]["tokens_per_s_per_gpu"] > rows[0]["tokens_per_s_per_gpu"]
    assert all(r["on_frontier"] for r in rows)


def test_cli_serve_any_gpu_with_targets_prints_launch_command(capsys):
    code = main(["serve", "deepseek-r1-distill-llama-70b", "--gpu", "h100-80gb,h200", "--users", "50",
                 "--ttft", "2s", "--tpot", "50ms", "--context", "8K", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0 and d["fits"] and d["launch_command"].startswith("vllm serve")
    assert d["targets"] == {"ttft_s": 2.0, "tpot_s": 0.05, "users": 50}


def test_cli_serve_json_has_contract_keys(capsys):
    assert main(["serve", "llama-3.1-8b", "--gpu", "h100-80gb", "--users", "max", "--context", "4K", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("output_tokens_per_s", "ttft_s", "tpot_s", "launch_command"):
        assert d[key] is not None, key
    assert set(d["tpot_s"]) == {"mean", "p90"} and d["ttft_s_p90"] >= d["ttft_s"] * 0.99


# ----------------------------------------------------------------------------- published serving runs


def test_published_serving_runs_split_before_fitting():
    """At least 30 published serving cases stay out of sample; every calibration case names a real case and
    an assumption whose source says CALIBRATION SUBSET (or a calibration)."""
    ids = {c["id"] for c in serving_oos.load_cases()}
    assert set(serving_oos.CALIBRATION) <= ids
    assert len(ids) - len(serving_oos.CALIBRATION) >= 30
    reg = Assumptions()
    for name in set(serving_oos.CALIBRATION.values()):
        assert name in reg


def test_published_kv_capacity_out_of_sample_within_bars():
    rows = serving_oos.run("serving-kv-capacity")
    s = serving_oos.summary(rows, "serving-kv-capacity", in_sample=False)
    assert s["scored"] == s["cases"] >= 10
    assert s["median_abs_error_pct"] <= 5.0 and s["max_abs_error_pct"] <= 20.0
    tight = next(r for r in rows if r.id == "oos-vllm019-qwen2.5-72b-bf16-tp2-h100-kv")
    assert tight.predicted > 0 and abs(tight.error_pct) <= 10.0


def test_mtp_loads_the_mtp_module_weights():
    """DeepSeek-R1's MTP module (one MoE layer + projections, ~11.7B parameters in FP8) is loaded for --speculative mtp."""
    base = serve("deepseek-r1", "h200", gpus=8, users=1, context_tokens=4096, speed=False)
    mtp = serve("deepseek-r1", "h200", gpus=8, users=1, context_tokens=4096, speed=False, speculative="mtp")
    extra = (mtp.memory_per_gpu.weights - base.memory_per_gpu.weights) * 8
    assert 9e9 < extra < 13e9
    with pytest.raises(ScenarioError, match="eagle"):
        serve("llama-3.1-8b", "h100-80gb", speculative="mtp")

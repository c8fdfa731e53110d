"""Serving estimator: hand-computed unit cases, layouts, engine rules, the DeepSeek-R1 acceptance checks."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing import comm
from llmsizing.choices import DEEPSEEK_R1_FAMILY
from llmsizing.serving import engines, roofline
from llmsizing.errors import CatalogError, ScenarioError
from llmsizing.serving.engines import activation_elems_per_token, evaluate_layout, kv_tokens_held
from llmsizing.serving.estimate import serve, users_memory_comparison
from llmsizing.serving.plan import layout_problem, make_plan
from llmsizing.serving.sharding import Layout, kv_elems_per_token_per_layer_per_gpu, kv_heads_per_rank, pipeline_stages, stage_weight_bytes, weight_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from serving_sweep import SWEEP_GPUS, SWEEP_PRECISIONS, serve_sweep  # noqa: E402 - benchmark-only sweep

pytestmark = pytest.mark.unit

GiB = 2**30
MiB = 2**20


def spec(slug):
    return catalog.load_model(slug)


# ----------------------------------------------------------------------------- small pure functions


def test_kv_tokens_held_rounds_up_to_blocks_and_caps_windows():
    assert kv_tokens_held(32768, 16) == 32768
    assert kv_tokens_held(100, 16) == 112                    # ceil(100/16) = 7 blocks
    assert kv_tokens_held(100, 64) == 128
    assert kv_tokens_held(10_000, 16, window=4096) == 4112   # window 256 blocks + 1 block
    assert kv_tokens_held(1000, 16, window=4096) == 1008     # below the window: just rounded
    assert kv_tokens_held(7, 1) == 7


def test_pipeline_stages_split_like_vllm_get_pp_indices():
    assert pipeline_stages(61, 1) == [(0, 61)]
    assert pipeline_stages(61, 2) == [(0, 31), (31, 61)]
    # 32 layers over 3 stages: 10 each, the 2 extra layers go to the stages before the last
    assert pipeline_stages(32, 3) == [(0, 11), (11, 22), (22, 32)]
    with pytest.raises(ScenarioError):
        pipeline_stages(4, 5)


def test_kv_heads_per_rank_splits_then_replicates():
    s = spec("llama-3.1-8b")  # 8 KV heads
    assert [kv_heads_per_rank(s, tp) for tp in (1, 2, 4, 8, 16)] == [8, 4, 2, 1, 1]


def test_kv_elements_per_token_per_layer_per_gpu():
    llama = spec("llama-3.1-8b")
    assert kv_elems_per_token_per_layer_per_gpu(llama, 1, "latent") == 2 * 128 * 8     # 2,048
    assert kv_elems_per_token_per_layer_per_gpu(llama, 8, "latent") == 2 * 128 * 1     # one head per rank
    r1 = spec("deepseek-r1")
    # MLA latent (kv_lora_rank 512 + rope 64) is replicated on every tensor-parallel rank
    for tp in (1, 8, 16):
        assert kv_elems_per_token_per_layer_per_gpu(r1, tp, "latent") == 576
    assert kv_elems_per_token_per_layer_per_gpu(r1, 8, "decompressed") == 128 / 8 * (128 + 64 + 128)


def test_activation_elements_per_token_hand_computed():
    # Llama-3.1-8B, TP1: attention 3h + (32 + 2*8)*128 + 32*128 = 22,528; MLP 3h + 3I = 55,296 -> MLP
    assert activation_elems_per_token(spec("llama-3.1-8b"), 1) == 3 * 4096 + 3 * 14336
    # TP2 halves only the intermediate part
    assert activation_elems_per_token(spec("llama-3.1-8b"), 2) == 3 * 4096 + 3 * 14336 / 2


def test_weight_table_total_equals_weight_bytes():
    from llmsizing.weights import weight_bytes

    for slug, prec in (("llama-3.1-8b", "bf16"), ("deepseek-r1", "fp8-block128"), ("qwen3-30b-a3b", "int4")):
        s = spec(slug)
        assert weight_table(s, catalog.load_precision(prec)).total == pytest.approx(weight_bytes(s, prec), rel=1e-12)


def test_stage_weight_bytes_llama_8b_hand_computed():
    s = spec("llama-3.1-8b")
    t = weight_table(s, catalog.load_precision("bf16"))
    assert stage_weight_bytes(t, s, 1, 0, 32, True, True) == 8_030_261_248 * 2
    # TP2: everything but the 65 RMSNorm vectors (32*2 + 1 final) is split in two
    norms = 65 * 4096
    assert stage_weight_bytes(t, s, 2, 0, 32, True, True) == pytest.approx((8_030_261_248 - norms) * 2 / 2 + norms * 2)


def test_mla_down_projections_are_replicated():
    s = spec("deepseek-r1")
    t = weight_table(s, catalog.load_precision("bf16"))
    w1 = stage_weight_bytes(t, s, 1, 0, 61, True, True)
    w8 = stage_weight_bytes(t, s, 8, 0, 61, True, True)
    # q_a_proj (7168x1536) + kv_a_proj_with_mqa (7168x576) + their norms stay whole on every rank
    replicated = 61 * (7168 * 1536 + 7168 * 576 + 1536 + 512) * 2
    assert w8 > w1 / 8 + 0.8 * replicated


def test_layout_problems_name_the_reason():
    q15 = spec("deepseek-r1-distill-qwen-1.5b")  # 12 heads, 2 KV heads, I = 8960
    bf16 = catalog.load_precision("bf16")
    assert layout_problem(q15, bf16, 1, "vllm") is None
    assert "KV heads" in layout_problem(q15, bf16, 3, "vllm")
    assert layout_problem(q15, bf16, 4, "vllm") is None
    assert "attention heads" in layout_problem(q15, bf16, 8, "vllm")
    q14 = spec("deepseek-r1-distill-qwen-14b")  # 40 heads, 8 KV heads, I = 13824 -> 1728 per GPU at TP8
    int4 = catalog.load_precision("int4")
    assert layout_problem(q14, bf16, 8, "vllm") is None
    assert layout_problem(q14, int4, 4, "vllm") is None            # 3456 = 27 x 128
    assert "groups of 128" in layout_problem(q14, int4, 8, "vllm")  # 1728 = 13.5 x 128
    assert "28 attention heads" in layout_problem(spec("deepseek-r1-distill-qwen-7b"), bf16, 8, "vllm")
    assert "splits layers" in layout_problem(q14, bf16, 2, "llama.cpp")


def test_roofline_helpers_hand_computed():
    assert roofline.expert_hit_fraction(256, 8, 1) == pytest.approx(8 / 256)
    assert roofline.expert_hit_fraction(256, 8, 0) == 0
    assert roofline.expert_hit_fraction(256, 8, 10_000) == pytest.approx(1.0)
    assert roofline.roofline_s(100, 10, 10, 10) == (10, "memory")
    assert roofline.roofline_s(10, 100, 10, 10) == (10, "compute")
    assert comm.ring_allreduce_s(1000, 2, 1000, 0.001) == pytest.approx(0.001 + 1.0)
    assert comm.ring_allreduce_s(1000, 1, 1000, 0.001) == 0.0
    assert roofline.decode_context_tokens(4096, 32768) == 4096 + 14336
    llama, r1 = spec("llama-3.1-8b"), spec("deepseek-r1")
    assert A.attention_flop_per_token_per_layer(llama, 1000, "latent", True) == 4 * 32 * 128 * 1000
    assert A.attention_flop_per_token_per_layer(r1, 1000, "latent", True) == 2 * 128 * (1024 + 64) * 1000
    assert A.attention_flop_per_token_per_layer(r1, 1000, "latent", False) == 2 * 128 * 320 * 1000


# ----------------------------------------------------------------------------- engine memory models


def test_vllm_kv_pool_hand_computed_llama_8b_h100():
    """v0.19: pool = 0.9 x (81,559 - 450) MiB - (weights + max(8192-token workspace, 1024 x V x 15 B sampler)
    + 0.16 GiB); the sampler (1.84 GiB) is the larger of the two (forward 0.82 GiB)."""
    est = serve("llama-3.1-8b", "h100-80gb", gpus=1, users=1, context_tokens=8192, speed=False)
    runtime = (81559 - 450) * MiB
    weights = 8_030_261_248 * 2
    act = 8192 * (3 * 4096 + 3 * 14336) * 2
    sampler = 1024 * 128256 * 15
    assert sampler > act
    pool = 0.9 * runtime - (weights + sampler + int(0.16 * GiB))
    page = 16 * 131072  # 16-token block x 128 KiB per token
    assert est.kv_cache_capacity_tokens == math.floor(pool / page) * 16
    assert est.memory_per_gpu.weights == weights
    assert est.memory_per_gpu.activations == sampler


def test_vllm_kv_pool_mid_2025_profile_adds_forward_and_sampler():
    """vllm_memory_profile v1-mid-2025: forward + 33 B/logit sampler, summed (PR 21429's generation)."""
    est = serve("llama-3.1-8b", "h100-80gb", gpus=1, users=1, context_tokens=8192, speed=False,
                assumptions={"vllm_memory_profile": "v1-mid-2025"})
    runtime = (81559 - 450) * MiB
    weights = 8_030_261_248 * 2
    act = 8192 * (3 * 4096 + 3 * 14336) * 2
    sampler = 1024 * 128256 * 33
    pool = 0.9 * runtime - (weights + act + sampler + int(0.16 * GiB))
    assert est.kv_cache_capacity_tokens == math.floor(pool / (16 * 131072)) * 16
    assert est.memory_per_gpu.activations == act + sampler


def test_trtllm_kv_pool_is_fraction_of_free_memory_after_peak():
    """TensorRT-LLM: pool = 0.9 x (runtime - weights - 8192-token forward - non-torch - CUDA context); 32-token
    blocks."""
    est = serve("llama-3.1-8b", "h100-80gb", gpus=1, users=1, context_tokens=8192, speed=False,
                engine="tensorrt-llm")
    runtime = (81559 - 450) * MiB
    weights = 8_030_261_248 * 2
    act = 8192 * (3 * 4096 + 3 * 14336) * 2
    pool = 0.9 * (runtime - weights - act - int(0.16 * GiB) - 512 * MiB)
    assert est.block_size == 32
    assert est.kv_cache_capacity_tokens == math.floor(pool / (32 * 131072)) * 32
    assert est.memory_per_gpu.activations == act

    est = serve("llama-3.1-8b", "h100-80gb", gpus=1, users=1, context_tokens=8192, speed=False)
    assert est.max_num_batched_tokens == 8192 and est.block_size == 16


def test_vllm_smaller_defaults_on_a100_and_small_gpus():
    assert serve("llama-3.1-8b", "a100-80gb", users=1, context_tokens=4096, speed=False).max_num_batched_tokens == 2048
    assert serve("llama-3.1-8b", "l40s", users=1, context_tokens=4096, speed=False).max_num_batched_tokens == 2048
    assert serve("llama-3.1-8b", "h200", users=1, context_tokens=4096, speed=False).max_num_batched_tokens == 8192


def test_flashmla_block_size_64_on_hopper_only():
    assert serve("deepseek-r1", "h200", users=1, context_tokens=100, speed=False).block_size == 64
    assert serve("deepseek-r1", "a100-80gb", users=1, context_tokens=100, speed=False).block_size == 16
    est = serve("deepseek-r1", "h200", users=1, context_tokens=100, speed=False)
    assert est.kv_cache_bytes_per_user == 128 * 61 * 576 * 2  # 100 tokens -> 2 blocks of 64


def test_sglang_pool_is_fraction_of_free_memory_minus_weights():
    est = serve("llama-3.1-8b", "h100-80gb", gpus=1, users=1, context_tokens=8192, engine="sglang", speed=False)
    free0 = (81559 - 450) * MiB - 512 * MiB - int(0.16 * GiB)
    pool = 0.88 * free0 - 8_030_261_248 * 2
    assert est.kv_cache_capacity_tokens == math.floor(pool / 131072)
    assert engines.sglang_memory_fraction(8, make_plan("llama-3.1-8b", "h100", engine="sglang").a) == 0.81


def test_transformers_exact_kv_and_full_prompt_activations():
    est = serve("llama-3.1-8b", "h100-80gb", users=2, context_tokens=4096, prompt_tokens=1000, engine="transformers",
                speed=False)
    assert est.kv_cache_bytes_per_user == 4096 * 131072          # no paging
    assert est.max_num_batched_tokens == 2000                      # users x prompt in one forward
    assert est.memory_per_gpu.activations == 2000 * 55296 * 2 + 2 * 128256 * 4 * 2


def test_llamacpp_q4_k_m_default_and_padded_context():
    est = serve("llama-3.1-8b", "rtx-4090", users=1, context_tokens=4000, engine="llama.cpp", speed=False)
    assert est.precision == "q4_k_m" and est.kv_precision == "fp16"
    assert est.kv_cache_bytes_per_user == pytest.approx(4096 * 131072)  # n_ctx padded to 256
    # the token embedding stays in host memory
    assert est.memory_per_gpu.weights < est.weights_bytes_total
    assert serve("llama-3.1-8b", "rtx-4090", precision="int4", engine="llama.cpp", speed=False).precision == "q4_k_m"
    assert serve("llama-3.1-8b", "rtx-4090", precision="int8", engine="llama.cpp", speed=False).precision == "q8_0"


def test_kv_fp8_halves_the_cache():
    a = serve("deepseek-r1-distill-qwen-7b", "h100", users=3, context_tokens=32768, speed=False)
    b = serve("deepseek-r1-distill-qwen-7b", "h100", users=3, context_tokens=32768, kv_precision="fp8", speed=False)
    assert b.kv_cache_bytes_per_token * 2 == a.kv_cache_bytes_per_token == 57344
    assert b.memory_per_gpu.kv_cache * 2 == a.memory_per_gpu.kv_cache


def test_mla_decompressed_is_71x_the_latent():
    lat = serve("deepseek-r1", "h200", users=1, context_tokens=4096, speed=False)
    dec = serve("deepseek-r1", "h200", users=1, context_tokens=4096, mla_cache="decompressed", speed=False)
    assert dec.kv_cache_bytes_per_token / lat.kv_cache_bytes_per_token == pytest.approx(40960 / 576)
    assert any("decompressed" in n for n in dec.notes)


# ----------------------------------------------------------------------------- the customer's question


def test_deepseek_r1_fp8_fits_one_h200_node():
    est = serve("deepseek-r1", "h200", precision="fp8", users=3, context_tokens=32768)
    assert est.precision == "fp8-block128"
    assert est.fits and est.layout.gpus == 8 and est.layout.nodes == 1 and est.layout.tensor_parallel == 8
    assert est.kv_cache_bytes_per_token == 70_272
    assert est.memory_per_gpu.kv_cache == 3 * 32768 * 70_272
    assert est.decode_tokens_per_s_per_user > 0 and est.ttft_s > 0


def test_deepseek_r1_fp8_needs_two_h100_nodes():
    est = serve("deepseek-r1", "h100-80gb", precision="fp8", users=3, context_tokens=32768)
    assert est.fits and est.layout.gpus == 16 and est.layout.nodes == 2
    eight = serve("deepseek-r1", "h100-80gb", precision="fp8", users=3, context_tokens=32768, gpus=8)
    assert not eight.fits and eight.needs is not None and eight.needs.gpus == 16


def test_deepseek_r1_bf16_does_not_fit_one_h200_node_and_says_what_it_needs():
    est = serve("deepseek-r1", "h200", precision="bf16", users=3, context_tokens=32768, gpus=8)
    assert not est.fits
    assert est.needs is not None and est.needs.gpus == 16 and est.needs.nodes == 2
    assert "needs 16 GPUs" in est.reason and "exceed" in est.reason
    assert est.decode_tokens_per_s_per_user is None
    chosen = serve("deepseek-r1", "h200", precision="bf16", users=3, context_tokens=32768)
    assert chosen.fits and chosen.layout.gpus == 16 and chosen.layout.pipeline_parallel == 2


def test_does_not_fit_is_a_result_not_an_exception():
    est = serve("deepseek-r1", "rtx-4090", gpus=1, users=3, speed=False)
    assert est.fits is False and est.reason and est.needs is not None
    tiny = serve("llama-3.1-405b", "rtx-4090", engine="transformers", speed=False)
    assert tiny.fits is False and tiny.needs is None and "one node" in tiny.reason


def test_users_memory_comparison_weights_are_shared():
    c = users_memory_comparison("deepseek-r1", users=3, context_tokens=32768, precision="fp8")
    assert c["kv_cache_bytes_per_user"] == 32768 * 70_272
    assert c["total_bytes"] == c["weights_bytes"] + 3 * c["kv_cache_bytes_per_user"]
    assert c["naive_guess_bytes"] == 3 * c["weights_bytes"]
    assert c["naive_over_actual"] > 2.9  # 3 x 673 GB vs 673 GB + 6.9 GB
    assert [r["users"] for r in c["rows"]] == [1, 2, 3]
    small = users_memory_comparison("deepseek-r1-distill-qwen-1.5b", users=3, context_tokens=65536)
    # for a small model the KV cache of 3 long answers (28 KiB per token) exceeds the 3.6 GB of weights
    assert small["kv_cache_bytes_total"] > small["weights_bytes"]


def test_more_users_scale_only_the_kv_cache():
    one = serve("deepseek-r1-distill-llama-70b", "h100", gpus=4, users=1, speed=False)
    five = serve("deepseek-r1-distill-llama-70b", "h100", gpus=4, users=5, speed=False)
    assert five.memory_per_gpu.weights == one.memory_per_gpu.weights
    assert five.memory_per_gpu.kv_cache == 5 * one.memory_per_gpu.kv_cache
    assert five.kv_cache_capacity_tokens == one.kv_cache_capacity_tokens


def test_fp8_on_ampere_runs_weight_only_in_vllm_and_is_refused_by_transformers():
    est = serve("deepseek-r1-distill-llama-8b", "a100-80gb", precision="fp8", speed=True)
    assert est.fits and any("W8A16" in n for n in est.notes)
    with pytest.raises(ScenarioError, match="FP8 tensor cores"):
        serve("deepseek-r1-distill-llama-8b", "a100-80gb", precision="fp8", engine="transformers")
    with pytest.raises(ScenarioError, match="GGUF has no FP8"):
        serve("deepseek-r1-distill-llama-8b", "rtx-4090", precision="fp8", engine="llama.cpp")
    with pytest.raises(ScenarioError, match="GGUF format"):
        serve("deepseek-r1-distill-llama-8b", "rtx-4090", precision="q4_k_m", engine="vllm")


@pytest.mark.parametrize("kwargs,match", [
    (dict(users=0), "users must be a positive integer"),
    (dict(users=-2), "users must be a positive integer"),
    (dict(context_tokens=0), "context must be a positive integer"),
    (dict(context_tokens=200_000), "maximum of 163,840"),
    (dict(prompt_tokens=40_000, context_tokens=32768), "cannot exceed the context"),
    (dict(gpus=3), "does not divide the 128 attention heads"),
    (dict(gpus=0), "must be a positive integer"),
    (dict(gpu_memory_utilization=1.5), r"fraction in \(0, 1\]"),
    (dict(kv_precision="q4_0"), "not available in vllm"),
    (dict(mla_cache="both"), "MLA cache mode"),
    (dict(engine="tgi"), "unknown engine"),
])
def test_bad_input_raises_scenario_error(kwargs, match):
    with pytest.raises(ScenarioError, match=match):
        serve("deepseek-r1", "h200", **kwargs)


def test_unknown_names_raise_catalog_errors():
    with pytest.raises(CatalogError):
        serve("deepseek-r2", "h200")
    with pytest.raises(CatalogError):
        serve("deepseek-r1", "h300")
    with pytest.raises(CatalogError):
        serve("deepseek-r1", "h200", precision="int3")


def test_max_model_len_must_fit_in_the_kv_cache():
    ok = serve("deepseek-r1-distill-llama-8b", "rtx-4090", gpus=1, precision="int4", users=1, context_tokens=4096,
               speed=False)
    assert ok.fits and ok.kv_cache_capacity_tokens < 131072
    refused = serve("deepseek-r1-distill-llama-8b", "rtx-4090", gpus=1, precision="int4", users=1,
                    context_tokens=4096, max_model_len=131072, speed=False)
    assert not refused.fits and "max_model_len" in refused.reason


def test_gpu_memory_override_describes_an_unlisted_card():
    small = serve("deepseek-r1-distill-llama-8b", "rtx-4090", gpu_memory="48GiB", gpus=1, speed=False)
    assert small.gpu_memory_bytes == 48 * GiB


def test_to_dict_has_the_contract_keys_with_integer_sizes():
    d = serve("deepseek-r1", "h200", precision="fp8").to_dict()
    for key in ("model", "gpu", "precision", "kv_precision", "users", "context_tokens", "params_total",
                "params_active", "kv_cache_bytes_per_token", "gpus", "tensor_parallel", "memory_per_gpu",
                "gpu_memory_bytes", "fits", "kv_cache_capacity_tokens", "max_concurrent_users",
                "decode_tokens_per_s_per_user", "ttft_s", "pipeline_parallel", "expert_parallel", "nodes", "engine",
                "reason", "needs", "assumptions"):
        assert key in d, key
    for k, v in d["memory_per_gpu"].items():
        assert isinstance(v, int), k
    assert isinstance(d["kv_cache_bytes_per_token"], int) and isinstance(d["gpu_memory_bytes"], int)
    names = {a["name"] for a in d["assumptions"]}
    assert {"vllm_gpu_memory_utilization", "vllm_block_size", "decode_bandwidth_efficiency"} <= names
    assert not any(n.startswith("sglang_") for n in names)
    assert d["context_tokens"] == 32768 and d["prompt_tokens"] == 4096 and d["users"] == 3


def test_defaults_are_three_users_and_a_32k_reasoning_context():
    est = serve("deepseek-r1-distill-qwen-32b", "h100", speed=False)
    assert (est.users, est.context_tokens, est.prompt_tokens) == (3, 32768, 4096)
    short = serve("deepseek-r1-distill-qwen-32b", "h100", context_tokens=4096, speed=False)
    assert short.prompt_tokens == 512  # the same 1:7 prompt:answer split


@settings(max_examples=40, deadline=None)
@given(users=st.integers(1, 64), context=st.integers(1, 131072), tp=st.sampled_from([1, 2, 4, 8]))
def test_property_memory_parts_and_capacity_are_consistent(users, context, tp):
    plan = make_plan("deepseek-r1-distill-llama-70b", "h200", users=users, context_tokens=context)
    mem = evaluate_layout(plan, Layout(tp, 1, 1, 8))
    s = mem.stages[0]
    assert s.kv_per_user == kv_tokens_held(context, 16) * 80 * 2 * 128 * kv_heads_per_rank(plan.spec, tp) * 2
    assert mem.fits(users) == (s.kv_pool >= users * s.kv_per_user and s.kv_pool > 0)
    if mem.fits(users):
        assert mem.max_users() >= users
        assert mem.capacity_tokens(16) >= users * context


def test_sweep_covers_every_combination():
    """Speed bar (2 s): benchmarks/bench_serving.py, not a timed test."""
    rows = serve_sweep()
    assert len(rows) == 7 * 4 * 6
    assert {(r["model"], r["precision"], r["gpu"]) for r in rows} == {
        (m, p, g) for m in DEEPSEEK_R1_FAMILY for p in SWEEP_PRECISIONS for g in SWEEP_GPUS}
    for r in rows:
        assert r["reason"]
        assert (r["fits"] and r["gpus"] >= 1) or not r["fits"]
    r1 = {(r["precision"], r["gpu"]): r for r in rows if r["model"] == "deepseek-r1"}
    assert r1[("fp8", "h200")]["gpus"] == 8 and r1[("fp8", "h100-80gb")]["gpus"] == 16
    assert r1[("bf16", "h200")]["gpus"] == 16


def test_sweep_reports_engine_refusals_as_rows():
    rows = serve_sweep(["deepseek-r1-distill-qwen-1.5b"], ["fp8"], ["a100-80gb"], engine="transformers")
    assert rows[0]["fits"] is False and "FP8 tensor cores" in rows[0]["reason"]


def test_assumption_overrides_change_the_estimate():
    base = serve("llama-3.1-8b", "h100", users=1, context_tokens=8192, speed=False)
    more = serve("llama-3.1-8b", "h100", users=1, context_tokens=8192, speed=False,
                 assumptions={"vllm_gpu_memory_utilization": 0.95})
    assert more.kv_cache_capacity_tokens > base.kv_cache_capacity_tokens
    assert serve("llama-3.1-8b", "h100", users=1, context_tokens=8192, speed=False,
                 gpu_memory_utilization=0.95).kv_cache_capacity_tokens == more.kv_cache_capacity_tokens


def test_decode_speed_falls_with_more_users_and_longer_context():
    a = serve("deepseek-r1-distill-qwen-32b", "h100", gpus=2, users=1, context_tokens=4096)
    b = serve("deepseek-r1-distill-qwen-32b", "h100", gpus=2, users=8, context_tokens=4096)
    c = serve("deepseek-r1-distill-qwen-32b", "h100", gpus=2, users=8, context_tokens=16384)
    assert a.decode_tokens_per_s_per_user > b.decode_tokens_per_s_per_user > c.decode_tokens_per_s_per_user
    assert b.decode_tokens_per_s_total > a.decode_tokens_per_s_total

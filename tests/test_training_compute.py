"""Training compute: FLOP per token, utilisation and hours, against hand-computed cases."""

import math

import pytest

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing.training import compute as TC
from llmsizing.assumptions import Assumptions, registry
from llmsizing.errors import ScenarioError
from llmsizing.specs import model_spec_from_config
from llmsizing.training.memory import FinetuneSetup

pytestmark = pytest.mark.unit

# Hand-countable Llama: h=64, 2 layers, 4 heads of 16, 2 KV heads, SwiGLU 128, vocab 256, untied.
# Per layer: q 64·64 + k 64·32 + v 64·32 + o 64·64 = 12,288; gate, up, down 3·64·128 = 24,576 → 36,864.
# N = 2·36,864 + head 64·256 = 73,728 + 16,384 = 90,112.
# Attention per token at s keys: per layer 2·n_h·(d_qk + d_v)·s = 2·4·32·s = 256·s; 2 layers → 512·s.
TINY = dict(model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=256)
N, N_LAYERS, S = 90_112, 73_728, 128
ATT = 512 * S  # 65,536
# LoRA r=4 on all linear layers: r·(in+out) = q 512, k 384, v 384, o 512, gate 768, up 768, down 768 → 4,096/layer.
N_AD = 8_192


@pytest.fixture(scope="module")
def tiny():
    return model_spec_from_config(TINY, slug="tiny")


def setup(**kw):
    base = dict(method="full", seq_len=S, micro_batch=1, gradient_checkpointing=False, attention_kernel="eager",
                precision="bf16")
    base.update(kw)
    return FinetuneSetup(**base)


def test_hand_counts(tiny):
    assert A.matmul_params_active(tiny) == N
    assert A.attention_flop_per_token(tiny, S) == ATT
    assert TC.adapter_params_active(tiny, setup(method="lora", lora_rank=4)) == N_AD


def test_full_no_checkpointing_is_6n_plus_3a(tiny):
    fb = TC.flop_breakdown_per_token(tiny, setup())
    assert fb.forward == fb.input_gradients == fb.weight_gradients == 2 * N
    assert fb.attention == 3 * ATT
    assert fb.model == fb.train == 6 * N + 3 * ATT == 737_280


def test_full_checkpointing_adds_one_layer_forward_and_flash_recompute(tiny):
    s = setup(gradient_checkpointing=True, attention_kernel="flash")
    assert TC.model_flop_per_token(tiny, s) == 737_280
    # + recompute forward of the decoder layers (2·N_layers + A; the head is not recomputed)
    # + flash attention's backward recompute of QKᵀ (0.5·A)
    assert TC.train_flop_per_token(tiny, s) == 737_280 + 2 * N_LAYERS + ATT + ATT // 2 == 983_040


def test_lora_skips_frozen_weight_gradients(tiny):
    s = setup(method="lora", lora_rank=4)
    # forward 2(N + N_ad), input gradients 2(N + N_ad), weight gradients of the adapters only 2·N_ad
    assert TC.model_flop_per_token(tiny, s) == 4 * N + 6 * N_AD + 3 * ATT == 606_208
    ck = setup(method="lora", lora_rank=4, gradient_checkpointing=True)
    assert TC.train_flop_per_token(tiny, ck) == 606_208 + 2 * (N_LAYERS + N_AD) + ATT == 835_584


def test_qlora_flop_equals_lora(tiny):
    lora, qlora = setup(method="lora"), setup(method="qlora")
    assert TC.train_flop_per_token(tiny, lora) == TC.train_flop_per_token(tiny, qlora)


def test_train_flop_scales_with_tokens(tiny):
    s = setup(gradient_checkpointing=True)
    assert TC.train_flop(tiny, s, 1e9) == pytest.approx(1e9 * TC.train_flop_per_token(tiny, s))
    with pytest.raises(ScenarioError):
        TC.train_flop(tiny, s, -1)


@pytest.mark.parametrize("h,a,L", [(2304, 24, 24), (12288, 96, 96), (25600, 160, 128)])
def test_megatron_formula_exactly(h, a, L):
    """GPT shapes (MPT family with biases = GPT-2/3 blocks, V = 51,200, s = 2048): with full recompute
    and materialised attention our hardware FLOP equal Narayanan et al. 2021 (arXiv:2104.04473 §5.1)
    F = 96·B·s·l·h²·(1 + s/6h + V/16lh) per B·s tokens; without recompute model FLOP equal
    72·B·s·l·h²·(1 + s/6h + V/12lh)."""
    s, V = 2048, 51200
    spec = model_spec_from_config(dict(model_type="mpt", d_model=h, n_heads=a, n_layers=L, expansion_ratio=4,
                                       vocab_size=V, max_seq_len=s, no_bias=False), slug="gpt")
    ck = setup(seq_len=s, gradient_checkpointing=True)
    assert TC.train_flop_per_token(spec, ck) == pytest.approx(96 * L * h * h * (1 + s / (6 * h) + V / (16 * L * h)),
                                                               rel=1e-12)
    assert TC.model_flop_per_token(spec, ck) == pytest.approx(72 * L * h * h * (1 + s / (6 * h) + V / (12 * L * h)),
                                                               rel=1e-12)


def test_moe_counts_active_experts_only():
    spec = catalog.load_model("qwen3-30b-a3b")
    s = setup(seq_len=1)
    n = A.matmul_params_active(spec)
    assert n < 0.2 * A.params_total(spec)
    assert TC.model_flop_per_token(spec, s) == pytest.approx(6 * n + 3 * A.attention_flop_per_token(spec, 1))


def test_6n_rule_for_llama_8b():
    spec = catalog.load_model("llama-3.1-8b")
    n = A.params_total(spec) - spec.vocab_size * spec.hidden_size  # embedding lookup is not a matmul
    assert TC.model_flop_per_token(spec, setup(seq_len=1)) == pytest.approx(6 * n, rel=1e-4)


def test_mtp_adds_one_moe_layer_and_a_head():
    spec = catalog.load_model("deepseek-v3")
    s = setup(seq_len=4096)
    base, mtp = TC.model_flop_per_token(spec, s), TC.model_flop_per_token(spec, s, include_mtp=True)
    assert 1.02 < mtp / base < 1.10


@pytest.mark.parametrize("slug,cls", [
    ("h100-80gb", "hopper"), ("h800", "hopper"), ("h20", "hopper"), ("h200", "hopper"), ("a100-80gb", "ampere"),
    ("rtx-a5000", "ampere"), ("a10g", "ampere"), ("l40s", "ada"), ("rtx-4090", "ada"), ("b200", "blackwell"),
    ("rtx-5090", "blackwell"), ("mi300x", "other"), ("gaudi3", "other"), ("t4", "other"), ("ascend-910b", "other"),
])
def test_gpu_class(slug, cls):
    assert TC.gpu_class(catalog.load_gpu(slug)) == cls


def test_every_method_and_class_has_a_sourced_mfu():
    reg = registry()
    for method in TC.METHODS:
        for cls in TC.GPU_CLASSES:
            a = reg[f"mfu_{method}_{cls}"]
            assert 0.1 <= a.value <= 0.7 and a.source and a.unit == "fraction"
    for name in ("recompute_time_fraction", "host_overhead_s_per_layer", "qlora_dequant_bytes_per_param"):
        assert reg[name].source


def test_mfu_reads_the_named_assumption():
    gpu = catalog.load_gpu("h100-80gb")
    assert TC.mfu(gpu, setup()) == registry()["mfu_full_hopper"].value
    assert TC.mfu(gpu, setup(), {"mfu_full_hopper": 0.5}) == 0.5
    assert TC.mfu(catalog.load_gpu("a100-80gb"), setup(method="qlora")) == registry()["mfu_qlora_ampere"].value


def test_compute_precision_and_peak():
    # a GPU whose catalog entry has no FP32 figure (the re-checked H800 now has one: 66.9 TFLOP/s)
    h100, t4, h800 = catalog.load_gpu("h100-80gb"), catalog.load_gpu("t4"), catalog.load_gpu("ascend-910b")
    assert h100.tensor_flop_per_s(TC.compute_precision(h100, setup(precision="mixed-bf16"))) == h100.flop_per_s["bf16"]
    assert h100.tensor_flop_per_s(TC.compute_precision(h100, setup(precision="fp32"))) == h100.flop_per_s["fp32"]
    assert TC.compute_precision(t4, setup()) == "fp16"  # no bf16 on Turing: mixed fp16
    with pytest.raises(ScenarioError, match="fp32"):
        h800.tensor_flop_per_s(TC.compute_precision(h800, setup(precision="fp32")))


def test_compute_bound_hours_by_hand():
    """Llama-3.1-8B full fine-tuning, 8×4096 tokens per micro-step: compute-bound, so
    hours = tokens·(model + ρ·(train − model)) / (gpus · MFU · peak) / 3600."""
    spec, gpu = catalog.load_model("llama-3.1-8b"), catalog.load_gpu("h100-80gb")
    s = setup(seq_len=4096, micro_batch=8, gradient_checkpointing=True, attention_kernel="flash",
              precision="mixed-bf16")
    a = Assumptions()
    fb = TC.flop_breakdown_per_token(spec, s)
    rho, u, peak = a["recompute_time_fraction"], a["mfu_full_hopper"], gpu.flop_per_s["bf16"]
    tokens, gpus = 1e9, 8
    expect = tokens * (fb.model + rho * (fb.train - fb.model)) / (gpus * u * peak) / 3600
    assert TC.compute_hours(spec, s, gpu, gpus, tokens) == pytest.approx(expect)
    st = TC.step_time(spec, s, gpu)
    assert st.bound == "compute" and st.dequant_s == 0
    assert TC.gpu_hours(spec, s, gpu, tokens) == pytest.approx(expect * gpus)
    assert TC.achieved_flop_per_s_per_gpu(spec, s, gpu) == pytest.approx(st.effective_mfu * peak)
    assert st.effective_mfu < u  # the recompute costs time but is not model FLOP
    assert TC.hardware_flop_per_s_per_gpu(spec, s, gpu) > TC.achieved_flop_per_s_per_gpu(spec, s, gpu)


def test_hours_scale_with_tokens_and_gpus():
    spec, gpu = catalog.load_model("deepseek-r1-distill-qwen-7b"), catalog.load_gpu("a100-80gb")
    s = setup(method="lora", seq_len=4096, gradient_checkpointing=True, precision="mixed-bf16")
    h1 = TC.compute_hours(spec, s, gpu, 1, 1e8)
    assert TC.compute_hours(spec, s, gpu, 1, 2e8) == pytest.approx(2 * h1)
    assert TC.compute_hours(spec, s, gpu, 4, 1e8) == pytest.approx(h1 / 4)
    assert TC.compute_hours(spec, s, gpu, 1, 0) == 0
    with pytest.raises(ScenarioError):
        TC.compute_hours(spec, s, gpu, 0, 1e8)


def test_host_overhead_bounds_tiny_micro_batches():
    """A micro-step takes at least L · host_overhead_s_per_layer: 28 layers × 5 ms = 0.14 s."""
    spec, gpu = catalog.load_model("deepseek-r1-distill-qwen-7b"), catalog.load_gpu("h100-80gb")
    st = TC.step_time(spec, setup(method="lora", seq_len=128), gpu)
    assert st.bound == "host"
    assert st.step_s == pytest.approx(spec.num_layers * Assumptions()["host_overhead_s_per_layer"])


def test_qlora_pays_dequantization():
    """3 passes (forward, recompute, backward) × quantized weights × 10 B / HBM bandwidth."""
    spec, gpu = catalog.load_model("llama-3.1-8b"), catalog.load_gpu("rtx-4090")
    lora = TC.step_time(spec, setup(method="lora", seq_len=2048, gradient_checkpointing=True), gpu)
    qlora = TC.step_time(spec, setup(method="qlora", seq_len=2048, gradient_checkpointing=True), gpu)
    layers = sum(m.count * m.weight_params for m in A.model_modules(spec) if m.kind == "linear" and m.layer >= 0)
    assert qlora.dequant_s == pytest.approx(3 * layers * 10.0 / gpu.mem_bw_bytes_per_s)
    assert qlora.compute_s == pytest.approx(lora.compute_s)
    assert 1.05 < qlora.step_s / lora.step_s < 2.0


def test_checkpointing_costs_time_and_lora_is_cheaper_than_full():
    spec, gpu = catalog.load_model("qwen3-8b"), catalog.load_gpu("h100-80gb")
    full = TC.tokens_per_s_per_gpu(spec, setup(seq_len=4096, micro_batch=4), gpu)
    full_ck = TC.tokens_per_s_per_gpu(spec, setup(seq_len=4096, micro_batch=4, gradient_checkpointing=True), gpu)
    lora = TC.tokens_per_s_per_gpu(spec, setup(method="lora", seq_len=4096, micro_batch=4), gpu)
    assert full_ck < full < lora


def test_tensor_and_pipeline_parallel_split_the_work():
    spec, gpu = catalog.load_model("llama-3.1-70b"), catalog.load_gpu("h100-80gb")
    one = TC.step_time(spec, setup(seq_len=4096, micro_batch=4), gpu)
    tp8 = TC.step_time(spec, setup(seq_len=4096, micro_batch=4, tp=8), gpu)
    assert tp8.compute_s == pytest.approx(one.compute_s / 8)
    assert tp8.tokens_per_s_per_gpu == pytest.approx(one.tokens_per_s_per_gpu)


def test_sliding_window_caps_attention_flop():
    spec = catalog.load_model("gemma-2-27b")
    short, long = setup(seq_len=4096), setup(seq_len=32768)
    full_layers = spec.num_layers - len(spec.sliding_layers)
    grow = TC.model_flop_per_token(spec, long) - TC.model_flop_per_token(spec, short)
    per_layer = A.attention_flop_per_token(spec, 1) / spec.num_layers  # gemma: no layer is capped at s=1
    assert grow == pytest.approx(3 * per_layer * full_layers * (32768 - 4096))


def test_invalid_method_is_one_line():
    class Bad:
        method = "dora"
    with pytest.raises(ScenarioError, match="dora"):
        TC.mfu(catalog.load_gpu("h100-80gb"), Bad())


def test_flop_breakdown_dict_sums():
    spec = catalog.load_model("llama-3.1-8b")
    d = TC.flop_breakdown_per_token(spec, setup(seq_len=8192, gradient_checkpointing=True,
                                                attention_kernel="sdpa")).to_dict()
    assert math.isclose(d["model"], d["forward"] + d["input_gradients"] + d["weight_gradients"] + d["attention"])
    assert math.isclose(d["train"], d["model"] + d["checkpoint_recompute"] + d["attention_recompute"])

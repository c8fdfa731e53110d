"""Fine-tuning memory model (training.py, activations.py): hand-computed parts, invariants, bad input."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing.training.activations import checkpoint_bytes_per_token, head_saved_bytes_per_token, layer_saved_tensors, logits_peak_bytes_per_token
from llmsizing.assumptions import Assumptions
from llmsizing.errors import ScenarioError
from llmsizing.lora import lora_params
from llmsizing.training.memory import FinetuneSetup, activation_bytes, dequant_workspace_bytes, finetune_memory, model_state_bytes, model_states, optimizer_bytes_per_param, trainable_params, zero3_gather_bytes

pytestmark = pytest.mark.unit
GiB = 2**30


@pytest.fixture(scope="module")
def l8():
    return catalog.load_model("llama-3.1-8b")


@pytest.fixture(scope="module")
def h100():
    return catalog.load_gpu("h100-80gb")


A0 = Assumptions()
H, NH_D, KV, INTER, V, L = 4096, 4096, 1024, 14336, 128256, 32  # Llama-3.1-8B


# ----------------------------------------------------------------------------- model states


def test_trainable_params(l8):
    assert trainable_params(l8, FinetuneSetup(method="full")) == A.params_transformers(l8) == 8_030_261_248
    assert trainable_params(l8, FinetuneSetup(method="lora", lora_rank=16)) == lora_params(l8, "all-linear", 16)
    assert trainable_params(l8, FinetuneSetup(method="qlora", lora_rank=8, lora_targets="q,v")) == \
        lora_params(l8, "q,v", 8)


@pytest.mark.parametrize("precision,optimizer,big,small", [
    ("mixed-bf16", "adamw", 12, 12),              # 4 master + 8 moments (ZeRO K = 12)
    ("bf16", "adamw", 4, 4),                      # torch keeps moments in the bf16 param dtype
    ("fp32", "adamw", 8, 8),
    ("mixed-bf16", "adamw-8bit", 4 + 2 * (1 + 4 / 256), 12),   # 8-bit moments + absmax per 256; small: fp32
    ("bf16", "paged-adamw-8bit", 2 * (1 + 4 / 256), 8),
    ("mixed-bf16", "sgd", 4, 4),
    ("bf16", "sgd", 0, 0),
    ("mixed-bf16", "sgd-momentum", 8, 8),
    ("bf16", "sgd-momentum", 2, 2),
])
def test_optimizer_bytes_per_param(precision, optimizer, big, small):
    s = FinetuneSetup(method="full", precision=precision, optimizer=optimizer)
    assert optimizer_bytes_per_param(s, 1_000_000, A0) == pytest.approx(big)
    assert optimizer_bytes_per_param(s, 1_000, A0) == pytest.approx(small)


@pytest.mark.parametrize("precision,per_param", [("mixed-bf16", 16), ("bf16", 8), ("fp32", 16)])
def test_full_model_states_bytes_per_param(l8, precision, per_param):
    """2 + 2 + 12 (mixed, ZeRO §3.1), 2 + 2 + 4 (pure bf16), 4 + 4 + 8 (fp32)."""
    s = FinetuneSetup(method="full", precision=precision)
    ms = model_state_bytes(l8, s)
    P = A.params_transformers(l8)
    assert ms["total"] == pytest.approx(per_param * P)


def test_zero_stages_divide_the_right_states(l8):
    """ZeRO Figure 1 formulas at Nd = 8: 16Ψ, 4Ψ + 12Ψ/N, 2Ψ + 14Ψ/N, 16Ψ/N."""
    P, N = A.params_transformers(l8), 8
    expect = {0: 16 * P, 1: 4 * P + 12 * P / N, 2: 2 * P + 14 * P / N, 3: 16 * P / N}
    for zero, total in expect.items():
        s = FinetuneSetup(method="full", zero=zero, dp=N)
        assert model_state_bytes(l8, s)["total"] == pytest.approx(total, rel=1e-9)


def test_lora_keeps_frozen_base_in_bf16_and_trains_adapters(l8):
    s = FinetuneSetup(method="lora", lora_rank=16)
    ms = model_states(l8, s, 0, A0)
    n = lora_params(l8, "all-linear", 16)
    assert ms.weights == pytest.approx(2 * A.params_total(l8))
    assert ms.grads_full == pytest.approx(2 * n)
    assert ms.optimizer == pytest.approx(12 * n)
    fp32 = model_states(l8, FinetuneSetup(method="lora", base_weights="fp32"), 0, A0)
    assert fp32.weights == pytest.approx(4 * A.params_total(l8))


def test_qlora_weights_nf4_with_bf16_embeddings(l8):
    nf4 = model_states(l8, FinetuneSetup(method="qlora", qlora_quant="nf4"), 0, A0).weights
    dq = model_states(l8, FinetuneSetup(method="qlora"), 0, A0).weights
    by = A.params_by_group(l8)
    linear = by["attention"] + by["mlp"]
    high = (by["embedding"] + by["lm_head"] + by["norm"]) * 2
    assert nf4 == pytest.approx(linear * (0.5 + 4 / 64) + high)
    assert dq == pytest.approx(linear * (0.5 + (1 + 4 / 256) / 64) + high)
    # dequantization workspace: the largest quantized weight (gate/up 4096 x 14336) in bf16
    assert dequant_workspace_bytes(l8, FinetuneSetup(method="qlora"), A0) == 2 * H * INTER


def test_paged_optimizer_outside_allocator(l8, h100):
    s = FinetuneSetup(method="full", precision="bf16", optimizer="paged-adamw-8bit", seq_len=1024)
    m = finetune_memory(l8, s, h100)
    assert m.optimizer == 0
    P = A.params_transformers(l8)
    assert m.paged_optimizer > 0.9 * 2 * P  # resident on the GPU while it fits
    # torchtune's 24 GB recipe: paged 8-bit AdamW stepped inside backward (no full gradient set)
    lean = FinetuneSetup(method="full", precision="bf16", optimizer="paged-adamw-8bit", seq_len=1024,
                         optimizer_in_backward=True)
    small = finetune_memory(l8, lean, catalog.load_gpu("rtx-4090"))
    assert small.fits and small.host_ram_bytes > 0  # pages to host instead of failing
    assert small.gradients <= 2 * H * V  # the largest single gradient (embedding / lm_head)


def test_optimizer_offload_moves_states_to_host(l8, h100):
    s = FinetuneSetup(method="full", zero=2, dp=8, offload="optimizer")
    m = finetune_memory(l8, s, h100)
    assert m.optimizer == 0
    P = A.params_transformers(l8)
    per_gpu_host = (12 * P + 4 * P) / 8   # fp32 master + Adam moments + fp32 gradient partition
    assert m.host_ram_bytes == pytest.approx(per_gpu_host * 8)


def test_ddp_buckets_are_a_second_gradient_copy(l8, h100):
    base = dict(method="full", precision="bf16", seq_len=512)
    one = model_states(l8, FinetuneSetup(**base), 0, A0)
    two = model_states(l8, FinetuneSetup(dp=2, **base), 0, A0)
    assert one.grads_persistent == 0 and two.grads_persistent == pytest.approx(two.grads_full)
    view = model_states(l8, FinetuneSetup(dp=2, **base), 0, Assumptions({"ddp_gradient_as_bucket_view": True}))
    assert view.grads_persistent == 0


def test_zero3_gather_buffers(l8):
    fsdp = FinetuneSetup(method="full", zero=3, dp=8)
    layer_bytes = 2 * (2 * H * NH_D + 2 * H * KV + 3 * H * INTER + 2 * H)
    head_bytes = 2 * H * V  # embedding / lm_head units are larger than a layer
    assert zero3_gather_bytes(l8, fsdp, 0, A0) == pytest.approx(2 * max(layer_bytes, head_bytes))
    ds = FinetuneSetup(method="full", zero=3, dp=8, zero_backend="deepspeed")
    # DeepSpeed gathers the embedding / untied head whole too: the larger of the two
    assert zero3_gather_bytes(l8, ds, 0, A0) == pytest.approx(max(layer_bytes + 2 * 50_000_000, head_bytes))


# ----------------------------------------------------------------------------- activations


def _layer_bytes_per_token(spec, setup, layer=1):
    return sum(t.bytes_per_token for t in layer_saved_tensors(spec, setup, layer, A0))


def test_full_bf16_flash_layer_saves(l8):
    """Eager autograd, bf16, flash attention, Llama layer (bytes per token):
    2 RMSNorms: fp32 upcast 4h + rstd 4 + normalized 2h; q/k/v and gate/up inputs 2h each;
    q 2·n_h·d, k and v 2·kv, output (= o_proj input) 2·n_h·d, log-sum-exp 4·n_h;
    SiLU input, act, up and the product (down input) 2i each."""
    s = FinetuneSetup(method="full", precision="bf16")
    norms = 2 * (4 * H + 4 + 2 * H)
    attn = 2 * H + 2 * NH_D + 2 * 2 * KV + 2 * NH_D + 4 * 32
    mlp = 2 * H + 4 * 2 * INTER
    assert _layer_bytes_per_token(l8, s) == norms + attn + mlp == 200_840


def test_lora_layer_saves_adapter_inputs_not_frozen_inputs(l8):
    """Frozen linears save no input; LoRA A saves it (shared, dropout 0, bf16 adapters) and B the
    rank-r intermediate. Norms save no normalized copy (frozen weight)."""
    s = FinetuneSetup(method="lora", precision="bf16", lora_rank=8)
    norms = 2 * (4 * H + 4)
    attn = 2 * H + 2 * NH_D + 2 * 2 * KV + 2 * NH_D + 4 * 32
    mlp = 2 * H + 4 * 2 * INTER
    mids = 7 * 8 * 2
    assert _layer_bytes_per_token(l8, s) == norms + attn + mlp + mids
    qv = FinetuneSetup(method="lora", precision="bf16", lora_rank=8, lora_targets="q,v")
    # no adapter on o_proj/gate/up/down: the MLP product is not saved (frozen down_proj)
    assert _layer_bytes_per_token(l8, qv) == norms + attn + 3 * 2 * INTER + 2 * 8 * 2


def test_lora_dropout_and_autocast_copies(l8):
    """Each adapted module saves its own copy (bf16) + a bool dropout mask when dropout > 0."""
    s = FinetuneSetup(method="lora", precision="bf16", lora_rank=8, lora_targets="q,v", lora_dropout=0.1)
    items = {t.name: t for t in layer_saved_tensors(l8, s, 1, A0)}
    assert items["q_proj.lora_input"].bytes_per_token == H * 3
    assert items["v_proj.lora_input"].bytes_per_token == H * 3
    mixed = FinetuneSetup(method="lora", precision="mixed-bf16", lora_rank=8, lora_targets="q,v")
    items = {t.name: t for t in layer_saved_tensors(l8, mixed, 1, A0)}
    assert items["q_proj.lora_input"].bytes_per_token == H * 2


def test_eager_attention_adds_s_squared(l8):
    s = FinetuneSetup(method="full", precision="bf16", attention_kernel="eager", seq_len=2048)
    flash = FinetuneSetup(method="full", precision="bf16", seq_len=2048)
    extra = _layer_bytes_per_token(l8, s) - _layer_bytes_per_token(l8, flash)
    # fp32 softmax + bf16 copy (n_h·s each) + repeat_kv k, v (n_h·d instead of kv) + o_proj input - out - lse
    assert extra == 32 * 2048 * 6 + 2 * 2 * (NH_D - KV) - 4 * 32


def test_checkpointing_keeps_layer_inputs(l8):
    s = FinetuneSetup(method="lora", precision="bf16", seq_len=2048, micro_batch=2, lora_rank=8)
    act = activation_bytes(l8, s)
    T = 4096
    rope = 2 * 128 * 2 * T
    assert checkpoint_bytes_per_token(l8, s) == 2 * H
    assert act["layers"] == pytest.approx(L * 2 * H * T + rope)
    assert act["lora"] == 0
    assert act["recompute_peak"] > _layer_bytes_per_token(l8, s) * T  # one layer + its gradient buffers


def test_logits_peak_per_token(l8):
    """fp32 loss over the vocabulary: 12·V (HF eager), (2 + 4 + 4/8)·V chunked, (2 + 8/8)·V compiled chunked."""
    bf16 = dict(method="lora", precision="bf16")
    assert logits_peak_bytes_per_token(l8, FinetuneSetup(**bf16)) == 12 * V
    assert logits_peak_bytes_per_token(l8, FinetuneSetup(chunked_cross_entropy=True, **bf16)) == 6.5 * V
    assert logits_peak_bytes_per_token(l8, FinetuneSetup(chunked_cross_entropy=True, compiled=True, **bf16)) == 3 * V
    tp2 = FinetuneSetup(tp=2, **bf16)
    assert logits_peak_bytes_per_token(l8, tp2) == 6 * V  # vocabulary-parallel head


def test_head_saves(l8):
    assert head_saved_bytes_per_token(l8, FinetuneSetup(method="lora", precision="bf16")) == 4 * H + 4
    assert head_saved_bytes_per_token(l8, FinetuneSetup(method="full", precision="bf16")) == 4 * H + 4 + 2 * H + 2 * H


def test_tensor_and_sequence_parallel_split_activations(l8):
    base = dict(method="full", precision="bf16", gradient_checkpointing=False, seq_len=1024)
    one = activation_bytes(l8, FinetuneSetup(**base))["layers"]
    tp = activation_bytes(l8, FinetuneSetup(tp=4, **base))["layers"]
    sp = activation_bytes(l8, FinetuneSetup(tp=4, sequence_parallel=True, **base))["layers"]
    rope = 2 * 128 * 2 * 1024  # rotary cos/sin: computed once, not split
    assert sp - rope == pytest.approx((one - rope) / 4)  # Korthikanti Table 2: all split with TP + SP
    assert one / 4 < tp < one


def test_pipeline_first_stage_holds_pp_microbatches(l8, h100):
    s = FinetuneSetup(method="full", precision="bf16", pp=4, dp=1, seq_len=1024)
    from llmsizing.training.memory import stage_activation_bytes
    first = stage_activation_bytes(l8, s, 0, A0)
    last = stage_activation_bytes(l8, s, 3, A0)
    assert first["layers"] == pytest.approx(4 * last["layers"])  # 1F1B: pp - i in flight
    assert first["logits"] == 0 and last["logits"] > 0
    m = finetune_memory(l8, s, h100)
    assert m.weights < 0.35 * 2 * A.params_total(l8)


def test_expert_parallel_divides_experts(h100):
    spec = catalog.load_model("mixtral-8x7b")
    one = model_states(spec, FinetuneSetup(method="full", precision="bf16", dp=8), 0, A0)
    ep = model_states(spec, FinetuneSetup(method="full", precision="bf16", dp=8, ep=8), 0, A0)
    experts = A.params_by_group(spec)["experts"] * 2
    assert one.weights - ep.weights == pytest.approx(experts * 7 / 8)


def test_activation_offload_moves_checkpoints_to_host(l8, h100):
    base = dict(method="lora", precision="bf16", seq_len=4096, micro_batch=4)
    on = finetune_memory(l8, FinetuneSetup(activation_offload=True, **base), h100)
    off = finetune_memory(l8, FinetuneSetup(**base), h100)
    assert on.allocated < off.allocated and on.host_ram_bytes > 0 == off.host_ram_bytes


# ----------------------------------------------------------------------------- whole step


def test_total_is_sum_of_parts(l8, h100):
    for s in (FinetuneSetup(method="full", zero=3, dp=8), FinetuneSetup(method="qlora"),
              FinetuneSetup(method="full", precision="bf16", optimizer="paged-adamw-8bit"),
              FinetuneSetup(method="lora", gradient_checkpointing=False, seq_len=1024)):
        m = finetune_memory(l8, s, h100)
        assert m.weights + m.gradients + m.optimizer + m.activations + m.buffers == pytest.approx(m.allocated)
        assert m.allocated + m.fragmentation == pytest.approx(m.reserved)
        assert m.reserved + m.overhead + m.paged_optimizer == pytest.approx(m.total)
        assert m.allocated == pytest.approx(max(m.phases.values()))
        assert set(m.to_dict()) >= {"weights", "gradients", "optimizer", "activations", "buffers", "overhead",
                                    "allocated", "reserved", "total", "gpu_memory_bytes", "fits", "reason",
                                    "host_ram_bytes"}


def test_does_not_fit_is_a_result(h100):
    spec = catalog.load_model("llama-3.1-70b")
    m = finetune_memory(spec, FinetuneSetup(method="full"), h100)
    assert not m.fits and "GiB" in m.reason and "\n" not in m.reason
    assert finetune_memory(spec, FinetuneSetup(method="qlora", seq_len=2048), h100).fits


def test_zero3_per_gpu_never_grows_with_more_gpus(l8, h100):
    prev = None
    for dp in (2, 4, 8, 16, 32, 64, 128):
        m = finetune_memory(l8, FinetuneSetup(method="full", zero=3, dp=dp, seq_len=2048), h100)
        if prev is not None:
            assert m.total <= prev.total and m.allocated <= prev.allocated
        prev = m


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 8), s=st.sampled_from([256, 512, 1024, 2048, 4096]),
       method=st.sampled_from(["full", "lora", "qlora"]), ckpt=st.booleans(),
       kernel=st.sampled_from(["flash", "eager"]))
@pytest.mark.property
def test_memory_grows_with_batch_and_sequence(b, s, method, ckpt, kernel):
    spec = catalog.load_model("qwen3-8b")
    gpu = catalog.load_gpu("h100-80gb")

    def total(mb, sl):
        return finetune_memory(spec, FinetuneSetup(method=method, micro_batch=mb, seq_len=sl,
                                                   gradient_checkpointing=ckpt, attention_kernel=kernel), gpu)

    base = total(b, s)
    # the peak may be a gradient or optimizer moment that does not depend on tokens: never smaller
    assert total(b + 1, s).allocated >= base.allocated
    assert total(b, 2 * s).allocated >= base.allocated
    assert total(b + 1, s).activation_parts["layers"] > base.activation_parts["layers"]
    assert total(b, 2 * s).activation_parts["layers"] > base.activation_parts["layers"]
    assert base.total == pytest.approx(base.reserved + base.overhead + base.paged_optimizer)


def test_moe_and_mla_models_run(h100):
    for slug in ("deepseek-v3", "qwen3-30b-a3b", "gpt-oss-20b", "gemma-2-27b"):
        spec = catalog.load_model(slug)
        m = finetune_memory(spec, FinetuneSetup(method="lora", zero=3, dp=64, seq_len=2048), h100)
        assert m.allocated > 0 and m.activations > 0


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(lora_rank=0), "lora_rank"),
    (dict(lora_rank=-8), "lora_rank"),
    (dict(zero=4), "zero stage"),
    (dict(zero=-1), "zero stage"),
    (dict(micro_batch=0), "micro_batch"),
    (dict(seq_len=0), "seq_len"),
    (dict(offload="optimizer"), "ZeRO stage >= 1"),
    (dict(offload="optimizer+params", zero=2), "ZeRO stage 3"),
    (dict(method="full", qlora_quant="nf4"), "full fine-tuning cannot"),
    (dict(method="full", precision="nf4"), "method=qlora"),
    (dict(tp=0), "tp"), (dict(pp=0), "pp"), (dict(dp=-2), "dp"),
    (dict(method="sft"), "method"),
    (dict(optimizer="adam"), "optimizer"),
    (dict(precision="fp16"), "precision"),
    (dict(lora_dropout=1.0), "lora_dropout"),
    (dict(optimizer_in_backward=True, grad_accumulation=2), "grad_accumulation"),
])
def test_bad_setup_raises_one_line(kwargs, fragment):
    with pytest.raises(ScenarioError) as e:
        FinetuneSetup(**kwargs)
    assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(tp=3), "attention heads"),
    (dict(pp=64), "layers"),
    (dict(ep=2, dp=2), "no experts"),
    (dict(lora_targets="q_proj,wqkv"), "wqkv"),
])
def test_bad_layout_for_model(l8, h100, kwargs, fragment):
    with pytest.raises(ScenarioError) as e:
        finetune_memory(l8, FinetuneSetup(**kwargs), h100)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_qlora_quant_default_is_allowed_for_full():
    assert FinetuneSetup(method="full").qlora_quant == "nf4-dq"
    assert FinetuneSetup(method="qlora", qlora_quant="nf4").qlora_quant == "nf4"

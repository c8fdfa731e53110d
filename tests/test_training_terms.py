"""Whole-step memory terms (training/terms.py), framework profiles (training/frameworks.py), the
caching-allocator model and the memory ranges (training/ranges.py): hand-computed cases."""

from __future__ import annotations

import pytest

from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.choices import FRAMEWORKS
from llmsizing.errors import ScenarioError
from llmsizing.training import ranges, terms
from llmsizing.training.frameworks import PROFILES, framework_profile, resolve_terms
from llmsizing.training.memory import FinetuneSetup, finetune_memory, model_states, reserved_bytes

A0 = Assumptions()
L8 = catalog.load_model("llama-3.1-8b")   # h 4096, I 14336, V 128256, 32 layers, untied head
H, I, V, L = 4096, 14336, 128256, 32


# ----------------------------------------------------------------------------- pure terms


def test_optimizer_step_temporaries_by_implementation():
    assert terms.optimizer_step_temp_bytes("fused", 1e9, 1e8, 4) == 0
    assert terms.optimizer_step_temp_bytes("foreach", 1e9, 1e8, 4) == 4e9      # one fp32 sqrt per parameter
    assert terms.optimizer_step_temp_bytes("forloop", 1e9, 1e8, 2) == 4e8      # two bf16 temporaries of the largest


def test_built_gradients_exclude_first_layer_and_embedding():
    assert terms.backward_built_gradients_bytes(100.0, 10.0, 20.0) == 70.0
    assert terms.backward_built_gradients_bytes(10.0, 10.0, 20.0) == 0.0


def test_small_terms_hand_computed():
    assert terms.adapter_weight_bytes(41_943_040, 2) == 83_886_080             # Llama-3-8B r=16 all-linear, bf16
    assert terms.kbit_prep_extra_weight_bytes(1_050_939_392) == 2_101_878_784  # embed + head + norms to fp32
    assert terms.megatron_main_grad_bytes(7e9) == 28e9
    assert terms.zero3_offload_resident_bytes(525_336_576, A0) == 4 * 525_336_576
    assert terms.moe_select_backward_bytes(100.0, A0) == 200.0


def test_fused_linear_cross_entropy_chunk():
    # Liger: inc = ceil(V / h) = 32; chunk = next_pow2(ceil(8192 / 32)) = 256 rows
    b = terms.fused_linear_ce_bytes(V, H, 8192, 2)
    assert b == 256 * V * (2 + 4) + 8192 * H * 2
    assert b < 8192 * V * 2   # far below the bf16 logits alone


# ----------------------------------------------------------------------------- profiles


def test_every_framework_has_a_sourced_profile():
    assert set(PROFILES) == set(FRAMEWORKS)
    for name in FRAMEWORKS:
        p = framework_profile(name)
        assert p.sources and all(s.strip() for s in p.sources)
    with pytest.raises(ScenarioError, match="framework 'nemo' is not one of"):
        FinetuneSetup(framework="nemo")


def test_profile_resolution_and_overrides():
    t = resolve_terms(FinetuneSetup(method="qlora", precision="bf16", framework="hf-peft"))
    assert t.optimizer_impl == "foreach" and t.adapter_fp32 and t.kbit_prep and t.loss_impl == "eager"
    # 8-bit / paged optimizers are fused kernels whatever the stack; sharded QLoRA skips k-bit preparation
    assert resolve_terms(FinetuneSetup(optimizer="paged-adamw-8bit", framework="hf-peft")).optimizer_impl == "fused"
    fsdp = FinetuneSetup(method="qlora", framework="trl", zero=3, dp=2)
    assert not resolve_terms(fsdp).kbit_prep
    t = resolve_terms(FinetuneSetup(method="lora", framework="hf-peft", optimizer_impl="fused", adapter_dtype="working",
                                    loss_impl="fused-linear"))
    assert (t.optimizer_impl, t.adapter_fp32, t.loss_impl) == ("fused", False, "fused-linear")
    assert resolve_terms(FinetuneSetup(method="qlora", framework="litgpt")).bnb_saves_input
    # axolotl casts norms, embedding and head back to bf16 for flash attention
    assert resolve_terms(FinetuneSetup(method="qlora", framework="axolotl", attention_kernel="sdpa")).kbit_prep
    assert not resolve_terms(FinetuneSetup(method="qlora", framework="axolotl", attention_kernel="flash")).kbit_prep
    # a setup that states its loss keeps it; None takes the framework's
    assert resolve_terms(FinetuneSetup(framework="torchtune", chunked_cross_entropy=False)).loss_impl == "eager"
    assert resolve_terms(FinetuneSetup(framework="torchtune")).loss_impl == "chunked"
    assert resolve_terms(FinetuneSetup(method="full", framework="megatron")).main_grad_fp32


def test_foreach_adamw_adds_one_state_copy_at_the_step():
    gpu = catalog.load_gpu("h100-80gb")
    kw = dict(method="full", precision="bf16", seq_len=512, gradient_checkpointing=True)
    fused = finetune_memory(L8, FinetuneSetup(optimizer_impl="fused", **kw), gpu)
    foreach = finetune_memory(L8, FinetuneSetup(optimizer_impl="foreach", **kw), gpu)
    params = 8_030_261_248
    assert foreach.phases["optimizer_step"] - fused.phases["optimizer_step"] == pytest.approx(2 * params)


def test_megatron_keeps_fp32_main_grads_all_step():
    s = FinetuneSetup(method="full", precision="mixed-bf16", framework="megatron", tp=4, sequence_parallel=True)
    ms = model_states(L8, s, 0, A0)
    assert ms.grads_persistent == pytest.approx(4 * ms.grads_full / 2)   # fp32 buffer of the local bf16 grads
    assert ms.grads_transient == 0


def test_kbit_preparation_weights():
    a = model_states(L8, FinetuneSetup(method="qlora", kbit_prep=False), 0, A0)
    b = model_states(L8, FinetuneSetup(method="qlora", kbit_prep=True), 0, A0)
    not_quantized = 2 * V * H + (2 * L + 1) * H
    assert b.weights - a.weights == pytest.approx(2 * not_quantized)


def test_fp32_adapters_in_a_bf16_model():
    work = FinetuneSetup(method="lora", precision="bf16", adapter_dtype="working")
    fp32 = FinetuneSetup(method="lora", precision="bf16", adapter_dtype="fp32")
    a, b = model_states(L8, work, 0, A0), model_states(L8, fp32, 0, A0)
    p = 41_943_040 * 1.0   # r = 16, all-linear
    assert b.weights - a.weights == pytest.approx(2 * p)          # 4 B instead of 2 B
    assert b.grads_full - a.grads_full == pytest.approx(2 * p)
    assert b.optimizer - a.optimizer == pytest.approx(4 * p)      # moments 8 B instead of 4 B


# ----------------------------------------------------------------------------- allocator and ranges


def test_reserved_is_allocated_plus_fragmentation_plus_one_segment():
    assert reserved_bytes(1e9, A0) == pytest.approx(1e9 * 1.05 + 20 * 2**20)
    exp = Assumptions({"allocator_expandable_segments": True})
    assert reserved_bytes(1e9, exp) == pytest.approx(1e9 * 1.02 + 20 * 2**20)


def test_range_from_class_residuals_and_fallbacks():
    table = {"lora/hf-peft": [0.95, 1.0, 1.2], "lora/litgpt": [1.3], "qlora/torchtune": [1.5]}
    r = ranges.memory_range(10.0, "lora", "hf-peft", 11.0, A0, table)
    assert (r.low, r.high, r.basis, r.n) == (pytest.approx(9.5), pytest.approx(12.0), "lora/hf-peft", 3)
    assert r.tight   # 9.5 <= 11 < 12
    r = ranges.memory_range(10.0, "lora", "litgpt", 100.0, A0, table)   # 1 case: the method's pool
    assert r.basis == "lora/*" and r.high == pytest.approx(13.0) and not r.tight
    r = ranges.memory_range(10.0, "full", "fsdp", 100.0, A0, table)     # nothing: every case
    assert r.basis == "*" and r.high == pytest.approx(15.0)
    r = ranges.memory_range(10.0, "qlora", "x", 100.0, A0, {"qlora/x": [1.0, 1.0, 1.0]})
    assert (r.low, r.high) == (pytest.approx(9.5), pytest.approx(10.5))   # the floor


def test_stored_residuals_are_current():
    """training/memory_residuals.yaml matches the model (regenerate: python -m llmsizing.validation.residuals --update)."""
    from llmsizing.validation.residuals import current_table

    assert current_table() == ranges.residuals()

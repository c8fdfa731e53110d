"""Whole-step peak memory of one training step (forward, loss, backward, AdamW step) on CPU.

``wholestep.measure_whole_step`` counts every live tensor storage through a steady-state step of
the tiny configs (pure bf16, LoRA r = 8 with bf16 adapters, fused AdamW, micro-batch 2 × 64 tokens,
QLoRA through the bitsandbytes emulation so that the numbers do not depend on bitsandbytes being
installed) and records the peak, its phase and the live bytes by category. These tests

- record the measurement for every family × method × checkpointing × attention case;
- compare it with ``finetune_memory(...).allocated`` within 5% (``xfail(strict=True)`` with the
  measured numbers where the estimator is off: they flip when the model is fixed);
- pin each term the estimator misses to its formula (the spec in /work/data/wholestep_findings.md).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="ground truth needs the test extra (torch==2.13.0 CPU)")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from .wholestep import CATEGORIES, PHASES, bitsandbytes_available  # noqa: E402
from .wholestep_report import CASES, case_setup, config, error, estimate, measure  # noqa: E402

pytestmark = [pytest.mark.groundtruth, pytest.mark.timeout(300), pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

TOLERANCE = 0.05

# Where the estimator is still off by more than 5% (measured with this harness; strict: they fail once fixed).
# All are over-estimates (the safe side), all with eager attention.
XFAIL_PEAK: dict[tuple, str] = {
    ('tiny-llama', 'qlora', True, 'eager'): (
        "measured 1,720,768 B (backward_layers), estimate 1,824,072 B "
        "(layer_backward), +6.0%: over-estimate of the checkpointed layer's backward with eager attention: the estimate adds the eager attention buffers or the whole recomputed layer where autograd has already freed part of it"),
    ('tiny-qwen2', 'qlora', True, 'eager'): (
        "measured 1,721,792 B (backward_layers), estimate 1,825,096 B "
        "(layer_backward), +6.0%: over-estimate of the checkpointed layer's backward with eager attention: the estimate adds the eager attention buffers or the whole recomputed layer where autograd has already freed part of it"),
    ('tiny-qwen3-moe', 'lora', True, 'eager'): (
        "measured 2,428,616 B (backward_layers), estimate 2,578,432 B "
        "(layer_backward), +6.2%: over-estimate of the checkpointed layer's backward with eager attention: the estimate adds the eager attention buffers or the whole recomputed layer where autograd has already freed part of it"),
    ('tiny-qwen3-moe', 'qlora', True, 'eager'): (
        "measured 2,291,208 B (backward_layers), estimate 2,465,304 B "
        "(layer_backward), +7.6%: over-estimate of the checkpointed layer's backward with eager attention: the estimate adds the eager attention buffers or the whole recomputed layer where autograd has already freed part of it"),
    ('tiny-deepseek-v3', 'full', False, 'eager'): (
        "measured 6,626,248 B (backward_layers), estimate 7,171,472 B "
        "(layer_backward), +8.2%: over-estimate: without checkpointing the first layer's backward is sized with the average layer's saved tensors (DeepSeek's layer 0 is dense and smaller) plus eager attention buffers"),
    ('tiny-deepseek-v3', 'lora', True, 'eager'): (
        "measured 2,469,192 B (backward_layers), estimate 2,713,232 B "
        "(layer_backward), +9.9%: over-estimate of the checkpointed layer's backward with eager attention: the estimate adds the eager attention buffers or the whole recomputed layer where autograd has already freed part of it"),
    ('tiny-deepseek-v3', 'qlora', True, 'eager'): (
        "measured 2,175,900 B (backward_layers), estimate 2,414,028 B "
        "(layer_backward), +10.9%: over-estimate of the checkpointed layer's backward with eager attention: the estimate adds the eager attention buffers or the whole recomputed layer where autograd has already freed part of it"),
}


def _id(c) -> str:
    return "-".join([c[0], c[1], "ckpt" if c[2] else "nockpt", c[3]])


def _params(cases, xfails=None):
    out = []
    for c in cases:
        marks = [pytest.mark.xfail(strict=True, reason=xfails[c])] if xfails and c in xfails else []
        out.append(pytest.param(c, id=_id(c), marks=marks))
    return out


# ----------------------------------------------------------------------------- the measurement


@pytest.mark.parametrize("case", _params(CASES))
def test_whole_step_is_recorded(case):
    family, method, ckpt, attention = case
    r = measure(family, case_setup(*case))
    assert r.loss == r.loss and 0 < r.loss < 20
    assert r.peak_phase in PHASES
    assert set(r.breakdown) == set(CATEGORIES)
    assert sum(r.breakdown.values()) == r.peak_bytes
    assert max(r.phase_peaks.values()) == r.peak_bytes
    # what lives through the step: weights, AdamW states and the input ids, all counted in the peak
    assert r.breakdown["weights"] + r.breakdown["optimizer_state"] + r.breakdown["inputs"] == r.baseline_bytes
    assert r.peak_bytes > r.baseline_bytes
    if method == "qlora":
        assert r.qlora_backend == "emulated" and r.quantized_modules > 0


@pytest.mark.parametrize("case", _params(CASES, XFAIL_PEAK))
def test_estimated_peak_within_5pct(case):
    family = case[0]
    s = case_setup(*case)
    r, e = measure(family, s), estimate(family, s)
    err = error(r.peak_bytes, e.allocated)
    assert abs(err) <= TOLERANCE, (
        f"measured {r.peak_bytes:,} B in {r.peak_phase}, estimate {e.allocated:,.0f} B ({e.phase}) {err:+.1%}\n"
        + r.summary(15) + f"\nestimate phases {e.phases}")


def test_tracker_counts_a_known_allocation_pattern():
    """A hand-countable step: y = x·Wᵀ, loss = y.sum(); the tracker's peak is the sum of what lives."""
    import weakref  # noqa: F401

    from .wholestep import LiveTracker, _make_mode

    w = torch.zeros(64, 32, requires_grad=True)         # 8,192 B
    x = torch.ones(16, 32)                               # 2,048 B
    tracker = LiveTracker()
    tracker.track(w, "parameter", "weights")
    tracker.track(x, "input", "inputs")
    tracker.phase = "forward"
    with _make_mode(tracker):
        y = x @ w.t()                                    # 16×64 fp32 = 4,096 B
        loss = y.sum()                                   # 4 B
        del y
        tracker.phase = "backward_head"
        loss.backward()                                  # grad of y (expand: a view), grad of W 8,192 B
    assert tracker.peak == 8192 + 2048 + 4096 + 4 or tracker.peak == 8192 + 2048 + 4 + 8192 + 4
    assert w.grad is not None
    del loss
    assert tracker.total == 8192 + 2048 + 8192             # W, x, W.grad


# ----------------------------------------------------------------------------- QLoRA backend


@pytest.mark.skipif(not bitsandbytes_available(), reason="bitsandbytes is not installed (the emulation is used)")
@pytest.mark.parametrize("family", ["tiny-llama", "tiny-qwen2", "tiny-qwen3-moe"])
@pytest.mark.parametrize("ckpt", [False, True])
def test_emulation_allocates_what_bitsandbytes_allocates(family, ckpt):
    """bitsandbytes 0.50 CPU backend against the emulation: byte-identical peaks and phases (DeepSeek's
    routing depends on the dequantized values, which the emulation reproduces only approximately)."""
    s = case_setup(family, "qlora", ckpt, "sdpa")
    real = measure(family, dict(s, qlora_backend="bnb"))
    emu = measure(family, s)
    assert real.qlora_backend == "bnb"
    assert real.baseline_bytes == emu.baseline_bytes
    assert real.phase_peaks == emu.phase_peaks
    assert abs(real.loss - emu.loss) < 1e-3


def test_qlora_dequantizes_in_forward_and_backward():
    """Each Linear4bit materialises its bf16 weight (2·n B) and fp32 absmax (4·n/64 B, twice in the
    forward: dequantize_blockwise and + offset) for its matmul, one module at a time; at the step's
    peak (the loss) none is alive, so the estimator's dequant buffer in every phase is an over-count."""
    family = "tiny-llama"
    r = measure(family, case_setup(family, "qlora", False, "sdpa"))
    cfg = config(family)
    n = cfg["hidden_size"] * cfg["intermediate_size"]          # the largest quantized weight
    assert r.extra["max_live_by_category"]["dequantized_weight"] == 2 * n + 2 * 4 * (n // 64)
    assert r.breakdown["dequantized_weight"] == 0


# ----------------------------------------------------------------------------- missing terms


def _param_bytes(family, pred):
    from .harness import build_model

    m = build_model(config(family), precision="bf16")
    return sum(p.numel() * p.element_size() for n, p in m.named_parameters() if pred(n))


def test_loss_peak_is_three_fp32_vocab_tensors():
    """The peak of a dense LoRA step: saved fp32 log-softmax + nll_loss_backward's gradient +
    log_softmax_backward's output, 3 × 4·V per token (the estimator's 12·V, modelled)."""
    family = "tiny-llama"
    s = case_setup(family, "lora", False, "sdpa")
    r = measure(family, s)
    T, V = s["micro_batch"] * s["seq_len"], config(family)["vocab_size"]
    vocab = [t for t in r.top if t["shape"] == (T, V) and t["dtype"] == "float32"]
    assert r.peak_op == "aten._log_softmax_backward_data" and len(vocab) == 3
    assert sum(t["bytes"] for t in vocab) == 12 * V * T


def test_full_ft_gradients_accumulate_during_layer_backward():
    """Full fine-tuning with checkpointing peaks in layer 0's backward with the gradients of every later
    layer, the final norm and lm_head alive: Σ_{i≥1} G_i + G_norm + G_head + part of G_0."""
    family = "tiny-llama"
    s = case_setup(family, "full", True, "sdpa")
    r = measure(family, s)
    e = estimate(family, s)
    assert r.peak_phase == "backward_layers"
    total = _param_bytes(family, lambda n: True)
    embed = _param_bytes(family, lambda n: "embed_tokens" in n)
    layer0 = _param_bytes(family, lambda n: ".layers.0." in n)
    g = r.breakdown["gradients"]
    assert total - embed - layer0 <= g <= total - embed
    assert e.phase == "layer_backward"
    assert e.gradients == total - embed - layer0   # terms.backward_built_gradients_bytes


def test_lora_adapter_weights_are_counted():
    family = "tiny-llama"
    s = case_setup(family, "lora", True, "sdpa")
    r, e = measure(family, s), estimate(family, s)
    assert r.breakdown["weights"] - e.weights == 64  # the fp32 rotary buffer only


def test_lora_adapter_weights_term():
    """terms.adapter_weight_bytes: 2 B per adapter parameter in pure bf16 (the estimate with and without)."""
    from llmsizing.training.terms import adapter_weight_bytes

    family = "tiny-llama"
    s = case_setup(family, "lora", True, "sdpa")
    r = measure(family, s)
    assert r.breakdown["weights"] - 64 - adapter_weight_bytes(r.trainable_params, 2) == \
        measure(family, case_setup(family, "full", True, "sdpa")).breakdown["weights"] - 64


def test_foreach_adamw_allocates_exp_avg_sq_sqrt_for_every_parameter():
    """torch.optim.AdamW(foreach=True), the CUDA default: _multi_tensor_adam's
    exp_avg_sq_sqrt = torch._foreach_sqrt(exp_avg_sqs): one state-dtype tensor per parameter, all at once."""
    family = "tiny-llama"
    s = case_setup(family, "full", True, "sdpa", optimizer_impl="foreach")
    r = measure(family, s)
    params = _param_bytes(family, lambda n: True)
    assert r.phase_breakdowns["optimizer"]["optimizer_transient"] == params  # bf16 states: 2 B/param
    assert r.peak_phase == "optimizer"
    fused = measure(family, case_setup(family, "full", True, "sdpa"))
    assert "optimizer" not in fused.phase_peaks  # fused AdamW allocates nothing


def test_single_tensor_adamw_allocates_two_temporaries_of_one_parameter():
    family = "tiny-llama"
    r = measure(family, case_setup(family, "full", True, "sdpa", optimizer_impl="forloop"))
    largest = _param_bytes(family, lambda n: "embed_tokens" in n)
    assert 2 * largest <= r.phase_breakdowns["optimizer"]["optimizer_transient"] <= 2 * largest + 1024


def test_moe_qlora_fused_experts_stay_bf16():
    """transformers 5 quantizes only nn.Linear modules (quantizer_bnb_4bit.param_needs_quantization):
    fused 3-D expert tensors keep 2 B/param where the estimator counts NF4 (0.5159 B/param)."""
    family = "tiny-qwen3-moe"
    s = case_setup(family, "qlora", True, "sdpa")
    r, e = measure(family, s), estimate(family, s)
    experts = _param_bytes(family, lambda n: ".experts." in n)
    assert experts > 0
    assert abs(r.breakdown["weights"] - e.weights) < 10_000   # quant-state codes, buffers


def test_moe_eager_experts_select_backward_copies():
    """Full fine-tuning through transformers' eager experts loop: SelectBackward0 of gate_up_proj[e]
    allocates a zero-filled (E, 2I, h) gradient per expert visit and adds it to the accumulated one."""
    family = "tiny-qwen3-moe"
    r = measure(family, case_setup(family, "full", True, "sdpa"))
    cfg = config(family)
    full = cfg["num_experts"] * 2 * cfg["moe_intermediate_size"] * cfg["hidden_size"] * 2
    big = [t for t in r.top if t["bytes"] == full and t["category"] in ("backward_transient", "gradients")]
    assert len(big) >= 3


def test_peft_fp32_adapters_in_a_bf16_model():
    family = "tiny-llama"
    s = case_setup(family, "lora", False, "sdpa", adapter_dtype="fp32")
    r, e = measure(family, s), estimate(family, s)
    assert abs(error(r.peak_bytes, e.allocated)) <= TOLERANCE


def test_peft_fp32_adapters_saved_copies_term():
    """Per layer and token: Σ_adapted 4·in + 4·r·(modules) replaces the shared bf16 inputs that only the
    adapters saved (attention-norm output 2h, MLP-norm output 2h, down_proj input 2I) and 2·r per module."""
    family = "tiny-llama"
    cfg = config(family)
    h, inter, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    s = case_setup(family, "lora", False, "sdpa")
    T, r_ = s["micro_batch"] * s["seq_len"], s["lora_rank"]
    bf16 = measure(family, s)
    fp32 = measure(family, dict(s, adapter_dtype="fp32"))
    ins = 4 * h + 2 * h + inter                   # q, k, v, o; gate, up; down
    per_token = 4 * ins + 7 * 4 * r_ - (2 * h + 2 * h + 2 * inter + 7 * 2 * r_)
    assert fp32.breakdown["saved_activations"] - bf16.breakdown["saved_activations"] == per_token * T * L


@pytest.mark.xfail(strict=True, reason="peft.prepare_model_for_kbit_training: the fp32 weights (+2 B/param) and "
                   "fp32 checkpointed inputs are modelled (frameworks.kbit_prep), but the fp32 residual stream also "
                   "makes every bf16 adapter cast its own input copy and the head run in fp32: still -16% "
                   "(measured 2,373,312 B with checkpointing)")
def test_qlora_with_kbit_preparation():
    family = "tiny-llama"
    s = case_setup(family, "qlora", True, "sdpa", kbit_prep=True)
    r, e = measure(family, s), estimate(family, s)
    assert abs(error(r.peak_bytes, e.allocated)) <= TOLERANCE


def test_kbit_preparation_terms():
    family = "tiny-llama"
    s = case_setup(family, "qlora", True, "sdpa")
    base, prep = measure(family, s), measure(family, dict(s, kbit_prep=True))
    not_quantized = _param_bytes(family, lambda n: "embed_tokens" in n or "lm_head" in n or "norm" in n)
    assert prep.breakdown["weights"] - base.breakdown["weights"] == not_quantized   # bf16 -> fp32: +2 B/param
    cfg = config(family)
    T = s["micro_batch"] * s["seq_len"]
    layer_inputs = cfg["num_hidden_layers"] * T * cfg["hidden_size"]
    assert prep.breakdown["checkpoint_inputs"] - base.breakdown["checkpoint_inputs"] >= 2 * layer_inputs

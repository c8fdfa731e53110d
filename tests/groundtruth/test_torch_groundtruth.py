"""Ground truth for the fine-tuning memory model: real training steps of tiny models on CPU.

Each case builds a small random-weight model with transformers (Llama, Qwen2, Qwen3-MoE,
DeepSeek-V3 with MLA; 2 layers, hidden 128, vocabulary 512, configs in ``configs/``), runs one
training step with ``harness.measure_training_step`` and compares with ``llmsizing.training``:

- model states exactly: trainable parameters, gradient bytes, AdamW state bytes;
- the bytes autograd saves for backward (end of the forward pass) within 10%: estimate =
  ``activation_bytes`` layers + lora (checkpointed inputs with gradient checkpointing) + the head's
  saved tensors + the saved fp32 log-softmax of the loss (4·V bytes per token);
- with gradient checkpointing, one decoder layer's saved tensors (what its replay holds during
  backward) within 10% of ``layer_saved_tensors``.

Setting: pure bf16 (torchtune-style: weights, gradients and AdamW states in bf16, LoRA adapters in
bf16), micro-batch 2 × 64 tokens, LoRA r = 8. Attention: ``sdpa`` is transformers' SDPA path,
whose CPU kernel is PyTorch's flash-attention kernel (saves q, k, v, output, log-sum-exp as
FlashAttention-2 does; the path adds a contiguous transposed copy of the output for o_proj);
``eager`` materialises the s×s probabilities. (The harness runs ``flash`` setups through SDPA
too, so the comparison uses the setup it really ran: ``sdpa``.) MoE experts
run transformers' ``eager`` experts loop (see configs/tiny-qwen3-moe.json).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="ground truth needs the test extra (torch==2.13.0 CPU)")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from llmsizing.training.activations import FP32_BYTES, head_saved_bytes_per_token, layer_saved_tensors
from llmsizing.assumptions import Assumptions
from llmsizing.specs import model_spec_from_config
from llmsizing.training.memory import FinetuneSetup, activation_bytes, model_states, trainable_params

from .harness import measure_training_step, summarize_records  # noqa: E402

pytestmark = [pytest.mark.groundtruth, pytest.mark.timeout(300), pytest.mark.filterwarnings("ignore::FutureWarning")]

CONFIG_DIR = Path(__file__).parent / "configs"
FAMILIES = ("tiny-llama", "tiny-qwen2", "tiny-qwen3-moe", "tiny-deepseek-v3")
# PEFT's "all-linear" on transformers 5 MoE models adapts the router and the fused 3-D expert
# tensors in its own layout; "attention" is the selection both sides count the same way.
LORA_TARGETS = {"tiny-llama": "all-linear", "tiny-qwen2": "all-linear", "tiny-qwen3-moe": "attention",
                "tiny-deepseek-v3": "attention"}
BASE = dict(precision="bf16", seq_len=64, micro_batch=2, lora_rank=8, lora_alpha=16, attention_kernel="sdpa")
TOLERANCE = 0.10


def config(family: str) -> dict:
    return json.loads((CONFIG_DIR / f"{family}.json").read_text())


def spec_of(family: str):
    return model_spec_from_config(config(family), slug=family, where=str(CONFIG_DIR / f"{family}.json"))


@lru_cache(maxsize=None)
def _measure(family: str, items: tuple) -> dict:
    return measure_training_step(config(family), dict(items))


def measure(family: str, **setup) -> dict:
    return _measure(family, tuple(sorted(setup.items())))


def case_setup(family: str, method: str, ckpt: bool, **extra) -> dict:
    s = dict(BASE, method=method, gradient_checkpointing=ckpt, **extra)
    if method == "lora":
        s.setdefault("lora_targets", LORA_TARGETS[family])
    return s


def estimate_saved(spec, setup: FinetuneSetup, a: Assumptions) -> dict[str, float]:
    """Bytes saved for backward at the end of the forward pass, by the memory model's parts."""
    act = activation_bytes(spec, setup, a)
    T = setup.tokens_per_gpu
    head = head_saved_bytes_per_token(spec, setup, a) * T
    log_softmax = FP32_BYTES * spec.vocab_size / setup.tp * T
    parts = {"layers": act["layers"], "lora": act["lora"], "head": head, "loss": log_softmax}
    parts["total"] = sum(parts.values())
    return parts


def estimate_layer_saved(spec, setup: FinetuneSetup, layer: int, a: Assumptions) -> float:
    T = setup.tokens_per_gpu
    return sum(it.bytes_per_token for it in layer_saved_tensors(spec, setup, layer, a)) * T


def _err(measured: float, estimate: float) -> float:
    return (estimate - measured) / measured


# ----------------------------------------------------------------------------- cases

CASES = [(f, m, c) for f in FAMILIES for m in ("full", "lora") for c in (False, True)]

# Known gaps of the memory model, measured (bytes) — strict: they fail loudly once fixed.
XFAIL_ACTIVATIONS: dict[tuple, str] = {}
XFAIL_RECOMPUTE: dict[tuple, str] = {}


def _params(cases, xfails):
    out = []
    for c in cases:
        marks = [pytest.mark.xfail(strict=True, reason=xfails[c])] if c in xfails else []
        out.append(pytest.param(*c, id="-".join([c[0], c[1], "ckpt" if c[2] else "nockpt"]), marks=marks))
    return out


@pytest.mark.parametrize("family,method,ckpt", _params(CASES, {}))
def test_model_states_exact(family, method, ckpt):
    s = case_setup(family, method, ckpt)
    r = measure(family, **s)
    spec, setup, a = spec_of(family), FinetuneSetup(**s), Assumptions()
    st = model_states(spec, setup, 0, a)
    assert r["loss_is_finite"]
    assert r["trainable_params"] == trainable_params(spec, setup)
    assert r["gradient_bytes"] == st.grads_full
    assert r["optimizer_bytes"] == st.optimizer


@pytest.mark.parametrize("family,method,ckpt", _params(CASES, XFAIL_ACTIVATIONS))
def test_saved_activations_within_10pct(family, method, ckpt):
    s = case_setup(family, method, ckpt)
    r = measure(family, **s)
    spec, setup, a = spec_of(family), FinetuneSetup(**s), Assumptions()
    est = estimate_saved(spec, setup, a)
    err = _err(r["saved_bytes"], est["total"])
    assert abs(err) <= TOLERANCE, (
        f"saved bytes: measured {r['saved_bytes']:,} {r['saved_by_part']}, estimate {est['total']:,.0f} "
        f"{ {k: round(v) for k, v in est.items()} } ({err:+.1%})\n" + summarize_records(r["saved_records"], 40))


@pytest.mark.parametrize("family,method", [
    pytest.param(f, m, id=f"{f}-{m}", marks=[pytest.mark.xfail(strict=True, reason=XFAIL_RECOMPUTE[(f, m)])]
                 if (f, m) in XFAIL_RECOMPUTE else [])
    for f in FAMILIES for m in ("full", "lora")])
def test_recomputed_layer_within_10pct(family, method):
    """With checkpointing, each layer's replay holds that layer's saved tensors during its backward."""
    s = case_setup(family, method, True)
    r = measure(family, **s)
    spec, setup, a = spec_of(family), FinetuneSetup(**s), Assumptions()
    for i, measured in enumerate(r["layer_saved_bytes"]):
        est = estimate_layer_saved(spec, setup, i, a)
        err = _err(measured, est)
        assert abs(err) <= TOLERANCE, f"layer {i}: measured {measured:,}, estimate {est:,.0f} ({err:+.1%})"


# ----------------------------------------------------------------------------- variants


def test_eager_attention_saves_the_score_matrix():
    """Eager attention keeps the fp32 softmax and its bf16 copy: n_h·s² · 6 bytes per sequence per layer."""
    family = "tiny-llama"
    s = case_setup(family, "full", False, attention_kernel="eager")
    r = measure(family, **s)
    flash = measure(family, **case_setup(family, "full", False))
    spec = spec_of(family)
    extra = r["saved_bytes"] - flash["saved_bytes"]
    scores = spec.num_layers * s["micro_batch"] * spec.num_heads * s["seq_len"] ** 2 * (4 + 2)
    assert extra >= scores
    est = estimate_saved(spec, FinetuneSetup(**s), Assumptions())["total"]
    assert abs(_err(r["saved_bytes"], est)) <= TOLERANCE


def test_fp32_full_fine_tuning_states_and_activations():
    family = "tiny-llama"
    s = case_setup(family, "full", False, precision="fp32")
    r = measure(family, **s)
    spec, setup, a = spec_of(family), FinetuneSetup(**s), Assumptions()
    st = model_states(spec, setup, 0, a)
    assert r["gradient_bytes"] == st.grads_full == 4 * r["trainable_params"]
    assert r["optimizer_bytes"] == st.optimizer == 8 * r["trainable_params"]
    est = estimate_saved(spec, setup, a)["total"]
    assert abs(_err(r["saved_bytes"], est)) <= TOLERANCE


def test_checkpointing_keeps_one_hidden_state_per_layer():
    """The checkpoint keeps each layer's input (b·s·h bf16), plus the shared rotary cos/sin (2·s·d bf16)
    and position ids (s int64) that every layer's replay needs."""
    family = "tiny-llama"
    s = case_setup(family, "full", True)
    r = measure(family, **s)
    spec = spec_of(family)
    hidden = spec.num_layers * s["micro_batch"] * s["seq_len"] * spec.hidden_size * 2
    shared = 2 * s["seq_len"] * spec.head_dim * 2 + s["seq_len"] * 8
    assert r["saved_by_part"]["checkpoint_inputs"] == hidden + shared


_PEFT_MOE = ("transformers 5.24 stores routed experts as fused 3-D tensors and PEFT 0.21 'all-linear' adapts them "
             "through ParamWrapper (gate_up_proj: lora_A (128,128) + lora_B (128,128) = 32,768 per "
             "layer; down_proj: lora_A (64,64) + lora_B (128,64) = 12,288) and also adapts the router mlp.gate "
             "(r·(h+E) = 1,088 per layer); lora.py counts E per-expert adapters r·(in+out) on gate/up/down "
             "(36,864 per layer) and no router. ")


@pytest.mark.parametrize("family", [
    pytest.param("tiny-qwen3-moe", marks=pytest.mark.xfail(strict=True, reason=_PEFT_MOE + (
        "Measured 106,624 trainable (attention 14,336 + router 2,176 + experts 90,112), lora.py 88,064."))),
    pytest.param("tiny-deepseek-v3", marks=pytest.mark.xfail(strict=True, reason=_PEFT_MOE + (
        "PEFT also leaves DeepSeek-V3's dense MLP (layer 0) and shared experts unadapted. Measured 66,880 "
        "(attention 20,736 + router 1,088 + experts 45,056), lora.py 71,424 (attention 20,736 + dense MLP 9,216 "
        "+ shared experts 4,608 + routed experts 36,864)."))),
])
def test_moe_all_linear_lora_trainable_params(family):
    s = case_setup(family, "lora", False, lora_targets="all-linear")
    r = measure(family, **s)
    assert r["trainable_params"] == trainable_params(spec_of(family), FinetuneSetup(**s))

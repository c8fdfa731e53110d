"""CPU ground truth: tiny random-weight versions of every catalog family, measured, as validation rows.

``groundtruth_rows(measure)`` builds a tiny config per architecture family (the family's catalog
config with its sizes shrunk, every structural feature kept: GQA, qkv bias, q/k norms, sliding
layers, MoE routing with shared experts and dense-first layers, MLA, attention sinks, MPT's fused
QKV), runs ``measure(config_dict, setup_kwargs)`` — ``tests/groundtruth/harness.py``'s
``measure_training_step``, one real forward/backward/AdamW step with torch + transformers + peft on
CPU — and turns each measured quantity into a row of category ``cpu-ground-truth``: trainable
parameters, gradient bytes, AdamW state bytes and the bytes autograd saves for the backward pass
(at the end of the forward pass, loss included).

This module never imports torch; the caller passes the measuring function. Setups are pure bf16
(torchtune style: weights, gradients and AdamW moments in bf16), micro-batch 2 × 64 tokens.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping, Sequence

from llmsizing.assumptions import Assumptions
from llmsizing.catalog import model_entries, read_yaml_file
from llmsizing.specs import model_spec_from_config
from llmsizing.training.memory import activation_bytes, model_states, trainable_params
from llmsizing.validation.others_calculators import (
    GpuPoorConfig,
    LlmAnalysisModel,
    gpu_poor_activation_bytes,
    llm_analysis_activation_bytes,
)
from llmsizing.validation.cases import Case
from llmsizing.validation.run import OURS, Row, _score, finetune_setup

# family -> (catalog slug whose config is shrunk, overrides)
_SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              vocab_size=512, max_position_embeddings=256)
TINY: dict[str, tuple[str | None, dict[str, Any]]] = {
    "llama": ("llama-3.1-8b", dict(_SMALL, rope_scaling=None)),
    "mistral": ("mistral-7b-v0.3", dict(_SMALL, sliding_window=32)),
    "mixtral": ("mixtral-8x7b", dict(_SMALL, num_local_experts=4, num_experts_per_tok=2)),
    "qwen2": ("qwen2.5-72b", dict(_SMALL, use_sliding_window=False)),
    "qwen3": ("qwen3-8b", dict(_SMALL, head_dim=16)),
    "qwen3_moe": ("qwen3-30b-a3b", dict(_SMALL, head_dim=16, num_experts=4, num_experts_per_tok=2,
                                        moe_intermediate_size=64, max_window_layers=2)),
    "gemma2": ("gemma-2-27b", dict(_SMALL, head_dim=16, sliding_window=32, query_pre_attn_scalar=16)),
    "deepseek_v3": ("deepseek-v3", dict(_SMALL, num_key_value_heads=4, q_lora_rank=48, kv_lora_rank=32,
                                        qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, n_routed_experts=4,
                                        n_shared_experts=1, num_experts_per_tok=2, moe_intermediate_size=64,
                                        first_k_dense_replace=1, n_group=1, topk_group=1, num_nextn_predict_layers=0,
                                        rope_scaling=None, quantization_config=None)),
    "gpt_oss": ("gpt-oss-20b", dict(_SMALL, head_dim=16, num_local_experts=4, num_experts_per_tok=2, sliding_window=32,
                                    layer_types=["sliding_attention", "full_attention"], rope_scaling=None,
                                    quantization_config=None)),
    "mpt": (None, dict(model_type="mpt", d_model=64, n_heads=4, n_layers=2, expansion_ratio=4, max_seq_len=256,
                       vocab_size=512, no_bias=True, attn_config={"alibi": True})),
}
FAMILIES = tuple(TINY)

SETUPS: dict[str, dict[str, Any]] = {
    "full": dict(method="full", precision="bf16", optimizer="adamw", seq_len=64, micro_batch=2,
                 gradient_checkpointing=False, attention_kernel="flash"),
    "lora-ckpt": dict(method="lora", precision="bf16", optimizer="adamw", seq_len=64, micro_batch=2,
                      gradient_checkpointing=True, attention_kernel="flash", lora_rank=8, lora_alpha=16,
                      lora_targets="all-linear"),
}
QUANTITIES = {  # quantity -> unit
    "trainable_params": "params",
    "gradient_bytes": "bytes",
    "optimizer_bytes": "bytes",
    "layer_activation_bytes": "bytes",
}
# transformers has no SDPA path for these families' attention (sinks, soft-capping, ALiBi): eager there.
EAGER_FAMILIES = ("gemma2", "gpt_oss", "mpt")


def measured_value(measured: Mapping[str, Any], quantity: str) -> float:
    """A harness result's value of ``quantity``.

    ``layer_activation_bytes`` is what the decoder layers keep for the backward pass at the end of
    the forward pass: saved tensors inside the layers and LoRA adapters, or the checkpointed layer
    inputs with gradient checkpointing. The head and loss are left out: the estimator reports their
    transient peak (upcast logits, softmax), which is not a saved-tensor count.
    """
    if quantity == "layer_activation_bytes":
        parts = measured["saved_by_part"]
        return float(parts.get("layers", 0) + parts.get("lora", 0) + parts.get("checkpoint_inputs", 0))
    return float(measured[quantity])


def family_setup(family: str, setup: Mapping[str, Any]) -> dict[str, Any]:
    """The setup for one family (eager attention where transformers has no SDPA kernel)."""
    out = dict(setup)
    if family in EAGER_FAMILIES:
        out["attention_kernel"] = "eager"
    return out


def tiny_config(family: str) -> dict[str, Any]:
    """A Hugging Face config dict of a two-layer model of ``family`` (see ``TINY``)."""
    slug, over = TINY[family]
    cfg = _catalog_config(slug) if slug else {}
    for k, v in over.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = copy.deepcopy(v)
    if family == "mpt":
        cfg["architectures"] = ["MptForCausalLM"]
    return cfg


def _catalog_config(slug: str) -> dict[str, Any]:
    return copy.deepcopy(dict(read_yaml_file(model_entries()[slug].path)["config"]))


def _case(family: str, setup_name: str, quantity: str, value: float, cfg: Mapping[str, Any],
          setup: Mapping[str, Any], versions: str) -> Case:
    unit = QUANTITIES[quantity]
    return Case(
        id=f"cpu/{family}/{setup_name}/{quantity}", calibration_id=None, category="cpu-ground-truth", supported=True,
        reason="", quantity=quantity, value=value, unit=unit, bound=None, range=None, estimator="finetune",
        model=None, model_config=dict(cfg), gpu=None, gpus=1, setup=dict(setup), extra={}, confidence="high",
        source=f"tests/groundtruth/harness.py measure_training_step on CPU ({versions})",
        quote="", notes="tiny random-weight model; one forward/backward/AdamW step", origin="cpu-measured")


def ours_groundtruth(case: Case, spec) -> float:
    """Our value of a ground-truth quantity (full model states, loss-phase activations)."""
    setup = finetune_setup(case.setup)
    if case.quantity == "trainable_params":
        return float(trainable_params(spec, setup))
    if case.quantity in ("gradient_bytes", "optimizer_bytes"):
        ms = model_states(spec, setup, 0, Assumptions())
        return float(ms.grads_full if case.quantity == "gradient_bytes" else ms.optimizer)
    parts = activation_bytes(spec, setup)
    return float(parts["layers"] + parts["lora"])


def others_groundtruth(method: str, case: Case, spec) -> float | None:
    """llm-analysis (full fine-tuning) and gpu_poor where their published formulas give the quantity."""
    s, q = case.setup, case.quantity
    full = s["method"] == "full"
    if method == "llm-analysis":
        m = LlmAnalysisModel.from_spec(spec)
        if m is None or not full:
            return None
        p = m.total_params()
        if q == "trainable_params":
            return p
        if q == "gradient_bytes":
            return 2.0 * p                      # master_weights_dtype_bytes = 2 for pure bf16
        if q == "optimizer_bytes":
            return (2.0 + 4.0) * p              # master + other_op_bytes (bf16 moments)
        b, n = int(s["micro_batch"]), int(s["seq_len"])
        total = llm_analysis_activation_bytes(m, b, n, bool(s["gradient_checkpointing"]))
        ln_last = 0.0 if s["gradient_checkpointing"] else n * b * m.hidden_dim * 4.0
        return total - m.vocab_size * b * n * 2.0 - ln_last   # decoder layers only
    if method == "gpu_poor":
        c = GpuPoorConfig.from_spec(spec)
        if c is None:
            return None
        if q == "trainable_params":
            return c.params() if full else None
        if q == "layer_activation_bytes":
            return gpu_poor_activation_bytes(c, int(s["seq_len"]), int(s["micro_batch"]),
                                                    bool(s["gradient_checkpointing"]))
        return None
    return None


GROUNDTRUTH_METHODS = ("llm-analysis", "gpu_poor")


def groundtruth_rows(measure: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]],
                     families: Sequence[str] = FAMILIES, setups: Mapping[str, Mapping[str, Any]] = SETUPS,
                     versions: str = "") -> list[Row]:
    """Measure every (family, setup) with ``measure`` and return one row per quantity."""
    rows: list[Row] = []
    for family in families:
        cfg = tiny_config(family)
        spec = model_spec_from_config(cfg, slug=f"tiny-{family}", where=f"tiny {family} config")
        for name, base in setups.items():
            setup = family_setup(family, base)
            measured = measure(cfg, setup)
            for q in QUANTITIES:
                case = _case(family, name, q, measured_value(measured, q), cfg, setup, versions)
                est = {OURS: _score(case, lambda c=case: ours_groundtruth(c, spec))}
                for m in GROUNDTRUTH_METHODS:
                    est[m] = _score(case, lambda c=case, m=m: others_groundtruth(m, c, spec))
                rows.append(Row(case, est))
    return rows

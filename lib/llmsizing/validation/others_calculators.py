"""Other tools' published per-layer calculators: llm-analysis, Vidur's memory planner, gpu_poor.

These are NOT our formulas: each function reimplements another tool exactly as its authors publish it
(same inputs, constants and omissions) so that ``llmsizing validate`` can compare our estimator with
what a user of that tool is told. Nothing here is tuned to the validation set.

- llm-analysis — cli99/llm-analysis ``llm_analysis/analysis.py`` (read at commit b60b392),
  https://github.com/cli99/llm-analysis/blob/main/llm_analysis/analysis.py: GQA-aware attention
  2h² + 2h·(h·kv/a), MLP (3 if gated else 2)·h·ffn·E + router h·E, 2h LayerNorm per layer, embedding
  counted once (``shared_embedding=True`` default) + last norm h; Adam 4 B master + 8 B moments (÷DP at
  ZeRO ≥ 1), gradients in master dtype (÷DP at ZeRO ≥ 2), weights ÷DP at ZeRO 3; Korthikanti
  activations (arXiv:2205.05198) with flash attention and attention dropout; full recomputation keeps
  s·b·h per layer; logits V·b·s; peak = weights + optimizer + max(activations, gradients) +
  max(ZeRO-3 prefetch, loss backward); KV cache 2·b·s·(h/a)·max(kv/t, 1) per layer;
  ``decode_max_batch_size`` from ``mem_per_GPU_in_GB·2³⁰ − weights``; training time = (fwd + 2·fwd +
  recompute) FLOP ÷ (tp·pp · peak · flops_efficiency) with forward FLOP per layer 4bsh² + 4bsh²/groups
  + 4bs²h + 2·(3|2)·b·s·h·ffn·top_k, logits 2bshV, and the default ``flops_efficiency`` = 1
  (``llm_analysis/constant.py``: "FLOPS efficiency achieved by Megatron-LM is ~0.5", default 1: a lower
  bound). The two buffer terms of the peak (prefetch, loss backward) are taken as one transformer
  layer's 16-bit weights (ZeRO-3 only) and the fp32 logits gradient.
- Vidur — microsoft/vidur ``vidur/scheduler/utils/memory_planner.py`` and
  ``vidur/utils/param_counter.py`` (https://github.com/microsoft/vidur): available =
  total_memory_gb·2³⁰·(1 − 0.1) − 2 B × per-device layer parameters (no embeddings, head_dim = h/a,
  ceil(kv/tp) heads); KV per token 2·2·head_dim·kv_per_worker·layers; fp16 only, dense only.
- gpu_poor — RahulSChand/gpu_poor ``src/App.js`` (https://github.com/RahulSChand/gpu_poor):
  P = 2Vh + 4Lh² + 3Lhi (GQA and tied embeddings ignored); GGML sizes from bytes per 32/64-weight block
  (``computeModelSizeGGML``); training = model + grad/optimizer + activations (× 0.15 with gradient
  checkpointing) + 650 MiB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmsizing.specs import ModelSpec
from llmsizing.units import GiB, MiB

# ============================================================================ llm-analysis


@dataclass(frozen=True)
class LlmAnalysisModel:
    """llm-analysis ``ModelConfig`` fields."""

    num_layers: int
    n_head: int
    hidden_dim: int
    vocab_size: int
    num_key_value_heads: int
    ffn_embed_dim: int
    moe_num_experts: int = 1
    moe_top_k: int = 1
    mlp_gated_linear_units: bool = False

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> "LlmAnalysisModel | None":
        """The fields llm-analysis reads from a Hugging Face config; None where it cannot describe the model
        (MLA attention, shared or dense-first MoE layers)."""
        if spec.is_mla or spec.num_shared_experts or (spec.is_moe and len(spec.moe_layers) != spec.num_layers):
            return None
        ffn = spec.moe_intermediate_size if spec.is_moe else spec.intermediate_size
        return cls(spec.num_layers, spec.num_heads, spec.hidden_size, spec.vocab_size, spec.num_kv_heads, ffn,
                   spec.num_experts or 1, spec.experts_per_token or 1, spec.mlp_gated)

    def attn_params(self, tp: int = 1) -> float:
        kv = max(self.num_key_value_heads / tp, 1) * tp
        return 2 * self.hidden_dim ** 2 + 2 * self.hidden_dim * (self.hidden_dim * kv / self.n_head)

    def mlp_params(self) -> float:
        return (3 if self.mlp_gated_linear_units else 2) * self.hidden_dim * self.ffn_embed_dim * self.moe_num_experts

    def router_params(self) -> float:
        return self.hidden_dim * self.moe_num_experts if self.moe_num_experts > 1 else 0

    def layer_params(self, tp: int = 1) -> float:
        return self.attn_params(tp) + self.mlp_params() + self.router_params() + 2 * self.hidden_dim

    def total_params(self) -> float:
        """``get_num_params_total``: layers + one embedding (``shared_embedding=True``) + last norm."""
        return self.num_layers * self.layer_params() + self.hidden_dim * self.vocab_size + self.hidden_dim


def llm_analysis_weight_bytes_per_gpu(m: LlmAnalysisModel, weight_bits: float, embedding_bits: float = 16,
                                      tp: int = 1, ep: int = 1, dp_shard: int = 1) -> float:
    """``get_weight_memory_per_layer`` × layers + ``get_memory_embedding`` + last norm (÷DP at ZeRO-3)."""
    wb = weight_bits / 8
    layer = (m.attn_params(tp) / tp + (m.mlp_params() / ep + m.router_params()) / tp + 2 * m.hidden_dim / tp) * wb
    embedding = m.hidden_dim * m.vocab_size / tp * embedding_bits / 8
    last = m.hidden_dim * wb / tp
    return (m.num_layers * layer + embedding + last) / dp_shard


def llm_analysis_kv_bytes_per_token(m: LlmAnalysisModel, kv_bytes: float, tp: int = 1) -> float:
    """``get_memory_kv_cache_per_layer`` for one token, all layers: 2·(h/a)·max(kv/t, 1)·bytes."""
    return m.num_layers * 2 * (m.hidden_dim / m.n_head) * max(m.num_key_value_heads / tp, 1) * kv_bytes


def llm_analysis_kv_capacity_tokens(m: LlmAnalysisModel, mem_per_gpu_gb: float, weight_bits: float, kv_bytes: float,
                                    tp: int = 1) -> float:
    """Tokens of KV cache that fit beside the weights (``inference``: memory_left / KV per token).

    The decode activation term (one token per sequence, < 0.01% here) is left out.
    """
    left = mem_per_gpu_gb * GiB - llm_analysis_weight_bytes_per_gpu(m, weight_bits, 16, tp)
    return left / llm_analysis_kv_bytes_per_token(m, kv_bytes, tp)


def llm_analysis_activation_bytes(m: LlmAnalysisModel, batch: int, seq: int, full_recompute: bool, tp: int = 1,
                                  act_bytes: float = 2.0, layernorm_bytes: float = 4.0) -> float:
    """Training activations per GPU: layers + logits + last norm (``training``, flash attention on)."""
    s, b, h, a = seq, batch, m.hidden_dim, m.n_head
    if full_recompute:
        per_layer = s * b * h * act_bytes / tp
        ln_last = 0.0
    else:
        attn = (s * b * h + 4 * s * b * h / tp) * act_bytes + (2 * s * b * h + 4 * a * s * b) * act_bytes / tp
        attn += s * b * h  # attention dropout mask, one byte per element
        expansion = m.ffn_embed_dim / h
        mlp = act_bytes * s * b * h * m.moe_num_experts * m.moe_top_k
        mlp += 2 * act_bytes * expansion * s * b * h * m.moe_num_experts * m.moe_top_k / tp
        ln = s * b * h * layernorm_bytes
        per_layer = attn + mlp + 2 * ln
        ln_last = ln
    logits = m.vocab_size * b * s * act_bytes / tp
    return m.num_layers * per_layer + logits + ln_last


def llm_analysis_training_peak_bytes(m: LlmAnalysisModel, *, batch: int, seq: int, full_recompute: bool,
                                     zero: int, dp: int, tp: int = 1, weight_bits: float = 16,
                                     master_bytes: float = 4, other_op_bytes: float = 8) -> float:
    """Peak per GPU: weights + optimizer + max(activations, gradients) + max(prefetch, loss backward)."""
    p = m.total_params()
    weights = llm_analysis_weight_bytes_per_gpu(m, weight_bits, weight_bits, tp, 1, dp if zero >= 3 else 1)
    optimizer = (master_bytes + other_op_bytes) * p / tp / (dp if zero >= 1 else 1)
    gradients = master_bytes * p / tp / (dp if zero >= 2 else 1)
    activations = llm_analysis_activation_bytes(m, batch, seq, full_recompute, tp)
    prefetch = m.layer_params(tp) * weight_bits / 8 / tp if zero >= 3 else 0.0
    loss_bwd = m.vocab_size * batch * seq * 4 / tp
    return weights + optimizer + max(activations, gradients) + max(prefetch, loss_bwd)


def llm_analysis_fwd_flop(m: LlmAnalysisModel, batch: int, seq: int) -> float:
    """Forward FLOP of one micro-batch as llm-analysis counts it: layers + logits (module docstring)."""
    b, s, h = batch, seq, m.hidden_dim
    groups = m.n_head / m.num_key_value_heads
    gates = 3 if m.mlp_gated_linear_units else 2
    layer = 4 * b * s * h * h + 4 * b * s * h * h / groups + 4 * b * s * s * h + 2 * gates * b * s * h * m.ffn_embed_dim * m.moe_top_k
    return m.num_layers * layer + 2 * b * s * h * m.vocab_size


def llm_analysis_train_tokens_per_s_per_gpu(m: LlmAnalysisModel, *, batch: int, seq: int, full_recompute: bool,
                                            peak_flop_per_s: float, tp: int = 1, pp: int = 1,
                                            flops_efficiency: float = 1.0) -> float:
    """Tokens/s per GPU from ``training``'s latency_per_micro_batch (compute only, no communication)."""
    fwd = llm_analysis_fwd_flop(m, batch, seq)
    total = fwd + 2 * fwd + (fwd if full_recompute else 0.0)
    latency = total / (tp * pp * peak_flop_per_s * flops_efficiency)
    return batch * seq / latency / (tp * pp)


# ============================================================================ Vidur

VIDUR_MEMORY_MARGIN = 0.1


def vidur_param_bytes_per_device(spec: ModelSpec, tp: int = 1, pp: int = 1) -> float:
    """``MemoryPlanner._get_parameter_memory_per_device``: 2 B × layer parameters per device."""
    h, q, L = spec.hidden_size, spec.num_heads, spec.num_layers
    hd = h // q
    q_w = q // tp
    kv_w = math.ceil(spec.num_kv_heads / tp)
    per_layer = h * hd * (q_w + 2 * kv_w) + h * hd * q_w
    per_layer += (3 if spec.mlp_gated else 2) * h * spec.intermediate_size // tp
    return 2.0 * per_layer * (L // pp)


def vidur_kv_capacity_tokens(spec: ModelSpec, total_memory_gb: float, tp: int = 1, pp: int = 1) -> float:
    """``get_max_batch_size`` in tokens: (0.9 · memory − parameters) ÷ KV bytes per token per device."""
    available = total_memory_gb * GiB * (1 - VIDUR_MEMORY_MARGIN)
    kv_per_token = 2 * 2 * (spec.hidden_size // spec.num_heads) * math.ceil(spec.num_kv_heads / tp) * (spec.num_layers // pp)
    return (available - vidur_param_bytes_per_device(spec, tp, pp)) / kv_per_token


# ============================================================================ gpu_poor


@dataclass(frozen=True)
class GpuPoorConfig:
    """``getParseConfig``: vocab, hidden, heads, intermediate, layers from a Hugging Face config."""

    vocab: int
    hidden: int
    heads: int
    inter: int
    layers: int

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> "GpuPoorConfig | None":
        if spec.is_moe or spec.is_mla or spec.family == "mpt":
            return None  # no MoE/MLA; MPT's d_model/n_layers keys are not read
        return cls(spec.vocab_size, spec.hidden_size, spec.num_heads, spec.intermediate_size, spec.num_layers)

    def params(self) -> float:
        """``computeModelSize``: 2Vh + 4Lh² + 3Lhi."""
        return 2 * self.vocab * self.hidden + self.layers * 4 * self.hidden ** 2 + self.layers * 3 * self.inter * self.hidden


GPU_POOR_GGML = {"q8_0": ("block32", 34.0), "q6_k": ("block64", 54.0), "q4_k_m": ("mix", (54.0, 38.0)),
                 "q2_k": ("q2k", (26.0, 22.0))}
GPU_POOR_OVERHEAD_MIB = 650.0


def gpu_poor_ggml_bytes(c: GpuPoorConfig, quant: str) -> float | None:
    """``computeModelSizeGGML`` (MiB there), in bytes."""
    if quant not in GPU_POOR_GGML:
        return None
    total = c.params()
    kind, f = GPU_POOR_GGML[quant]
    if kind == "block32":
        mib = f * total / (32 * MiB)
    elif kind == "block64":
        mib = f * total / (64 * MiB)
    elif kind == "q2k":
        other = total - (c.hidden ** 2 * c.layers * 2 + 2 * c.vocab * c.hidden)
        mib = ((total - other) * f[1] + other * f[0]) / (64 * MiB)
    else:
        other = c.layers * c.hidden ** 2 + c.layers * c.hidden * c.inter
        mib = ((total - other) * f[1] + other * f[0]) / (64 * MiB)
    return mib * MiB


def gpu_poor_inference_bytes(c: GpuPoorConfig, context: int) -> float:
    """``getAllComputedData`` for HF inference without quantization: model (2 B/param) + KV
    (2·ctx·2·2·h·L, the README's HF factor of 2, no batch) + activations (ctx·h·10 + ctx²·heads·2) + 650 MiB."""
    model = c.params() * 2
    kv = 2 * context * 2 * 2 * c.hidden * c.layers
    act = context * c.hidden * 5 * 2 + context * context * c.heads * 2
    return model + kv + act + GPU_POOR_OVERHEAD_MIB * MiB


def _gpu_poor_extra(c: GpuPoorConfig, kind: str, context: int) -> float:
    common = (10 * c.hidden + 5 * c.hidden + 4 * c.inter + 2 * c.inter) * c.layers
    ratio = context / 50
    root = math.sqrt(ratio) if ratio > 1.0 else 1.0
    const = {"bnb_int8": 0.75 * 1.25, "bnb_q4": 1.0, "qlora": 0.75}[kind]
    return const * common * 50 * root


def gpu_poor_training_bytes(c: GpuPoorConfig, *, method: str, optimizer: str, context: int, batch: int,
                            gradient_checkpointing: bool) -> float:
    """``getAllComputedData`` for training (no bitsandbytes quant option): total MiB × 2²⁰."""
    p = c.params()
    size_mib = p * 2 / MiB
    if method == "qlora":
        size_mib = size_mib / 4 - p * 2 / (64 * MiB) + 0.06 * (p * 2 / MiB)
    adam = optimizer == "adam"
    if method == "full":
        grad_opt = p * (3 if adam else 1) * 2
    elif method == "lora":
        grad_opt = c.layers * 8 * c.hidden * 2 * 4 * (3 * 2 if adam else 2)
    else:
        grad_opt = c.layers * 8 * c.hidden * 0.5 * 4 * (3 if adam else 1) + _gpu_poor_extra(c, "qlora", context) * batch
    act_mib = gpu_poor_activation_bytes(c, context, batch, gradient_checkpointing) / MiB
    return (size_mib + grad_opt / MiB + act_mib + GPU_POOR_OVERHEAD_MIB) * MiB


def gpu_poor_activation_bytes(c: GpuPoorConfig, context: int, batch: int, gradient_checkpointing: bool) -> float:
    """``getActivationMemory`` (2-byte floats, s² attention scores) × 0.15 with gradient checkpointing."""
    s, h, a, i, fb = context, c.hidden, c.heads, c.inter, 2
    attn = s * h * 3 * fb + s * h * 2 * fb + s * s * a * fb + s * s * a * 4 + s * s * a * fb + 3 * s * h * fb
    ffn = 2 * h * s * fb + fb * 5 * s * i + i * s * fb
    norm = s * 4 * 2 + s * h * fb * 6
    total = (attn + ffn + norm) * c.layers * batch
    return total * 0.15 if gradient_checkpointing else total

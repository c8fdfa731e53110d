"""Other methods' published formulas, as pure functions, and where each one applies.

Each method is implemented the way its authors publish it — same inputs, same constants, same
omissions — so that ``llmsizing validate`` compares our estimator against what a user of that
tool would have been told. Nothing here is tuned to the validation set. Where a method does not
model a case (LoRA in a full-fine-tuning formula, KV capacity in a weights formula, an
architecture it cannot describe), its adapter returns None and the case is not scored for it.

Sources (read for this module; shared/reference/anchors.md §1 summarises them):

- ``accelerate`` — huggingface/accelerate ``src/accelerate/commands/estimate.py`` (v1.x):
  ``create_empty_model`` builds ``AutoModel.from_config`` (the base model: no LM head unless the
  repo's ``auto_map`` names an ``AutoModelFor*`` class) in float32 on the meta device;
  ``calculate_maximum_sizes`` sums parameters **and buffers**; ``float16`` divides by 2, ``int8`` by
  4, ``int4`` by 8; "Training using Adam" prints the largest of ``estimate_training_usage``'s
  components: float32 → 16 B/param (step = 4 × fp32 size), float16/bf16 → 8 B/param
  (optimizer = 2 × fp32 size), int8/int4 → "N/A".
- ``deepspeed`` — deepspeedai/DeepSpeed ``deepspeed/runtime/zero/stage_1_and_2.py``
  ``estimate_zero2_model_states_mem_needs`` (GPU = 2P + 18P/N after PR #5099, 2P with optimizer
  offload) and ``deepspeed/runtime/zero/stage3.py`` ``estimate_zero3_model_states_mem_needs``
  (LL = 4 × largest layer; GPU = LL + 18P/N, LL + 2P/N with optimizer offload, LL with parameter
  and optimizer offload). Model states only: no activations, buffers or CUDA context.
- ``rule-1.2x`` — EleutherAI "Transformer Math 101" (blog.eleuther.ai/transformer-math) and the
  accelerate model-memory-usage Space (``DTYPE_MODIFIER``): inference memory ≈ 1.2 × weight bytes.
- ``llm-analysis`` — cli99/llm-analysis ``llm_analysis/analysis.py`` (read at b60b392 and
  summarised at d841e40 in anchors.md §1.3): GQA-aware attention 2h² + 2h·(h·kv/a), MLP
  (3 if gated else 2)·h·ffn·E + router h·E, 2h LayerNorm per layer, embedding counted once
  (``shared_embedding=True`` default) + last norm h; Adam 4 B master + 8 B moments (÷DP at ZeRO ≥ 1),
  gradients in master dtype (÷DP at ZeRO ≥ 2), weights ÷DP at ZeRO 3; Korthikanti activations with
  flash attention and attention dropout; full recomputation keeps s·b·h per layer; logits V·b·s;
  peak = weights + optimizer + max(activations, gradients) + max(ZeRO-3 prefetch, loss backward);
  KV cache 2·b·s·(h/a)·max(kv/t, 1) per layer; ``decode_max_batch_size`` from
  ``mem_per_GPU_in_GB·2³⁰ − weights``; training time = (fwd + 2·fwd + recompute) FLOP ÷
  (tp·pp · peak · flops_efficiency) with forward FLOP per layer 4bsh² + 4bsh²/groups + 4bs²h +
  2·(3|2)·b·s·h·ffn·top_k, logits 2bshV, and the default ``flops_efficiency`` = 1
  (``constant.py``: "FLOPS efficiency achieved by Megatron-LM is ~0.5", default 1: a lower bound).
  The two buffer terms of the peak (prefetch, loss backward) are not in the stored source; they are
  taken as one transformer layer's 16-bit weights (ZeRO-3 only) and the fp32 logits gradient.
- ``vidur`` — microsoft/vidur ``vidur/scheduler/utils/memory_planner.py`` and
  ``vidur/utils/param_counter.py``: available = total_memory_gb·2³⁰·(1 − 0.1) − 2 B × per-device
  layer parameters (no embeddings, head_dim = h/a, ceil(kv/tp) heads); KV per token
  2·2·head_dim·kv_per_worker·layers; fp16 only, dense only.
- ``gpu_poor`` — RahulSChand/gpu_poor ``src/App.js``: P = 2Vh + 4Lh² + 3Lhi (GQA and tied
  embeddings ignored); GGML sizes from bytes per 32/64-weight block (``computeModelSizeGGML``);
  training = model + grad/optimizer + activations (× 0.15 with gradient checkpointing) + 650 MiB.
- ``llamafactory`` — hiyouga/LLaMA-Factory README "Hardware Requirement" (marked estimated):
  x billion parameters need 18x GB (full, AMP), 8x GB (full, pure bf16), 2x GB (LoRA/freeze),
  x GB (QLoRA 8-bit), x/2 GB (QLoRA 4-bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from llmsizing import architecture as A
from llmsizing.specs import GpuSpec, ModelSpec
from llmsizing.units import GB, GiB, MiB

# ============================================================================ accelerate

ACCELERATE_DTYPE_DIVISOR = {"float32": 1, "float16": 2, "int8": 4, "int4": 8}
_ROPE_FAMILIES = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma2", "deepseek_v3", "gpt_oss")


def accelerate_total_bytes(fp32_model_bytes: float, dtype: str) -> float:
    """``gather_data``: the float32 meta-model size divided by 1, 2, 4 or 8 for float32/float16/int8/int4."""
    return fp32_model_bytes / ACCELERATE_DTYPE_DIVISOR[dtype]


def accelerate_training_bytes(fp32_model_bytes: float, dtype: str) -> float | None:
    """``estimate_training_usage`` and ``estimate_command``: the largest component, None for int8/int4 ("N/A")."""
    fp32, fp16 = fp32_model_bytes, fp32_model_bytes // 2
    if dtype == "float32":
        parts = {"model": fp32, "gradients": fp32, "optimizer": 2 * fp32, "step": 4 * fp32}
    elif dtype in ("float16", "bfloat16"):
        parts = {"model": fp32, "gradients": fp32 + fp16, "optimizer": 2 * fp32, "step": 2 * fp32}
    else:
        return None
    return float(max(parts.values()))


def accelerate_model_elements(spec: ModelSpec) -> int:
    """Parameters + buffers of ``AutoModel.from_config`` (base model: an untied lm_head is not built).

    The one rotary module of rope models registers ``inv_freq`` and ``original_inv_freq`` (rotary
    dim / 2 elements each, transformers ≥ 4.48); Gemma-2 adds its scalar embedding ``normalizer``.
    """
    n = A.params_total(spec)  # parameters + checkpoint buffers (DeepSeek's e_score_correction_bias)
    if not spec.tie_embeddings:
        n -= spec.hidden_size * spec.vocab_size
    if spec.family in _ROPE_FAMILIES:
        n += 2 * ((spec.qk_rope_head_dim if spec.is_mla else spec.head_dim) // 2)
    if spec.family == "gemma2":
        n += 1
    return n


# ============================================================================ DeepSpeed


def deepspeed_zero2_gpu_bytes(total_params: float, total_gpus: int, cpu_offload: bool) -> float:
    """``estimate_zero2_model_states_mem_needs`` GPU bytes (2 + 18/N bytes per parameter, PR #5099)."""
    if cpu_offload:
        return 2.0 * total_params
    return 2.0 * total_params + int(18 * total_params / total_gpus)


def deepspeed_zero3_gpu_bytes(total_params: float, largest_layer_params: float, total_gpus: int,
                              cpu_offload: bool, cpu_offload_params: bool) -> float:
    """``estimate_zero3_model_states_mem_needs`` GPU bytes; LL = 4 × largest layer parameters."""
    ll = 4.0 * largest_layer_params
    if cpu_offload and cpu_offload_params:
        return ll
    if cpu_offload:
        return ll + int(2 * total_params / total_gpus)
    return ll + int(18 * total_params / total_gpus)


def deepspeed_largest_layer_params(spec: ModelSpec) -> int:
    """``model_to_params``: the largest module's own parameters (embedding, lm_head, one linear, or a
    layer's fused expert tensors, as transformers stores routed experts in one module)."""
    best = spec.vocab_size * spec.hidden_size
    fused: dict[int, int] = {}
    for m in A.model_modules(spec):
        if m.group == "experts":
            fused[m.layer] = fused.get(m.layer, 0) + m.params
        elif m.kind == "linear":
            best = max(best, m.params)
    return max([best, *fused.values()])


# ============================================================================ rule of thumb


def rule_inference_bytes(weight_bytes: float) -> float:
    """EleutherAI / accelerate Space: inference memory ≈ 1.2 × the weights."""
    return 1.2 * weight_bytes


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
    """Forward FLOP of one micro-batch: layers + logits (anchors.md §1.3)."""
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


# ============================================================================ LLaMA-Factory

LLAMAFACTORY_GB_PER_BILLION = {"full-amp": 18.0, "full-pure": 8.0, "lora": 2.0, "qlora-8bit": 1.0, "qlora-4bit": 0.5}


def llamafactory_bytes(params: float, rule: str) -> float:
    """README "Hardware Requirement": x billion parameters need (18|8|2|1|0.5)·x GB."""
    return LLAMAFACTORY_GB_PER_BILLION[rule] * params / 1e9 * GB


# ============================================================================ adapters: where each applies


@dataclass(frozen=True)
class Inputs:
    """What an adapter sees of a case: the case, its model and GPU, and the setup fields."""

    case: Any                 # validation.cases.Case
    spec: ModelSpec
    gpu: GpuSpec | None

    @property
    def s(self) -> Mapping[str, Any]:
        return self.case.setup

    @property
    def q(self) -> str:
        return self.case.quantity

    def get(self, key: str, default: Any = None) -> Any:
        return self.case.setup.get(key, default)


_MEMORY_Q = ("allocated", "reserved", "device")
_FILE_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "float16", "q8_0": "int8", "int8": "int8",
               "q4_k_m": "int4", "int4": "int4"}
_WEIGHT_BITS = {"fp32": None, "fp16": 16, "bf16": 16, "q8_0": 8, "int8": 8, "fp8": 8, "fp8-block128": 8,
                "q4_k_m": 4, "int4": 4}


def _accelerate(x: Inputs) -> float | None:
    fp32 = accelerate_model_elements(x.spec) * 4.0
    if x.case.estimator == "finetune" and x.get("method") == "full" and x.case.gpus == 1:
        dtype = "float32" if x.get("precision") == "fp32" else "float16"
        return accelerate_training_bytes(fp32, dtype)
    if x.case.estimator == "weights" and x.q in ("file_bytes", "weight_bytes") and not x.get("tp", 1) > 1:
        dtype = _FILE_DTYPE.get(x.get("precision"))
        return accelerate_total_bytes(fp32, dtype) if dtype else None
    return None


def _deepspeed(x: Inputs) -> float | None:
    if x.case.estimator != "finetune" or x.get("method") != "full" or x.q not in _MEMORY_Q:
        return None
    zero, offload, n = int(x.get("zero", 0)), x.get("offload", "none"), x.case.gpus
    p = A.params_transformers(x.spec)
    if zero == 2:
        return deepspeed_zero2_gpu_bytes(p, n, offload != "none")
    if zero == 3:
        return deepspeed_zero3_gpu_bytes(p, deepspeed_largest_layer_params(x.spec), n, offload != "none",
                                         offload == "optimizer+params")
    return None


def _rule(x: Inputs) -> float | bool | None:
    if x.case.estimator != "serve":
        return None
    from llmsizing.weights import weight_bytes

    if x.q == "fits":
        need = rule_inference_bytes(weight_bytes(x.spec, x.get("precision", "bf16"), include_mtp=True))
        return need <= x.case.gpus * x.gpu.memory_bytes
    if x.q in _MEMORY_Q:
        return rule_inference_bytes(weight_bytes(x.spec, x.get("precision", "bf16"))) / x.case.gpus
    return None


def _llm_analysis_optimizer(setup: Mapping[str, Any]) -> tuple[float, float, float]:
    """(weight bits, master bytes, other optimizer bytes) a user would enter for the setup."""
    precision, opt = setup.get("precision", "mixed-bf16"), setup.get("optimizer", "adamw")
    if precision == "fp32":
        return 32, 4, {"adamw": 8, "sgd": 0, "sgd-momentum": 4}.get(opt, 2)
    if precision == "bf16":
        return 16, 2, {"adamw": 4, "sgd": 0, "sgd-momentum": 2}.get(opt, 2)
    return 16, 4, {"adamw": 8, "sgd": 0, "sgd-momentum": 4}.get(opt, 2)


def _llm_analysis(x: Inputs) -> float | None:
    m = LlmAnalysisModel.from_spec(x.spec)
    if m is None:
        return None
    est, s = x.case.estimator, x.s
    tp, pp = int(s.get("tp", 1)), int(s.get("pp", 1))
    if est == "params":
        return None if s.get("include_mtp") else m.total_params()
    if est == "weights":
        bits = _WEIGHT_BITS.get(s.get("precision"))
        if bits is None:
            return None
        return llm_analysis_weight_bytes_per_gpu(m, bits, 16, tp)
    if est == "serve" and x.q in _MEMORY_Q:
        bits = _WEIGHT_BITS.get(s.get("precision"))
        if bits is None:
            return None
        kv_bytes = 1.0 if str(s.get("kv_precision", "")).startswith("fp8") else 2.0
        tokens = int(s.get("users", 1)) * int(s.get("context", 0))
        return (llm_analysis_weight_bytes_per_gpu(m, bits, 16, tp)
                + tokens * llm_analysis_kv_bytes_per_token(m, kv_bytes, tp))
    if est == "serve" and x.q in ("kv_tokens", "kv_blocks"):
        bits = _WEIGHT_BITS.get(s.get("precision"))
        if bits is None:
            return None
        kv_bytes = 1.0 if str(s.get("kv_precision", "")).startswith("fp8") else 2.0
        tokens = llm_analysis_kv_capacity_tokens(m, x.gpu.memory_label_gb, bits, kv_bytes, tp)
        return tokens / s.get("block_size", 16) if x.q == "kv_blocks" else tokens
    if s.get("method") != "full" or s.get("offload", "none") != "none":
        return None
    full_recompute = bool(s.get("gradient_checkpointing", True))
    if est == "finetune" and x.q in _MEMORY_Q:
        wbits, master, other = _llm_analysis_optimizer(s)
        dp = max(1, x.case.gpus // (tp * pp))
        return llm_analysis_training_peak_bytes(
            m, batch=int(s.get("micro_batch", 1)), seq=int(s["seq_len"]), full_recompute=full_recompute,
            zero=int(s.get("zero", 0)), dp=dp, tp=tp, weight_bits=wbits, master_bytes=master, other_op_bytes=other)
    if est in ("throughput", "time"):
        peak = x.gpu.flop_per_s.get("fp16") or x.gpu.flop_per_s.get("bf16")
        return llm_analysis_train_tokens_per_s_per_gpu(
            m, batch=int(s.get("micro_batch", 1)), seq=int(s["seq_len"]), full_recompute=full_recompute,
            peak_flop_per_s=float(peak), tp=tp, pp=pp)
    return None


def _vidur(x: Inputs) -> float | None:
    spec, s = x.spec, x.s
    if spec.is_moe or spec.is_mla or spec.family == "mpt":
        return None
    if str(s.get("precision", "bf16")) not in ("bf16", "fp16") or str(s.get("kv_precision", "bf16")) not in ("bf16", "fp16"):
        return None  # fp16 only
    tp, pp = int(s.get("tp", 1)), int(s.get("pp", 1))
    if x.case.estimator == "weights" and x.q == "weight_bytes_per_rank":
        return vidur_param_bytes_per_device(spec, tp, pp)
    if x.case.estimator == "serve" and x.q in ("kv_tokens", "kv_blocks"):
        tokens = vidur_kv_capacity_tokens(spec, x.gpu.memory_label_gb, tp, pp)
        return tokens / s.get("block_size", 16) if x.q == "kv_blocks" else tokens
    return None


def _gpu_poor(x: Inputs) -> float | None:
    c = GpuPoorConfig.from_spec(x.spec)
    if c is None:
        return None
    s = x.s
    if x.case.estimator == "params" and not s.get("include_mtp"):
        return c.params()
    if x.case.estimator == "weights" and x.q == "file_bytes":
        if s.get("precision") in ("fp16", "bf16"):
            return c.params() * 2.0  # HF / vLLM inference, no quantization
        return gpu_poor_ggml_bytes(c, s.get("precision"))
    if x.case.estimator == "serve" and x.q in _MEMORY_Q and x.case.gpus == 1 and s.get("engine") == "transformers":
        if s.get("precision", "bf16") not in ("bf16", "fp16"):
            return None
        return gpu_poor_inference_bytes(c, int(s.get("context", 0)))
    if x.case.estimator == "finetune" and x.case.gpus == 1 and x.q in _MEMORY_Q:
        opt = "sgd" if str(s.get("optimizer", "adamw")).startswith("sgd") else "adam"
        return gpu_poor_training_bytes(c, method=s.get("method", "lora"), optimizer=opt, context=int(s["seq_len"]),
                                       batch=int(s.get("micro_batch", 1)),
                                       gradient_checkpointing=bool(s.get("gradient_checkpointing", True)))
    return None


def _llamafactory(x: Inputs) -> float | None:
    s = x.s
    if x.case.estimator != "finetune" or x.case.gpus != 1 or x.q not in _MEMORY_Q:
        return None
    method = s.get("method")
    if method == "full":
        rule = "full-pure" if s.get("precision") == "bf16" else "full-amp"
    elif method == "lora":
        rule = "lora"
    else:
        rule = "qlora-4bit"
    return llamafactory_bytes(A.params_total(x.spec), rule)


@dataclass(frozen=True)
class Method:
    """One other method: its name in tables, where it comes from, and what it covers."""

    name: str
    label: str
    source: str
    applies_to: str
    adapter: Callable[[Inputs], Any]


METHODS: tuple[Method, ...] = (
    Method("accelerate", "accelerate estimate-memory",
           "huggingface/accelerate src/accelerate/commands/estimate.py",
           "single-GPU full fine-tuning memory ('Training using Adam'); weight/file sizes at float32/float16/int8/int4",
           _accelerate),
    Method("deepspeed", "DeepSpeed ZeRO estimators",
           "deepspeedai/DeepSpeed runtime/zero/stage_1_and_2.py, stage3.py estimate_zero{2,3}_model_states_mem_needs",
           "full fine-tuning memory with ZeRO-2 or ZeRO-3 / FSDP (model states only), with and without offload",
           _deepspeed),
    Method("rule-1.2x", "1.2 x weights",
           "EleutherAI Transformer Math 101; accelerate model-memory-usage Space",
           "inference memory per GPU and serving feasibility", _rule),
    Method("llm-analysis", "llm-analysis", "cli99/llm-analysis llm_analysis/analysis.py",
           "parameter counts, weights per GPU, KV capacity, inference memory, full fine-tuning memory without "
           "offload, training throughput (dense and top-k MoE without MLA or shared experts)", _llm_analysis),
    Method("vidur", "Vidur memory planner",
           "microsoft/vidur scheduler/utils/memory_planner.py, utils/param_counter.py",
           "KV capacity and weights per device of dense fp16/bf16 models", _vidur),
    Method("gpu_poor", "gpu_poor", "RahulSChand/gpu_poor src/App.js",
           "parameter counts, GGML/F16 file sizes, single-GPU fine-tuning and HF inference memory (dense models)",
           _gpu_poor),
    Method("llamafactory", "LLaMA-Factory rule", "hiyouga/LLaMA-Factory README 'Hardware Requirement'",
           "single-GPU fine-tuning memory (full AMP / pure bf16, LoRA, QLoRA 4-bit)", _llamafactory),
)
METHOD_NAMES = tuple(m.name for m in METHODS)


def estimate(method: str | Method, case: Any, spec: ModelSpec, gpu: GpuSpec | None) -> Any:
    """The method's estimate for a case in the case's base unit (bool for ``fits``), or None where it does not apply.

    Throughput adapters return tokens/s per GPU; ``run.py`` converts to the case's quantity like ours.
    """
    m = method if isinstance(method, Method) else {x.name: x for x in METHODS}[method]
    return m.adapter(Inputs(case, spec, gpu))

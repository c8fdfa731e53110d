"""Other tools' published memory formulas that work from parameter counts: accelerate, DeepSpeed, 1.2x, LLaMA-Factory.

These are NOT our formulas: each function reimplements another tool exactly as its authors publish it
(same inputs, constants and omissions) so that ``llmsizing validate`` can compare our estimator with
what a user of that tool is told. Nothing here is tuned to the validation set.

- accelerate — huggingface/accelerate ``src/accelerate/commands/estimate.py`` (v1.x),
  https://github.com/huggingface/accelerate/blob/main/src/accelerate/commands/estimate.py:
  ``create_empty_model`` builds ``AutoModel.from_config`` (the base model: no LM head unless the
  repo's ``auto_map`` names an ``AutoModelFor*`` class) in float32 on the meta device;
  ``calculate_maximum_sizes`` sums parameters **and buffers**; ``float16`` divides by 2, ``int8`` by
  4, ``int4`` by 8; "Training using Adam" prints the largest of ``estimate_training_usage``'s
  components: float32 → 16 B/param (step = 4 × fp32 size), float16/bf16 → 8 B/param
  (optimizer = 2 × fp32 size), int8/int4 → "N/A".
- DeepSpeed — deepspeedai/DeepSpeed ``deepspeed/runtime/zero/stage_1_and_2.py``
  ``estimate_zero2_model_states_mem_needs`` (GPU = 2P + 18P/N after PR #5099,
  https://github.com/deepspeedai/DeepSpeed/pull/5099; 2P with optimizer offload) and
  ``deepspeed/runtime/zero/stage3.py`` ``estimate_zero3_model_states_mem_needs`` (LL = 4 × largest
  layer; GPU = LL + 18P/N, LL + 2P/N with optimizer offload, LL with parameter and optimizer
  offload); https://deepspeed.readthedocs.io/en/latest/memory.html. Model states only: no
  activations, buffers or CUDA context.
- 1.2 × weights — EleutherAI "Transformer Math 101" (https://blog.eleuther.ai/transformer-math/)
  and the accelerate model-memory-usage Space (https://huggingface.co/spaces/hf-accelerate/model-memory-usage,
  ``DTYPE_MODIFIER``): inference memory ≈ 1.2 × weight bytes.
- LLaMA-Factory — hiyouga/LLaMA-Factory README "Hardware Requirement" (marked estimated),
  https://github.com/hiyouga/LLaMA-Factory#hardware-requirement: x billion parameters need 18x GB
  (full, AMP), 8x GB (full, pure bf16), 2x GB (LoRA/freeze), x GB (QLoRA 8-bit), x/2 GB (QLoRA 4-bit).
"""

from __future__ import annotations

from llmsizing import architecture as A
from llmsizing.specs import ModelSpec
from llmsizing.units import GB

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


# ============================================================================ LLaMA-Factory

LLAMAFACTORY_GB_PER_BILLION = {"full-amp": 18.0, "full-pure": 8.0, "lora": 2.0, "qlora-8bit": 1.0, "qlora-4bit": 0.5}


def llamafactory_bytes(params: float, rule: str) -> float:
    """README "Hardware Requirement": x billion parameters need (18|8|2|1|0.5)·x GB."""
    return LLAMAFACTORY_GB_PER_BILLION[rule] * params / 1e9 * GB

"""Weight bytes of a model stored in a given precision.

Quantized checkpoints quantize the large linear layers and keep the rest in 16-bit:
embeddings, lm_head, norms, routers, biases and other vectors (GPTQ/AWQ keep lm_head and
embeddings in fp16; bitsandbytes skips lm_head; DeepSeek's FP8 checkpoint keeps embeddings,
heads, routers, eh_proj and norms in BF16 — the dtypes in its model.safetensors.index.json). GGUF files apply a
per-tensor mix (``gguf_tensor_bits``).
"""

from __future__ import annotations

from llmsizing.architecture import Module, model_modules, mtp_modules
from llmsizing.catalog import load_precision
from llmsizing.specs import ModelSpec, Precision

HIGH_PRECISION_BYTES = 2.0  # bf16/fp16 for the layers quantized checkpoints keep unquantized

# llama.cpp src/llama-quant.cpp (llama_tensor_get_type): Q4_K_M stores output.weight in Q6_K and
# uses Q6_K for attn_v and ffn_down in "use_more_bits" layers (first and last eighth of the layers
# and every third layer in between); everything else Q4_K; norms F32.
_Q6_K_BITS = 6.5625
_GGUF_MORE_BITS_MODULES = ("v_proj", "down_proj", "experts.down_proj")

# GGML block sizes in bits per weight (llama.cpp ggml/src/ggml-common.h: block_q3_K 110 B, block_q4_K 144 B,
# block_q5_K 176 B per 256 weights; block_q8_0 34 B per 32 weights).
_Q3_K_BITS = 3.4375
_Q4_K_BITS = 4.5
_Q5_K_BITS = 5.5
_Q8_0_BITS = 8.5


def q2_k_bits(m: Module, spec: ModelSpec | None) -> float:
    """Bits per weight of one tensor in a GGUF ``Q2_K`` file (llama.cpp ``llama_tensor_get_type``).

    llama.cpp src/llama-quant.cpp, ftype LLAMA_FTYPE_MOSTLY_Q2_K (default type Q2_K, 2.625 bpw):
    output.weight -> Q6_K; attn_v -> Q4_K when n_gqa >= 4 else Q3_K (Q5_K for 70B models, Q8_0 for
    8-expert models); attn_k -> Q8_0 for 8-expert models; attn_output -> Q3_K (Q5_K for 8-expert
    models); ffn_down (and ffn_down_exps) -> Q3_K; everything else (token_embd included) Q2_K.
    Reproduces the 2.95 GiB Llama-3.1-8B Q2_K file (calibration B-llamacpp-llama31-8b-q2k).
    """
    base = 2.625
    eight_experts = spec is not None and spec.num_experts == 8
    if m.group == "lm_head":
        return _Q6_K_BITS
    if m.name == "v_proj":
        n_gqa = (spec.num_heads // spec.num_kv_heads) if spec is not None else 1
        bits = _Q4_K_BITS if n_gqa >= 4 else _Q3_K_BITS
        if spec is not None and spec.num_layers == 80 and spec.family in ("llama", "qwen2"):
            bits = _Q5_K_BITS  # llama.cpp LLM_TYPE_70B: attn_v Q3_K/Q4_K -> Q5_K
        return _Q8_0_BITS if eight_experts else bits
    if m.name == "k_proj" and eight_experts:
        return _Q8_0_BITS
    if m.name in ("o_proj", "out_proj"):
        return _Q5_K_BITS if eight_experts else _Q3_K_BITS
    if m.name in ("down_proj", "experts.down_proj", "shared_experts.down_proj"):
        return _Q3_K_BITS
    return base


def _use_more_bits(layer: int, n_layers: int) -> bool:
    """llama.cpp use_more_bits(i_layer, n_layers)."""
    return layer < n_layers // 8 or layer >= 7 * n_layers // 8 or (layer - n_layers // 8) % 3 == 2


def is_quantized_module(m: Module, precision: Precision) -> bool:
    """Whether ``precision`` applies to module ``m`` (large linear layers only)."""
    if precision.family == "float" and precision.bits >= 16:
        return m.kind in ("linear", "embedding")
    if precision.family == "gguf" and m.kind == "embedding" and m.group == "embedding":
        return True  # llama.cpp quantizes token_embd too
    if precision.family == "gguf" and m.group == "lm_head":
        return True
    if precision.family == "mx":
        return m.kind == "linear" and m.group == "experts"  # gpt-oss: MXFP4 for expert weights only
    return m.kind == "linear" and m.group not in ("router", "lm_head") and m.name != "eh_proj"


def module_weight_bytes(m: Module, precision: Precision, n_layers: int, spec: ModelSpec | None = None) -> float:
    """Bytes of all copies of one module (weights, plus biases and vectors in 16-bit).

    ``spec`` is needed only for GGUF tensor mixes that depend on the architecture (Q2_K).
    """
    bias_bytes = (m.out_features * m.count * HIGH_PRECISION_BYTES) if m.bias else 0.0
    if precision.family == "float" and precision.bits >= 16:
        return m.params * precision.bytes_per_param
    if not is_quantized_module(m, precision):
        if m.kind == "norm" and precision.family == "gguf":
            return m.params * 4.0  # GGUF keeps norms in F32
        if m.buffer or (m.kind == "vector" and precision.family == "float"):
            return m.params * 4.0 if precision.slug == "fp8-block128" else m.params * HIGH_PRECISION_BYTES
        return m.params * HIGH_PRECISION_BYTES
    bpp = precision.bytes_per_param
    if precision.slug == "q4_k_m":
        if m.group == "lm_head" or (m.name in _GGUF_MORE_BITS_MODULES and _use_more_bits(m.layer, n_layers)):
            bpp = _Q6_K_BITS / 8
    elif precision.slug == "q2_k":
        bpp = q2_k_bits(m, spec) / 8
    return m.count * m.weight_params * bpp + bias_bytes


def weight_bytes_by_group(spec: ModelSpec, precision: str | Precision, include_mtp: bool = False) -> dict[str, float]:
    """Weight bytes per component group (embedding, attention, mlp, experts, ...)."""
    p = load_precision(precision) if isinstance(precision, str) else precision
    mods = model_modules(spec) + (mtp_modules(spec) if include_mtp else ())
    out: dict[str, float] = {}
    for m in mods:
        out[m.group] = out.get(m.group, 0.0) + module_weight_bytes(m, p, spec.num_layers, spec)
    return out


def weight_bytes(spec: ModelSpec, precision: str | Precision, include_mtp: bool = False) -> float:
    """Total weight bytes of the model in ``precision`` (16-bit for layers kept unquantized)."""
    return sum(weight_bytes_by_group(spec, precision, include_mtp).values())


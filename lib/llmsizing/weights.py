"""Weight bytes of a model stored in a given precision.

Quantized checkpoints quantize the large linear layers and keep the rest in 16-bit:
embeddings, lm_head, norms, routers, biases and other vectors (GPTQ/AWQ keep lm_head and
embeddings in fp16; bitsandbytes skips lm_head; DeepSeek's FP8 checkpoint keeps embeddings,
heads, routers, eh_proj and norms in BF16 — catalog.md §2d dtype split). GGUF files apply a
per-tensor mix (``gguf_tensor_bits``).
"""

from __future__ import annotations

from .architecture import Module, model_modules, mtp_modules
from .catalog import load_precision
from .specs import ModelSpec, Precision

HIGH_PRECISION_BYTES = 2.0  # bf16/fp16 for the layers quantized checkpoints keep unquantized

# llama.cpp src/llama-quant.cpp (llama_tensor_get_type): Q4_K_M stores output.weight in Q6_K and
# uses Q6_K for attn_v and ffn_down in "use_more_bits" layers (first and last eighth of the layers
# and every third layer in between); everything else Q4_K; norms F32.
_Q6_K_BITS = 6.5625
_GGUF_MORE_BITS_MODULES = ("v_proj", "down_proj", "experts.down_proj")


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


def module_weight_bytes(m: Module, precision: Precision, n_layers: int) -> float:
    """Bytes of all copies of one module (weights, plus biases and vectors in 16-bit)."""
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
    return m.count * m.weight_params * bpp + bias_bytes


def weight_bytes_by_group(spec: ModelSpec, precision: str | Precision, include_mtp: bool = False) -> dict[str, float]:
    """Weight bytes per component group (embedding, attention, mlp, experts, ...)."""
    p = load_precision(precision) if isinstance(precision, str) else precision
    mods = model_modules(spec) + (mtp_modules(spec) if include_mtp else ())
    out: dict[str, float] = {}
    for m in mods:
        out[m.group] = out.get(m.group, 0.0) + module_weight_bytes(m, p, spec.num_layers)
    return out


def weight_bytes(spec: ModelSpec, precision: str | Precision, include_mtp: bool = False) -> float:
    """Total weight bytes of the model in ``precision`` (16-bit for layers kept unquantized)."""
    return sum(weight_bytes_by_group(spec, precision, include_mtp).values())


def native_precision(spec: ModelSpec) -> str:
    """The precision the official checkpoint ships in (bf16, fp8-block128 or mxfp4)."""
    return spec.checkpoint_format

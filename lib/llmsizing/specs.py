"""Frozen specifications built from catalogs and Hugging Face configs.

``ModelSpec`` is the architecture in the terms the math needs (all sizes are counts of
elements, not bytes). It is built by ``model_spec_from_config`` from a ``config.json``
dictionary of one of the supported families; family-specific facts that config files do not
state (Qwen2's q/k/v bias, Gemma-2's four norms per layer, gpt-oss sinks) are encoded here,
in one place, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from llmsizing.errors import ConfigError, ScenarioError

SUPPORTED_FAMILIES = (
    "llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma2", "deepseek_v3", "gpt_oss", "mpt",
)


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of a decoder-only transformer, in element counts."""

    slug: str
    name: str
    family: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    intermediate_size: int
    tie_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    attention_sinks: bool = False
    mlp_gated: bool = True          # SwiGLU/GeGLU: gate, up, down; else up, down (MPT GELU)
    mlp_bias: bool = False
    norm_bias: bool = False         # LayerNorm with bias (none of the supported families)
    norms_per_layer: int = 2
    position: str = "rope"          # rope | alibi | learned
    max_context_tokens: int = 0
    # Mixture of experts
    num_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    num_shared_experts: int = 0
    moe_layers: tuple[int, ...] = ()
    router_bias: bool = False
    router_correction_bias: bool = False   # DeepSeek e_score_correction_bias (a buffer in transformers)
    expert_bias: bool = False              # gpt-oss expert projections carry biases
    # Multi-head latent attention (DeepSeek-V2/V3)
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    # Sliding-window layers
    sliding_window: int = 0
    sliding_layers: tuple[int, ...] = ()
    # Multi-token prediction modules (DeepSeek-V3), counted separately from the main model
    mtp_layers: int = 0
    # Official checkpoint format
    checkpoint_format: str = "bf16"        # bf16 | fp8-block128 | mxfp4
    hf_id: str = ""
    revision: str = ""              # commit hash of a config.json read from the Hugging Face cache or Hub
    params_published: int | None = None
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def dense_layers(self) -> tuple[int, ...]:
        moe = set(self.moe_layers)
        return tuple(i for i in range(self.num_layers) if i not in moe)


def _req(cfg: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise ConfigError(f"{where}: config field '{key}' is missing (needed for family '{cfg.get('model_type')}')")
    return cfg[key]


#: Most decoder layers a config may declare (real models have < 200; the math lists modules per layer).
MAX_LAYERS = 10_000


def _int(cfg: Mapping[str, Any], key: str, where: str, default: Any = ..., minimum: int = 1,
         maximum: int | None = None) -> int:
    if default is ...:
        value = _req(cfg, key, where)
    else:
        value = cfg.get(key, default)
        if value is None:
            value = default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: config field '{key}' must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}: config field '{key}' must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{where}: config field '{key}' must be <= {maximum}, got {value}")
    return value


def _bool(cfg: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: config field '{key}' must be true or false, got {value!r}")
    return value


def _mapping(cfg: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = cfg.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: config field '{key}' must be an object, got {value!r}")
    return value


def _int_list(cfg: Mapping[str, Any], key: str, where: str) -> list[int]:
    value = cfg.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{where}: config field '{key}' must be a list of integers, got {value!r}")
    return value


def model_spec_from_config(
    cfg: Mapping[str, Any],
    *,
    slug: str,
    name: str | None = None,
    where: str = "config.json",
    hf_id: str = "",
    params_published: int | None = None,
    sources: tuple[str, ...] = (),
) -> ModelSpec:
    """Build a ``ModelSpec`` from a Hugging Face ``config.json`` dictionary.

    ``where`` names the file in error messages. Raises ``ConfigError`` naming the file and the
    field when a field the math needs is missing or malformed, or the family is unsupported.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{where}: expected a JSON object, got {type(cfg).__name__}")
    family = cfg.get("model_type")
    if family not in SUPPORTED_FAMILIES:
        raise ConfigError(
            f"{where}: model_type {family!r} is not supported; supported: {', '.join(SUPPORTED_FAMILIES)}"
        )
    if family == "mpt":
        return _mpt_spec(cfg, slug=slug, name=name, where=where, hf_id=hf_id,
                         params_published=params_published, sources=sources)

    h = _int(cfg, "hidden_size", where)
    L = _int(cfg, "num_hidden_layers", where, maximum=MAX_LAYERS)
    n_h = _int(cfg, "num_attention_heads", where)
    n_kv = _int(cfg, "num_key_value_heads", where, default=n_h)
    head_dim = _int(cfg, "head_dim", where, default=h // n_h)
    V = _int(cfg, "vocab_size", where)
    inter = _int(cfg, "intermediate_size", where, default=0, minimum=0)
    max_ctx = _int(cfg, "max_position_embeddings", where, default=0, minimum=0)
    if n_h % n_kv:
        raise ConfigError(f"{where}: num_attention_heads ({n_h}) is not a multiple of num_key_value_heads ({n_kv})")
    kw: dict[str, Any] = dict(
        slug=slug, name=name or slug, family=family, hidden_size=h, num_layers=L, num_heads=n_h,
        num_kv_heads=n_kv, head_dim=head_dim, vocab_size=V, intermediate_size=inter,
        max_context_tokens=max_ctx, hf_id=hf_id, params_published=params_published, sources=tuple(sources),
        tie_embeddings=_bool(cfg, "tie_word_embeddings", family == "gemma2", where),
    )
    attention_bias = _bool(cfg, "attention_bias", False, where)
    kw["qkv_bias"] = attention_bias
    kw["o_bias"] = attention_bias
    kw["mlp_bias"] = _bool(cfg, "mlp_bias", False, where)

    if family == "qwen2":
        # Qwen2 attention: q/k/v projections always have bias, o_proj never (transformers
        # Qwen2Attention; not a config field).
        kw["qkv_bias"], kw["o_bias"] = True, False
    if family in ("qwen3", "qwen3_moe"):
        kw["qk_norm"] = True  # per-head q_norm/k_norm RMSNorm weights (transformers Qwen3Attention)
    if family == "gemma2":
        kw["norms_per_layer"] = 4  # pre/post attention and pre/post feed-forward RMSNorm
    window = 0
    if family in ("qwen2", "qwen3", "qwen3_moe", "mistral", "mixtral"):
        window = _int(cfg, "sliding_window", where, default=0, minimum=0)
    if family in ("qwen2", "qwen3", "qwen3_moe"):
        if _bool(cfg, "use_sliding_window", False, where) and window:
            first = _int(cfg, "max_window_layers", where, default=L, minimum=0)
            kw["sliding_window"] = int(window)
            kw["sliding_layers"] = tuple(range(first, L))
    elif family in ("mistral", "mixtral"):
        if window:
            kw["sliding_window"] = int(window)
            kw["sliding_layers"] = tuple(range(L))
    elif family == "gemma2":
        # transformers Gemma2DecoderLayer: is_sliding = not bool(layer_idx % 2)
        kw["sliding_window"] = int(_int(cfg, "sliding_window", where, default=4096))
        kw["sliding_layers"] = tuple(range(0, L, 2))
    elif family == "gpt_oss":
        kw["sliding_window"] = int(_int(cfg, "sliding_window", where, default=128))
        types = cfg.get("layer_types")
        if types and not isinstance(types, list):
            raise ConfigError(f"{where}: config field 'layer_types' must be a list, got {types!r}")
        if types:
            kw["sliding_layers"] = tuple(i for i, t in enumerate(types) if t == "sliding_attention")
        else:  # alternating, starting with sliding (gpt-oss model card)
            kw["sliding_layers"] = tuple(range(0, L, 2))

    if family == "mixtral":
        E = _int(cfg, "num_local_experts", where)
        kw.update(num_experts=E, experts_per_token=_int(cfg, "num_experts_per_tok", where),
                  moe_intermediate_size=_int(cfg, "intermediate_size", where), moe_layers=tuple(range(L)))
    elif family == "qwen3_moe":
        E = _int(cfg, "num_experts", where)
        step = _int(cfg, "decoder_sparse_step", where, default=1)
        mlp_only = set(_int_list(cfg, "mlp_only_layers", where))
        kw.update(num_experts=E, experts_per_token=_int(cfg, "num_experts_per_tok", where),
                  moe_intermediate_size=_int(cfg, "moe_intermediate_size", where),
                  moe_layers=tuple(i for i in range(L) if i not in mlp_only and (i + 1) % step == 0))
    elif family == "gpt_oss":
        E = _int(cfg, "num_local_experts", where)
        kw.update(num_experts=E, experts_per_token=_int(cfg, "num_experts_per_tok", where),
                  moe_intermediate_size=_int(cfg, "intermediate_size", where), moe_layers=tuple(range(L)),
                  router_bias=True, expert_bias=True, attention_sinks=True, qkv_bias=attention_bias,
                  o_bias=attention_bias)
        if _mapping(cfg, "quantization_config", where).get("quant_method") == "mxfp4":
            kw["checkpoint_format"] = "mxfp4"
    elif family == "deepseek_v3":
        E = _int(cfg, "n_routed_experts", where)
        first_dense = _int(cfg, "first_k_dense_replace", where, default=0, minimum=0)
        freq = _int(cfg, "moe_layer_freq", where, default=1)
        kw.update(
            num_experts=E, experts_per_token=_int(cfg, "num_experts_per_tok", where),
            moe_intermediate_size=_int(cfg, "moe_intermediate_size", where),
            num_shared_experts=_int(cfg, "n_shared_experts", where, default=0, minimum=0),
            moe_layers=tuple(i for i in range(first_dense, L) if i % freq == 0),
            router_correction_bias=cfg.get("topk_method") == "noaux_tc",
            q_lora_rank=_int(cfg, "q_lora_rank", where, default=0, minimum=0),
            kv_lora_rank=_int(cfg, "kv_lora_rank", where),
            qk_nope_head_dim=_int(cfg, "qk_nope_head_dim", where),
            qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", where),
            v_head_dim=_int(cfg, "v_head_dim", where),
            mtp_layers=_int(cfg, "num_nextn_predict_layers", where, default=0, minimum=0, maximum=MAX_LAYERS),
        )
        kw["head_dim"] = kw["qk_nope_head_dim"] + kw["qk_rope_head_dim"]
        kw["intermediate_size"] = _int(cfg, "intermediate_size", where)
        q = _mapping(cfg, "quantization_config", where)
        if q.get("quant_method") == "fp8":
            kw["checkpoint_format"] = "fp8-block128"
    if kw.get("num_experts") and kw["experts_per_token"] > kw["num_experts"]:
        raise ConfigError(f"{where}: config field 'num_experts_per_tok' ({kw['experts_per_token']}) exceeds the "
                          f"number of experts ({kw['num_experts']})")
    if kw["intermediate_size"] == 0 and len(kw.get("moe_layers", ())) < L:
        raise ConfigError(f"{where}: config field 'intermediate_size' is missing (needed for family '{family}')")
    return ModelSpec(**kw)


def _mpt_spec(cfg, *, slug, name, where, hf_id, params_published, sources) -> ModelSpec:
    """MPT (MosaicML): fused Wqkv, GELU MLP (up, down), LayerNorm without bias, ALiBi, tied embeddings."""
    h = _int(cfg, "d_model", where)
    n_h = _int(cfg, "n_heads", where)
    L = _int(cfg, "n_layers", where, maximum=MAX_LAYERS)
    V = _int(cfg, "vocab_size", where)
    ratio = cfg.get("expansion_ratio", 4)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1e6:
        raise ConfigError(f"{where}: config field 'expansion_ratio' must be a positive number, got {ratio!r}")
    no_bias = _bool(cfg, "no_bias", True, where)
    attn_cfg = _mapping(cfg, "attn_config", where)
    if h < n_h:
        raise ConfigError(f"{where}: config field 'd_model' ({h}) is smaller than 'n_heads' ({n_h})")
    alibi = bool(attn_cfg.get("alibi", False))
    learned = _bool(cfg, "learned_pos_emb", True, where) and not alibi
    return ModelSpec(
        slug=slug, name=name or slug, family="mpt", hidden_size=h, num_layers=L, num_heads=n_h, num_kv_heads=n_h,
        head_dim=h // n_h, vocab_size=V, intermediate_size=int(ratio * h), tie_embeddings=True,
        qkv_bias=not no_bias, o_bias=not no_bias, mlp_gated=False, mlp_bias=not no_bias, norm_bias=not no_bias,
        position="alibi" if alibi else ("learned" if learned else "none"),
        max_context_tokens=_int(cfg, "max_seq_len", where, default=2048), hf_id=hf_id,
        params_published=params_published, sources=tuple(sources),
    )


@dataclass(frozen=True)
class GpuSpec:
    """An accelerator, in base units (bytes, bytes/s, FLOP/s)."""

    slug: str
    name: str
    vendor: str
    arch: str
    form: str
    memory_bytes: int                 # device total as the runtime reports it
    memory_label_gb: float
    mem_bw_bytes_per_s: float
    flop_per_s: Mapping[str, float]   # dense peak by compute precision: bf16, fp16, fp8, int8, int4, fp32
    interconnect: str
    intra_node_bytes_per_s: float     # GPU-to-GPU, one direction
    nvlink: bool
    node_gpus_max: int
    tdp_w: float | None
    confidence: str
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=(), compare=False)
    notes: str = ""

    def peak_flop_per_s(self, compute: str) -> float | None:
        """Dense peak for a compute precision, or None when the GPU has no such tensor path."""
        return self.flop_per_s.get(compute)

    def tensor_flop_per_s(self, compute: str) -> float:
        """Dense tensor-core peak FLOP/s that work in ``compute`` precision runs at (the one home of it).

        A format without its own tensor path (weight-only int4/int8 on GPUs without such units) runs
        on the 16-bit path: compute → fp16 → bf16 (datasheet dense figures, catalog/gpus/*.yaml).
        """
        for key in (compute, "fp16", "bf16"):
            peak = self.flop_per_s.get(key)
            if peak:
                return float(peak)
        raise ScenarioError(f"GPU {self.slug} has no dense {compute}, fp16 or bf16 peak in the catalog")


@dataclass(frozen=True)
class Precision:
    """A storage format for weights: bytes per parameter including scales and zero points."""

    slug: str
    name: str
    bits: float
    group_size: int                   # values sharing one scale (0: per-tensor or none)
    scale_bytes_per_group: float
    second_level_bytes_per_group: float
    compute: str                      # tensor-core path it runs on: fp32, bf16, fp16, fp8, int8, int4
    family: str                       # float | int | nf | gguf | mx
    sources: tuple[str, ...] = field(default=(), compare=False)
    notes: str = ""

    @property
    def bytes_per_param(self) -> float:
        """bits/8 + (scale + second-level bytes) / group size."""
        extra = 0.0
        if self.group_size:
            extra = (self.scale_bytes_per_group + self.second_level_bytes_per_group) / self.group_size
        return self.bits / 8.0 + extra

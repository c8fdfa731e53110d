"""Architecture math: modules with their real shapes, parameter counts, KV cache, FLOP.

Everything derives from one enumeration of the model's modules (``layer_modules``,
``model_modules``, ``mtp_modules``), each with its shape, bias and copy count. Parameter
totals, active parameters, LoRA shapes, quantized weight bytes and FLOP all read the same
list, so they cannot disagree.

Shapes follow the Hugging Face transformers model code of each family (``modeling_<family>.py``) and
reproduce the published parameter totals to the parameter; KV cache per the DeepSeek-V2 paper
(arXiv:2405.04434, MLA) and the GQA paper (arXiv:2305.13245); FLOP per Kaplan et al. 2020
(arXiv:2001.08361).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from llmsizing.choices import MLA_MODES
from llmsizing.errors import ScenarioError
from llmsizing.specs import ModelSpec


@dataclass(frozen=True)
class Module:
    """One weight-bearing module (or parameter vector) of a model.

    ``count`` copies exist (routed experts: E); ``active_count`` of them take part in one
    token's forward pass (routed experts: top-k). ``buffer`` marks tensors that the
    checkpoint stores but transformers registers as a buffer, not a parameter.
    """

    name: str
    group: str          # embedding | position | attention | mlp | experts | shared_experts | router | norm | lm_head | mtp
    kind: str           # linear | norm | embedding | vector
    in_features: int
    out_features: int
    bias: bool = False
    count: int = 1
    active_count: float = 1.0
    layer: int = -1     # -1: outside the decoder layers
    buffer: bool = False

    @property
    def weight_params(self) -> int:
        """Weight elements of one copy: in·out for linear and embedding, out for norms/vectors."""
        if self.kind in ("linear", "embedding"):
            return self.in_features * self.out_features
        return self.out_features

    @property
    def params_each(self) -> int:
        """Parameters of one copy, bias included."""
        return self.weight_params + (self.out_features if self.bias else 0)

    @property
    def params(self) -> int:
        """Parameters of all copies."""
        return self.count * self.params_each

    @property
    def params_active(self) -> float:
        """Parameters used by one token."""
        return self.active_count * self.params_each


def _linear(name, group, fan_in, fan_out, layer, bias=False, count=1, active=None):
    return Module(name, group, "linear", fan_in, fan_out, bias, count, count if active is None else active, layer)


def _norm(name, size, layer, group="norm", bias=False):
    return Module(name, group, "norm", 0, size, bias, 1, 1, layer)


def attention_modules(spec: ModelSpec, layer: int) -> list[Module]:
    """Attention projections of one layer (GQA/MHA, MPT fused Wqkv, or MLA)."""
    h, n_h, n_kv, d = spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim
    g = "attention"
    if spec.is_mla:
        qk = spec.qk_nope_head_dim + spec.qk_rope_head_dim
        mods = []
        if spec.q_lora_rank:
            mods += [
                _linear("q_a_proj", g, h, spec.q_lora_rank, layer),
                _norm("q_a_layernorm", spec.q_lora_rank, layer, group=g),
                _linear("q_b_proj", g, spec.q_lora_rank, n_h * qk, layer),
            ]
        else:
            mods.append(_linear("q_proj", g, h, n_h * qk, layer))
        mods += [
            _linear("kv_a_proj_with_mqa", g, h, spec.kv_lora_rank + spec.qk_rope_head_dim, layer),
            _norm("kv_a_layernorm", spec.kv_lora_rank, layer, group=g),
            _linear("kv_b_proj", g, spec.kv_lora_rank, n_h * (spec.qk_nope_head_dim + spec.v_head_dim), layer),
            _linear("o_proj", g, n_h * spec.v_head_dim, h, layer),
        ]
        return mods
    if spec.family == "mpt":
        return [
            _linear("Wqkv", g, h, 3 * h, layer, bias=spec.qkv_bias),
            _linear("out_proj", g, h, h, layer, bias=spec.o_bias),
        ]
    mods = [
        _linear("q_proj", g, h, n_h * d, layer, bias=spec.qkv_bias),
        _linear("k_proj", g, h, n_kv * d, layer, bias=spec.qkv_bias),
        _linear("v_proj", g, h, n_kv * d, layer, bias=spec.qkv_bias),
        _linear("o_proj", g, n_h * d, h, layer, bias=spec.o_bias),
    ]
    if spec.qk_norm:
        mods += [_norm("q_norm", d, layer, group=g), _norm("k_norm", d, layer, group=g)]
    if spec.attention_sinks:
        mods.append(Module("sinks", g, "vector", 0, n_h, False, 1, 1, layer))
    return mods


def mlp_modules(spec: ModelSpec, layer: int, inter: int, group: str = "mlp", count: int = 1,
                active: float | None = None, prefix: str = "") -> list[Module]:
    """A feed-forward block: gated (gate, up, down) or plain (up, down), ``count`` copies."""
    h, b = spec.hidden_size, spec.mlp_bias or (group == "experts" and spec.expert_bias)
    if spec.family == "gpt_oss" and group == "experts":
        return [
            _linear(prefix + "gate_up_proj", group, h, 2 * inter, layer, bias=True, count=count, active=active),
            _linear(prefix + "down_proj", group, inter, h, layer, bias=True, count=count, active=active),
        ]
    mods = []
    if spec.mlp_gated:
        mods.append(_linear(prefix + "gate_proj", group, h, inter, layer, bias=b, count=count, active=active))
    mods += [
        _linear(prefix + "up_proj", group, h, inter, layer, bias=b, count=count, active=active),
        _linear(prefix + "down_proj", group, inter, h, layer, bias=b, count=count, active=active),
    ]
    return mods


def moe_modules(spec: ModelSpec, layer: int) -> list[Module]:
    """Router, routed experts (E copies, top-k active) and shared experts of one MoE layer."""
    E, k = spec.num_experts, spec.experts_per_token
    router_name = "router" if spec.family == "gpt_oss" else "gate"
    mods = [_linear(router_name, "router", spec.hidden_size, E, layer, bias=spec.router_bias)]
    if spec.router_correction_bias:
        mods.append(Module("e_score_correction_bias", "router", "vector", 0, E, False, 1, 1, layer, buffer=True))
    mods += mlp_modules(spec, layer, spec.moe_intermediate_size, group="experts", count=E, active=k,
                        prefix="experts.")
    if spec.num_shared_experts:
        mods += mlp_modules(spec, layer, spec.moe_intermediate_size * spec.num_shared_experts,
                            group="shared_experts", prefix="shared_experts.")
    return mods


def layer_modules(spec: ModelSpec, layer: int) -> list[Module]:
    """All modules of decoder layer ``layer``: attention, feed-forward and norms."""
    mods = attention_modules(spec, layer)
    if layer in set(spec.moe_layers):
        mods += moe_modules(spec, layer)
    else:
        mods += mlp_modules(spec, layer, spec.intermediate_size)
    for i in range(spec.norms_per_layer):
        mods.append(_norm(f"norm_{i}", spec.hidden_size, layer, bias=spec.norm_bias))
    return mods


@lru_cache(maxsize=256)
def model_modules(spec: ModelSpec) -> tuple[Module, ...]:
    """Every module of the main model (MTP modules excluded), in order."""
    h, V = spec.hidden_size, spec.vocab_size
    mods = [Module("embed_tokens", "embedding", "embedding", V, h, False, 1, 1)]
    if spec.position == "learned":
        mods.append(Module("wpe", "position", "embedding", spec.max_context_tokens, h, False, 1, 1))
    for i in range(spec.num_layers):
        mods += layer_modules(spec, i)
    mods.append(_norm("norm", h, -1, bias=spec.norm_bias))
    if not spec.tie_embeddings:
        mods.append(_linear("lm_head", "lm_head", h, V, -1))
    return tuple(mods)


@lru_cache(maxsize=256)
def mtp_modules(spec: ModelSpec) -> tuple[Module, ...]:
    """DeepSeek-V3 multi-token-prediction modules (unique parameters; embedding and head are shared).

    Per module: enorm, hnorm, eh_proj (2h -> h), one MoE decoder layer, shared_head.norm
    (DeepSeek-V3 README_WEIGHTS.md: 11,610,068,224 for one module).
    """
    h = spec.hidden_size
    mods: list[Module] = []
    for j in range(spec.mtp_layers):
        layer = spec.num_layers + j
        mods += [_norm("enorm", h, layer, group="mtp"), _norm("hnorm", h, layer, group="mtp"),
                 _linear("eh_proj", "mtp", 2 * h, h, layer)]
        mods += [Module(m.name, "mtp", m.kind, m.in_features, m.out_features, m.bias, m.count, m.active_count,
                        layer, m.buffer) for m in attention_modules(spec, layer) + moe_modules(spec, layer)]
        mods += [_norm(f"norm_{i}", h, layer, group="mtp") for i in range(spec.norms_per_layer)]
        mods.append(_norm("shared_head.norm", h, layer, group="mtp"))
    return tuple(mods)


def params_total(spec: ModelSpec) -> int:
    """Parameters of the main model as the checkpoint stores them (MTP excluded, buffers included).

    Equals the published totals (model cards, safetensors index) to the parameter.
    """
    return sum(m.params for m in model_modules(spec))


def params_transformers(spec: ModelSpec) -> int:
    """What ``sum(p.numel() for p in model.parameters())`` gives in transformers.

    Differs from ``params_total`` only by checkpoint tensors that transformers registers as
    buffers (DeepSeek's ``e_score_correction_bias``: 58 × 256 = 14,848 for DeepSeek-V3/R1).
    """
    return sum(m.params for m in model_modules(spec) if not m.buffer)


def params_mtp(spec: ModelSpec) -> int:
    """Unique parameters of the multi-token-prediction modules (0 for models without MTP)."""
    return sum(m.params for m in mtp_modules(spec))


def params_active(spec: ModelSpec) -> int:
    """Parameters used per token, embedding included (routed experts count top-k of E).

    DeepSeek-V3/R1: 37,552,297,472 (DeepSeek-V3 README_WEIGHTS.md, 37B activated); Qwen3-235B-A22B: 22,190,763,520.
    """
    return round(sum(m.params_active for m in model_modules(spec)))


def params_by_group(spec: ModelSpec) -> dict[str, int]:
    """Parameters by component: embedding, attention, mlp, experts, shared_experts, router, norm, lm_head, mtp."""
    out: dict[str, int] = {}
    for m in model_modules(spec) + mtp_modules(spec):
        out[m.group] = out.get(m.group, 0) + m.params
    return out


def matmul_params_active(spec: ModelSpec) -> float:
    """Weight elements multiplied per token: active linear weights plus the output projection.

    The embedding lookup is not a matmul; a tied lm_head still is (h × V).
    """
    n = sum(m.active_count * m.weight_params for m in model_modules(spec) if m.kind == "linear")
    if spec.tie_embeddings:
        n += spec.hidden_size * spec.vocab_size
    return n


def stage_layer_counts(spec: ModelSpec, start: int, stop: int, window_aware: bool = True) -> tuple[int, int]:
    """(full-attention layers, sliding-window layers) among layers [start, stop).

    Sliding layers (``spec.sliding_layers``, from the config's sliding_window / layer_types) count only when
    ``window_aware``; otherwise every layer is taken at full attention.
    """
    if not (window_aware and spec.sliding_window):
        return stop - start, 0
    sliding = sum(1 for i in spec.sliding_layers if start <= i < stop)
    return stop - start - sliding, sliding


def kv_elems_per_token_per_layer(spec: ModelSpec, mla_mode: str = "latent") -> int:
    """Cached elements per token per attention layer.

    GQA/MHA: 2 · n_kv · head_dim (K and V). MLA latent (vLLM, SGLang): kv_lora_rank +
    qk_rope_head_dim = 576 for DeepSeek-V3. MLA decompressed (engines without MLA kernels):
    n_h · (qk_nope + qk_rope + v_head_dim) = 40,960 for DeepSeek-V3 (DeepSeek-V2 paper, arXiv:2405.04434 §2.1).
    """
    if mla_mode not in MLA_MODES:
        raise ScenarioError(f"MLA cache mode {mla_mode!r} is not one of {', '.join(MLA_MODES)}")
    if spec.is_mla:
        if mla_mode == "latent":
            return spec.kv_lora_rank + spec.qk_rope_head_dim
        return spec.num_heads * (spec.qk_nope_head_dim + spec.qk_rope_head_dim + spec.v_head_dim)
    return 2 * spec.num_kv_heads * spec.head_dim


def kv_cache_bytes_per_token(spec: ModelSpec, bytes_per_elem: float = 2.0, mla_mode: str = "latent") -> float:
    """KV-cache bytes per token over all layers, every layer at full context.

    bytes = L · kv_elems_per_token_per_layer · bytes_per_elem. At bf16: DeepSeek-R1 70,272;
    Llama-3.1-8B 131,072; R1-Distill-Qwen-7B 57,344 (from each config.json).
    """
    return spec.num_layers * kv_elems_per_token_per_layer(spec, mla_mode) * bytes_per_elem


def kv_cache_bytes(spec: ModelSpec, context_tokens: int, bytes_per_elem: float = 2.0,
                   mla_mode: str = "latent", window_aware: bool = True) -> float:
    """KV-cache bytes for one sequence of ``context_tokens``.

    Sliding-window layers hold at most ``sliding_window`` tokens when ``window_aware``
    (full layers × context + sliding layers × window; Gemma 2 report, arXiv:2408.00118).
    """
    if context_tokens < 0:
        raise ScenarioError(f"context_tokens must be >= 0, got {context_tokens}")
    per_layer = kv_elems_per_token_per_layer(spec, mla_mode) * bytes_per_elem
    full, sliding = stage_layer_counts(spec, 0, spec.num_layers, window_aware)
    held = min(context_tokens, spec.sliding_window) if sliding else 0
    return per_layer * (full * context_tokens + sliding * held)


def attention_flop_per_token_per_layer(spec: ModelSpec, context_tokens: float, mla_mode: str = "decompressed",
                                       decode: bool = False) -> float:
    """Score and value FLOP for one query token against ``context_tokens`` keys in one layer (all heads).

    GQA/MHA: 2 · n_h · (d_qk + d_v) · ctx (QKᵀ and AV, multiply-add = 2 FLOP). MLA in prefill, in
    training or with the decompressed cache: d_qk = nope + rope, d_v = v_head_dim. MLA decode with the
    latent cache (weights absorbed): scores over kv_lora_rank + rope and values over kv_lora_rank,
    2 · n_h · (2 · kv_lora_rank + rope) · ctx (DeepSeek-V2 paper, arXiv:2405.04434 §2.1.2; vLLM
    vllm/attention/backends/mla).
    """
    if spec.is_mla:
        if decode and mla_mode == "latent":
            per = 2.0 * spec.num_heads * (2 * spec.kv_lora_rank + spec.qk_rope_head_dim)
        else:
            per = 2.0 * spec.num_heads * (spec.qk_nope_head_dim + spec.qk_rope_head_dim + spec.v_head_dim)
    else:
        per = 2.0 * spec.num_heads * (spec.head_dim + spec.head_dim)
    return per * context_tokens


def attention_flop_per_token(spec: ModelSpec, context_tokens: float) -> float:
    """Score and value FLOP for one query token attending to ``context_tokens`` keys, all layers.

    Σ over layers of ``attention_flop_per_token_per_layer`` (the decompressed MLA form, as in prefill
    and training); sliding layers see at most the window.
    """
    per_layer = attention_flop_per_token_per_layer(spec, 1.0)
    sliding = set(spec.sliding_layers) if spec.sliding_window else set()
    total = 0.0
    for i in range(spec.num_layers):
        ctx = min(context_tokens, spec.sliding_window) if i in sliding else context_tokens
        total += per_layer * ctx
    return total


def forward_flop_per_token(spec: ModelSpec, context_tokens: float = 0.0) -> float:
    """Forward FLOP for one token at a given context: 2 · matmul_params_active + attention.

    Kaplan et al. 2020 (arXiv:2001.08361) Table 1 for the 2N term.
    """
    return 2.0 * matmul_params_active(spec) + attention_flop_per_token(spec, context_tokens)

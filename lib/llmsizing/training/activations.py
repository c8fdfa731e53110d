"""Activation memory of fine-tuning: the tensors autograd saves for backward, layer by layer.

Each decoder layer is walked in forward order and every tensor that a PyTorch autograd node
saves is listed once (``Saved``), with its elements per token and bytes per element. Tensors
that several nodes save (the norm output read by q/k/v, a flash-attention output that is also
o_proj's input) share a ``key`` and are counted once — the ground-truth harness
(``tests/groundtruth/``) counts unique storages the same way.

Rules (eager PyTorch, ``derivatives.yaml`` saves only what the gradients that are needed use):

- **Linear** ``y = x Wᵀ``: the weight gradient needs ``x``; the input gradient needs ``W``. A
  trainable weight saves ``x``; a frozen weight (LoRA/QLoRA base) saves nothing beyond ``W``,
  which is resident anyway. bitsandbytes ``MatMul4Bit`` saves only the packed 4-bit weight.
- **LoRA** ``y = base(x) + B(A(dropout(x)))·α/r`` (PEFT ``lora/layer.py``): ``A`` saves its input,
  ``B`` saves the rank-r intermediate. The input is the shared ``x`` only when no copy is made;
  PEFT casts ``x`` to the fp32 adapter dtype and autocast casts it back (mixed-bf16), and a
  dropout > 0 makes a masked copy plus a bool mask — each adapted module then saves its own copy.
- **RMSNorm** (transformers ``LlamaRMSNorm``, torchtune ``RMSNorm``): the fp32 upcast of the input
  (``pow`` and the ``rsqrt`` multiply save it) and ``rstd`` (1 fp32 per token); a trainable
  weight also saves the normalized bf16 tensor.
- **Attention**: flash / SDPA kernels save q, k, v, the output and the fp32 log-sum-exp (no s²
  matrix). The flash kernels allocate their output in (b, s, h, d) order, so transformers'
  ``transpose(1, 2).contiguous()`` is free and o_proj saves the same storage. MLA differs: its
  value is a view of kv_b_proj's output (the whole storage stays) and its output is sliced to
  ``v_head_dim`` and copied before o_proj. Eager attention saves the fp32 softmax and its bf16
  cast (``n_h · s`` per token each), the ``repeat_kv`` copies and o_proj's copied input.
- **Gated MLP** ``down(act(gate(x)) · up(x))``: SiLU/GELU saves ``gate(x)``; the product saves
  ``act`` and ``up(x)``; ``down`` saves the product only when trainable or adapted.
- **MoE** (transformers Mixtral / Qwen3-MoE / DeepSeek-V3): fp32 router probabilities
  (E per token; DeepSeek's router also saves an fp32 copy of its input when it trains); per routed
  token (top-k copies): the gathered input (when the experts train or are adapted), the expert
  MLP tensors, the expert output (saved by the routing-weight multiply) and the weighted output
  (saved by ``index_add_``).
- **torch.compile** (``setup.compiled``): Inductor's min-cut partitioner keeps matmul outputs and
  norm inputs and recomputes the element-wise rest (Ansel et al. 2024, PyTorch 2, ASPLOS §4.2 /
  ``torch/_functorch/partitioners.py::min_cut_rematerialization_partition``): per layer the norm
  inputs + rstd, q/k/v/out/lse, the MLP gate and up outputs, the LoRA intermediates.

Tensor parallelism (Korthikanti et al. 2022, arXiv:2205.05198 Table 2): tensors inside the
attention/MLP blocks are split by ``tp``; the layer input, norm tensors and the inputs of
column-parallel linears are replicated unless sequence parallelism splits them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmsizing.architecture import Module, layer_modules
from llmsizing.assumptions import Assumptions
from llmsizing.lora import lora_target_modules
from llmsizing.specs import ModelSpec
from llmsizing.training.layout import check_layout, stage_layers
from llmsizing.training.terms import fused_linear_ce_bytes

ACT_BYTES = {"mixed-bf16": 2, "bf16": 2, "fp32": 4}
FP32_BYTES = 4


@dataclass(frozen=True)
class Saved:
    """One tensor autograd keeps for backward: ``elems_per_token`` × ``bytes_per_elem`` per token."""

    name: str
    part: str              # norm | attention | mlp | experts | router | lora | checkpoint | head
    key: str               # tensors with the same key are one storage
    elems_per_token: float
    bytes_per_elem: float
    sharded: bool = True   # split by tensor parallelism (else replicated unless sequence parallel)

    @property
    def bytes_per_token(self) -> float:
        return self.elems_per_token * self.bytes_per_elem


class _Inventory:
    """Collects ``Saved`` entries of one layer, one per key."""

    def __init__(self, spec: ModelSpec, setup: Any, a: Assumptions, layer: int,
                 lora_names: frozenset[str]):
        self.spec, self.setup, self.a, self.layer = spec, setup, a, layer
        self.act = ACT_BYTES[setup.precision]
        self.full = setup.method == "full"
        self.compiled = bool(getattr(setup, "compiled", False))
        self.lora_names = lora_names
        terms = setup.terms
        self.adapter_fp32 = terms.adapter_fp32
        self.bnb_saves_input = terms.bnb_saves_input
        self.frozen_input = False
        self.items: dict[str, Saved] = {}

    def add(self, name: str, part: str, elems: float, nbytes: float, sharded: bool = True,
            key: str | None = None) -> None:
        k = key or name
        if k not in self.items and elems > 0:
            self.items[k] = Saved(name, part, k, float(elems), float(nbytes), sharded)

    # -- building blocks ---------------------------------------------------------------
    def norm(self, name: str, size: float, part: str = "norm", sharded: bool = False, groups: int = 1) -> str:
        """RMSNorm over ``size`` elements per token (``groups`` rows, e.g. heads); returns its output key."""
        trainable = self.full
        weight_fp32 = self.spec.family == "gemma2"  # Gemma2RMSNorm multiplies by (1 + w) in fp32
        if self.frozen_input:
            self.frozen_input = False
            return f"{name}.out"
        if self.compiled:
            self.add(f"{name}.input", part, size, self.act, sharded)
        else:
            up = self.a["norm_upcast_bytes"] if self.act < FP32_BYTES else self.act
            self.add(f"{name}.upcast", part, size, up, sharded)
            if trainable:
                self.add(f"{name}.normalized", part, size, FP32_BYTES if weight_fp32 else self.act, sharded)
        self.add(f"{name}.rstd", part, groups, FP32_BYTES, sharded)
        return f"{name}.out"

    def linear_input(self, m: Module, in_key: str, elems: float, part: str, sharded: bool,
                     copies: float = 1.0) -> None:
        """What a linear layer saves for its weight gradient (trainable) or its LoRA adapter."""
        adapted = m.name in self.lora_names
        if self.compiled:
            if adapted:
                self.add(f"{m.name}.lora_mid", "lora", copies * self.setup.lora_rank, self.act, False)
            return
        if self.full or (self.bnb_saves_input and m.group != "router"):
            # bitsandbytes < 0.43.2 MatMul4Bit.forward: ctx.tensors = (A, B) saved every 4-bit input
            self.add(in_key, part, copies * elems, self.act, sharded, key=in_key)
        if adapted:
            dropout = float(getattr(self.setup, "lora_dropout", 0.0))
            # PEFT lora Linear.forward casts x to the adapter dtype: fp32 adapters save their own fp32 copy
            adapter = FP32_BYTES if self.adapter_fp32 else self.act
            if dropout > 0 or self.setup.precision == "mixed-bf16" or self.adapter_fp32:
                nbytes = adapter + (self.a["dropout_mask_bytes"] if dropout > 0 else 0)
                self.add(f"{m.name}.lora_input", "lora", copies * elems, nbytes, sharded)
            else:
                self.add(in_key, part, copies * elems, self.act, sharded, key=in_key)
            self.add(f"{m.name}.lora_mid", "lora", copies * self.setup.lora_rank, adapter, False)


def _attention(inv: _Inventory, mods: dict[str, Module]) -> None:
    spec, s, act = inv.spec, inv.setup, inv.act
    h = spec.hidden_size
    x = inv.norm("attn_norm", h)
    kernel = s.attention_kernel
    if spec.is_mla:
        n_h, qk, v_d = spec.num_heads, spec.qk_nope_head_dim + spec.qk_rope_head_dim, spec.v_head_dim
        for name in ("q_a_proj", "q_proj", "kv_a_proj_with_mqa"):
            if name in mods:
                inv.linear_input(mods[name], x, h, "attention", False)
        if "q_a_proj" in mods:
            qa = inv.norm("q_a_layernorm", spec.q_lora_rank, part="attention")
            inv.linear_input(mods["q_b_proj"], qa, spec.q_lora_rank, "attention", False)
        kva = inv.norm("kv_a_layernorm", spec.kv_lora_rank, part="attention")
        inv.linear_input(mods["kv_b_proj"], kva, spec.kv_lora_rank, "attention", False)
        # value is a view of kv_b_proj's output (k_nope and v per head): the saved storage is all of it
        q_e, k_e, v_e, o_e = n_h * qk, n_h * qk, n_h * (spec.qk_nope_head_dim + v_d), n_h * v_d
    else:
        n_h, d = spec.num_heads, spec.head_dim
        for name in ("q_proj", "k_proj", "v_proj", "Wqkv"):
            if name in mods:
                inv.linear_input(mods[name], x, h, "attention", False)
        if spec.qk_norm:
            inv.norm("q_norm", n_h * d, part="attention", sharded=True, groups=n_h)
            inv.norm("k_norm", spec.num_kv_heads * d, part="attention", sharded=True, groups=spec.num_kv_heads)
        kv = spec.num_kv_heads * d
        q_e, k_e, v_e, o_e = n_h * d, kv, kv, n_h * d
    o_in = "attn.out"
    if kernel == "eager":
        # transformers eager_attention_forward: repeat_kv copies k and v to every query head
        # (MLA already has per-head k and v); matmul(q, kᵀ) saves q and k, softmax(dtype=fp32)
        # saves its output, matmul(probs.to(bf16), v) saves the bf16 probabilities and v.
        if not spec.is_mla:
            k_e = v_e = spec.num_heads * spec.head_dim
        inv.add("attn.q", "attention", q_e, act)
        inv.add("attn.k", "attention", k_e, act)
        inv.add("attn.v", "attention", v_e, act)
        if not inv.compiled:
            inv.add("attn.probs_fp32", "attention", spec.num_heads * s.seq_len, FP32_BYTES)
        if act < FP32_BYTES or inv.compiled:
            inv.add("attn.probs", "attention", spec.num_heads * s.seq_len, act)
        o_in = "attn.o_input"
    else:
        inv.add("attn.q", "attention", q_e, act)
        inv.add("attn.k", "attention", k_e, act)
        inv.add("attn.v", "attention", v_e, act)
        inv.add("attn.out", "attention", o_e, act)
        inv.add("attn.lse", "attention", spec.num_heads, FP32_BYTES)
        if spec.is_mla and not inv.compiled:
            o_in = "attn.o_input"
    o_name = "out_proj" if "out_proj" in mods else "o_proj"
    inv.linear_input(mods[o_name], o_in, o_e, "attention", True)
    if spec.norms_per_layer == 4:  # Gemma-2 post-attention norm on the o_proj output
        inv.norm("post_attn_norm", h)


def _gated_mlp(inv: _Inventory, mods: dict[str, Module], x: str, prefix: str, inter: float, part: str,
               copies: float = 1.0) -> None:
    """One gated (or GELU) MLP applied to ``copies`` tokens per token."""
    act, h = inv.act, inv.spec.hidden_size
    gate, up, down = mods.get(prefix + "gate_proj"), mods.get(prefix + "up_proj"), mods[prefix + "down_proj"]
    fused = mods.get(prefix + "gate_up_proj")
    for m in (gate, up, fused):
        if m is not None:
            inv.linear_input(m, x, h, part, False, copies)
    if inv.compiled:
        inv.add(f"{part}.gate_out", part, copies * inter, act)
        if gate is not None or fused is not None:
            inv.add(f"{part}.up_out", part, copies * inter, act)
    elif gate is not None or fused is not None:
        inv.add(f"{part}.gate_out", part, copies * inter, act)   # SiLU / GELU input
        inv.add(f"{part}.act", part, copies * inter, act)        # product: act(gate) ...
        inv.add(f"{part}.up_out", part, copies * inter, act)     # ... and up(x)
    else:
        inv.add(f"{part}.up_out", part, copies * inter, act)     # GELU input (MPT)
    inv.linear_input(down, f"{part}.down_input", inter, part, True, copies)


def _moe(inv: _Inventory, mods: dict[str, Module], x: str) -> None:
    spec, act, h = inv.spec, inv.act, inv.spec.hidden_size
    router = next(m for m in mods.values() if m.group == "router" and m.kind == "linear")
    if spec.family == "deepseek_v3" and inv.full and not inv.compiled:
        # DeepseekV3TopkRouter: F.linear(hidden_states.type(float32), weight.type(float32))
        inv.add("router.input_fp32", "router", h, FP32_BYTES, False)
    else:
        inv.linear_input(router, x, h, "router", False)
    inv.add("router.probs", "router", spec.num_experts, FP32_BYTES, False)
    k = spec.experts_per_token * inv.a["moe_routing_imbalance"]
    experts = {n: m for n, m in mods.items() if m.group == "experts"}
    # the gathered copy hidden_states[top_x] is saved only by expert linears that need it
    _gated_mlp(inv, experts, "experts.input", "experts.", spec.moe_intermediate_size, "experts", k)
    inv.add("experts.output", "experts", k * h, act, False)  # saved by the routing-weight multiply
    if not inv.compiled:  # index_add_(0, idx, weighted) saves its source (derivatives.yaml: expand_as(source))
        inv.add("experts.weighted_output", "experts", k * h, act, False)
    shared = {n: m for n, m in mods.items() if m.group == "shared_experts"}
    if shared:
        _gated_mlp(inv, shared, x, "shared_experts.", spec.moe_intermediate_size * spec.num_shared_experts,
                   "shared_experts")


def layer_saved_tensors(spec: ModelSpec, setup: Any, layer: int, assumptions: Assumptions | None = None,
                        lora_names: frozenset[str] | None = None) -> list[Saved]:
    """Every tensor decoder layer ``layer`` saves for backward, once per storage.

    ``lora_names``: names of the adapted modules of this layer (default: from ``setup``).
    """
    a = assumptions if assumptions is not None else Assumptions()
    mods = {m.name: m for m in layer_modules(spec, layer)}
    if lora_names is None:
        lora_names = frozenset()
        if setup.method != "full":
            lora_names = frozenset(m.name for m in lora_target_modules(spec, setup.lora_targets) if m.layer == layer)
    inv = _Inventory(spec, setup, a, layer, lora_names)
    # A frozen embedding gives layer 0 an input that does not require grad, so its first norm
    # saves nothing; transformers' gradient checkpointing calls enable_input_require_grads().
    inv.frozen_input = layer == 0 and setup.method != "full" and not setup.gradient_checkpointing
    _attention(inv, mods)
    x = inv.norm("mlp_norm", spec.hidden_size)
    if layer in set(spec.moe_layers):
        _moe(inv, mods, x)
    else:
        _gated_mlp(inv, mods, x, "", spec.intermediate_size, "mlp")
    if spec.norms_per_layer == 4:
        inv.norm("post_mlp_norm", spec.hidden_size)
    return list(inv.items.values())


def _per_token(items: list[Saved], tp: int, sequence_parallel: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for it in items:
        div = tp if (it.sharded or sequence_parallel) else 1
        out[it.part] = out.get(it.part, 0.0) + it.bytes_per_token / div
    return out


def checkpoint_bytes_per_token(spec: ModelSpec, setup: Any) -> float:
    """Gradient checkpointing keeps each layer's input: ``h`` activations per token.

    transformers ``GradientCheckpointingLayer`` / torch.utils.checkpoint keep the inputs of each
    checkpointed call (Chen et al. 2016, arXiv:1604.06174 §3); Korthikanti et al. 2022 Table 2
    ("full recompute": 2sbh per layer); split by tp only with sequence parallelism.

    With ``peft.prepare_model_for_kbit_training`` the embedding is fp32, so the residual stream
    and every checkpointed input are fp32 (bitsandbytes ``Linear4bit.forward`` casts back to the
    input dtype): 4 B per element.
    """
    div = setup.tp if setup.sequence_parallel else 1
    act = FP32_BYTES if setup.terms.kbit_prep else ACT_BYTES[setup.precision]
    return spec.hidden_size * act / div


def head_saved_bytes_per_token(spec: ModelSpec, setup: Any, assumptions: Assumptions | None = None) -> float:
    """Final norm and lm_head input (the head's own saves, not the logits)."""
    a = assumptions if assumptions is not None else Assumptions()
    inv = _Inventory(spec, setup, a, -1, frozenset())
    out = inv.norm("final_norm", spec.hidden_size, part="head")
    if setup.method == "full" and not inv.compiled:
        inv.add(out, "head", spec.hidden_size, inv.act, False)
    div = setup.tp if setup.sequence_parallel else 1
    return sum(it.bytes_per_token for it in inv.items.values()) / div


def logits_peak_bytes_per_token(spec: ModelSpec, setup: Any, assumptions: Assumptions | None = None) -> float:
    """Bytes per token alive around the output head and cross-entropy at their peak.

    V = vocab_size / tp (vocabulary-parallel head), a = activation bytes, n = chunks:

    - eager, one piece (transformers ``ForCausalLMLoss``: ``logits.float()`` then
      ``F.cross_entropy``): forward holds bf16 logits + fp32 copy + saved fp32 log-softmax
      (a + 8)·V; backward holds the saved log-softmax, its incoming gradient and
      log_softmax_backward's result, 12·V (the bf16 logits were freed with the outputs).
      Peak max((a + 8)·V, 12·V).
    - eager, chunked (torchtune ``CEWithChunkedOutputLoss``): bf16 chunks a·V + every chunk's saved
      fp32 log-softmax 4·V + one chunk's fp32 copy 4·V/n; backward 4·V + 8·V/n.
    - compiled, one piece: the fused loss keeps the bf16 logits and a per-row log-sum-exp;
      the fp32 upcast is a transient: a·V + 4·V forward, backward a·V + 4·V + a·V.
    - compiled, chunked: a·V + 8·V/n.

    With ``logits_upcast_fp32`` off (or a framework whose loss does not upcast, LitGPT), the fp32
    terms take the activation dtype instead. A fused linear cross-entropy (Liger, Cut
    Cross-Entropy, Unsloth) never holds the logits: ``terms.fused_linear_ce_bytes`` (per micro-batch,
    returned here per token).
    """
    a_ = assumptions if assumptions is not None else Assumptions()
    V = spec.vocab_size / setup.tp
    a = ACT_BYTES[setup.precision]
    terms = setup.terms
    if terms.loss_impl == "fused-linear":
        T = max(1, setup.tokens_per_gpu)
        return fused_linear_ce_bytes(V, spec.hidden_size, T, a) / T
    f32 = FP32_BYTES if a_["logits_upcast_fp32"] and terms.loss_fp32_upcast else a
    compiled = bool(getattr(setup, "compiled", False))
    if terms.loss_impl == "chunked":
        n = a_["ce_chunks"]
        if compiled:
            return (a + 2 * f32 / n) * V
        return max(a + f32 + f32 / n, f32 + 2 * f32 / n) * V
    if compiled:
        return max(a + f32, 2 * a + f32) * V
    return max(a + 2 * f32, 3 * f32) * V


def rope_saved_bytes_per_token(spec: ModelSpec, setup: Any) -> float:
    """cos and sin of the rotary embedding, computed once per forward and saved by every layer's multiply."""
    if spec.position != "rope":
        return 0.0
    d = spec.qk_rope_head_dim if spec.is_mla else spec.head_dim
    return 2 * d * ACT_BYTES[setup.precision]


def layer_backward_transient_bytes_per_token(spec: ModelSpec, setup: Any, layer: int) -> float:
    """Gradient buffers of one layer's backward at its larger block: max(MLP, attention) + 2·h·a
    (``layer_backward_transient_parts_per_token``)."""
    mlp, attn, resid = layer_backward_transient_parts_per_token(spec, setup, layer)
    return max(mlp, attn) + resid


def layer_backward_transient_parts_per_token(spec: ModelSpec, setup: Any, layer: int
                                             ) -> tuple[float, float, float]:
    """Gradient buffers alive while one layer back-propagates (besides its saved tensors).

    MLP: the gradient of the product, then of act(gate) and up (3 intermediates); attention:
    dq, dk, dv, d_out plus flash-attention's fp32 dq accumulator; both with the residual-stream
    gradient and the gradient flowing out of the layer (2·h). Derived from the order autograd runs
    ``MulBackward0``/``SiluBackward0`` and ``_flash_attention_backward`` (flash-attn csrc
    ``mha_bwd`` allocates ``dq_accum`` in fp32). Returns (MLP, attention, residual) bytes per token.
    """
    a = ACT_BYTES[setup.precision]
    if layer in set(spec.moe_layers):
        inter = spec.moe_intermediate_size * spec.experts_per_token
        inter += spec.moe_intermediate_size * spec.num_shared_experts
    else:
        inter = spec.intermediate_size
    mlp = 3 * inter * a
    if spec.is_mla:
        q = spec.num_heads * (spec.qk_nope_head_dim + spec.qk_rope_head_dim)
        kv = q + spec.num_heads * spec.v_head_dim
        o = spec.num_heads * spec.v_head_dim
    else:
        q = spec.num_heads * spec.head_dim
        kv = 2 * spec.num_kv_heads * spec.head_dim
        o = q
    attn = (q + kv + o) * a + q * FP32_BYTES
    if setup.attention_kernel == "eager":
        attn += 2 * spec.num_heads * setup.seq_len * FP32_BYTES
    return mlp / setup.tp, attn / setup.tp, 2 * spec.hidden_size * a / setup.tp


# ----------------------------------------------------------------------------- per GPU


_MLP_PARTS = ("mlp", "experts", "shared_experts", "router")


def _lora_names_by_layer(spec: ModelSpec, setup: Any) -> dict[int, frozenset[str]]:
    if setup.method == "full":
        return {}
    out: dict[int, set[str]] = {}
    for m in lora_target_modules(spec, setup.lora_targets):
        out.setdefault(m.layer, set()).add(m.name)
    return {k: frozenset(v) for k, v in out.items()}


def stage_activation_bytes(spec: ModelSpec, setup: Any, stage: int,
                           a: Assumptions | None = None) -> dict[str, float]:
    """Activation bytes on one GPU of pipeline stage ``stage``, by part and phase.

    T = micro_batch · seq_len / cp tokens per micro-batch, ``pp − stage`` micro-batches in
    flight (1F1B). Without checkpointing every layer's saved tensors stay until its backward;
    with it each layer keeps its input and one layer at a time is recomputed (Chen et al. 2016).
    Keys: ``layers`` (saved tensors or checkpointed inputs, LoRA tensors excluded), ``lora``,
    ``head`` (final norm / lm_head input), ``logits`` (peak around the loss, last stage only),
    ``recompute_peak`` (one layer recomputed with its gradient buffers, or only the buffers),
    ``loss_phase`` and ``backward_phase`` (activation bytes alive in those two moments).
    """
    a = a if a is not None else Assumptions()
    T = setup.tokens_per_gpu
    inflight = setup.pp - stage
    lora_names = _lora_names_by_layer(spec, setup)
    cache: dict[tuple, tuple[dict[str, float], float]] = {}
    sig_down: dict[tuple, float] = {}   # saved bytes per token of down_proj's input (freed first in backward)
    layers = lora = recompute = 0.0
    for i in stage_layers(spec, setup, stage):
        sig = (i in set(spec.moe_layers), lora_names.get(i, frozenset()), i == 0)
        if sig not in cache:
            items = layer_saved_tensors(spec, setup, i, a, lora_names=sig[1])
            parts = _per_token(items, setup.tp, setup.sequence_parallel)
            cache[sig] = (parts, layer_backward_transient_parts_per_token(spec, setup, i))
            sig_down[sig] = sum(it.bytes_per_token / (setup.tp if (it.sharded or setup.sequence_parallel) else 1)
                                for it in items if it.key.endswith("down_input") or it.name.startswith("down_proj."))
        parts, (mlp_t, attn_t, resid_t) = cache[sig]
        transient = max(mlp_t, attn_t) + resid_t
        saved = sum(parts.values()) * T
        if setup.gradient_checkpointing:
            layers += checkpoint_bytes_per_token(spec, setup) * T * inflight
            # autograd runs the MLP backward first and frees the MLP's recomputed tensors before the
            # attention backward: whole layer + MLP buffers, or the rest + attention buffers. down_proj,
            # the MLP's last op, back-propagates first and frees its saved input before the gate/up
            # product's gradient buffers exist.
            mlp_saved = sum(parts.get(k, 0.0) for k in _MLP_PARTS) * T
            down = sig_down[sig] * T
            recompute = max(recompute, saved - down + (mlp_t + resid_t) * T,
                            saved - mlp_saved + (attn_t + resid_t) * T)
        else:
            lora += parts.get("lora", 0.0) * T * inflight
            layers += (saved - parts.get("lora", 0.0) * T) * inflight
            recompute = max(recompute, transient * T)
    layers += rope_saved_bytes_per_token(spec, setup) * T * inflight
    offloaded = 0.0
    if setup.activation_offload:
        n = max(1, len(stage_layers(spec, setup, stage)) * inflight)
        offloaded = layers + lora
        layers, lora = layers / n, lora / n  # the layer being brought back
        offloaded -= layers + lora
    last = stage == setup.pp - 1
    head = head_saved_bytes_per_token(spec, setup, a) * T if last else 0.0
    logits = logits_peak_bytes_per_token(spec, setup, a) * T if last else 0.0
    return {
        "layers": layers, "lora": lora, "head": head, "logits": logits, "recompute_peak": recompute,
        "loss_phase": layers + lora + head + logits,
        "backward_phase": layers + lora + head + recompute,
        "offloaded": offloaded,
    }


def activation_bytes(spec: ModelSpec, setup: Any, assumptions: Assumptions | dict | None = None
                     ) -> dict[str, float]:
    """Activation bytes per GPU on the pipeline stage that holds the most, by part.

    {"layers", "lora", "logits" (head + loss peak), "recompute_peak", "total"}; ``total`` is the
    larger of the two moments activations peak in — end of forward with the loss
    (layers + lora + logits) and the first recomputed layer's backward (layers + lora +
    recompute_peak) — not the sum of the parts.
    """
    a = Assumptions.of(assumptions)
    check_layout(spec, setup)
    best: dict[str, float] | None = None
    for stage in range(setup.pp):
        s = stage_activation_bytes(spec, setup, stage, a)
        total = max(s["loss_phase"], s["backward_phase"])
        if best is None or total > best["total"]:
            best = {"layers": s["layers"], "lora": s["lora"], "logits": s["head"] + s["logits"],
                    "recompute_peak": s["recompute_peak"], "total": total}
    return best

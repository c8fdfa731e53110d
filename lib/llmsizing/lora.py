"""LoRA / QLoRA adapter shapes, read from the model's real module list.

A LoRA adapter on a linear layer ``W: in -> out`` adds ``A: in -> r`` and ``B: r -> out``
(Hu et al. 2021, arXiv:2106.09685 §4.1), so ``r · (in + out)`` trainable parameters per adapted
copy. Routed experts are adapted copy by copy (``count`` = E adapters per expert linear), as PEFT
does when its target names match ``experts.<i>.<name>``.

Target selections (``lora_targets``):

- ``all-linear`` — every linear layer except the output head and the MoE routers. PEFT's rule
  (``peft/tuners/tuners_utils.py::_maybe_include_all_linear_layers``) takes every ``nn.Linear``
  leaf name except the output embedding; it would also pick up a router that transformers builds
  as ``nn.Linear`` (Mixtral/Qwen3-MoE ``gate``). Routers are left out here on purpose: adapting
  them is not what users mean by "all linear" and it changes no estimate by more than a few
  thousand parameters per layer. DeepSeek's MTP module (``eh_proj``) is not part of the main model.
- ``attention`` — every projection of the attention block (q/k/v/o, MLA's q_a/q_b/kv_a/kv_b,
  MPT's Wqkv/out_proj).
- ``q,v`` — the query and value projections (PEFT's default for Llama-family models). On MLA
  models these are ``q_b_proj`` (or ``q_proj``) and ``kv_b_proj``; on MPT the fused ``Wqkv``.
- a comma-separated list of module leaf names (``q_proj,k_proj,down_proj``); PEFT matches a name
  against the end of the module path, so ``gate_proj`` also selects ``experts.gate_proj`` and
  ``shared_experts.gate_proj``. torchtune's names (``output_proj``, ``w1``/``w2``/``w3``) and
  Mixtral's expert names (``w1``/``w2``/``w3``) are accepted as aliases. A name the model does not
  have raises ``ScenarioError`` listing the model's linear module names.
"""

from __future__ import annotations

from llmsizing.architecture import Module, model_modules
from llmsizing.errors import ScenarioError
from llmsizing.specs import ModelSpec

PRESETS = ("all-linear", "attention", "q,v")

# torchtune (torchtune/modules/peft, FeedForward w1/w2/w3, MultiHeadAttention output_proj) and
# transformers' Mixtral expert names -> the names architecture.py uses.
ALIASES = {
    "output_proj": "o_proj",
    "w1": "gate_proj",
    "w3": "up_proj",
    "w2": "down_proj",
}


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def linear_module_names(spec: ModelSpec) -> list[str]:
    """The distinct linear module names of the model (lm_head and routers included), in model order."""
    seen: dict[str, None] = {}
    for m in model_modules(spec):
        if m.kind == "linear":
            seen.setdefault(m.name, None)
    return list(seen)


def _adaptable(m: Module) -> bool:
    """Linear layers inside the decoder that LoRA may adapt (not the head, not routers)."""
    return m.kind == "linear" and m.group not in ("lm_head", "router", "mtp")


def _names_for_qv(spec: ModelSpec) -> set[str]:
    if spec.family == "mpt":
        return {"Wqkv"}
    if spec.is_mla:
        return {"q_b_proj" if spec.q_lora_rank else "q_proj", "kv_b_proj"}
    return {"q_proj", "v_proj"}


def _explicit(spec: ModelSpec, targets: str) -> tuple[set[str], set[str]]:
    """Requested leaf names (aliases resolved) and full names; raises on names the model lacks."""
    names = [t.strip() for t in targets.split(",")]
    if any(not n for n in names):
        raise ScenarioError(f"lora_targets {targets!r} has an empty name; give comma-separated module names")
    available = linear_module_names(spec)
    leaves = {_leaf(n) for n in available}
    wanted: set[str] = set()
    for n in names:
        key = n if (n in available or n in leaves) else ALIASES.get(n, n)
        if key not in available and key not in leaves:
            raise ScenarioError(
                f"LoRA target {n!r} is not a linear module of {spec.slug}; its linear modules are: "
                f"{', '.join(available)} (or one of {', '.join(PRESETS)})"
            )
        wanted.add(key)
    return wanted, set(available)


def lora_target_modules(spec: ModelSpec, targets: str) -> list[Module]:
    """The modules (every layer, every copy) that receive a LoRA adapter under ``targets``.

    Raises ``ScenarioError`` for an empty selection or a module name the model does not have;
    the message lists the model's linear module names.
    """
    if not isinstance(targets, str) or not targets.strip():
        raise ScenarioError(f"lora_targets must be one of {', '.join(PRESETS)} or comma-separated module names, "
                            f"got {targets!r}")
    t = targets.strip()
    mods = [m for m in model_modules(spec) if _adaptable(m)]
    if t == "all-linear":
        chosen = mods
    elif t == "attention":
        chosen = [m for m in mods if m.group == "attention"]
    elif t.replace(" ", "") in ("q,v", "v,q"):
        names = _names_for_qv(spec)
        chosen = [m for m in mods if m.name in names]
    else:
        wanted, _ = _explicit(spec, t)
        chosen = [m for m in mods if m.name in wanted or _leaf(m.name) in wanted]
        if not chosen:
            raise ScenarioError(f"lora_targets {targets!r} selects only the head or routers of {spec.slug}, "
                                "which LoRA here does not adapt")
    if not chosen:
        raise ScenarioError(f"lora_targets {targets!r} selects no linear layer of {spec.slug}")
    return chosen


def lora_matrix_elems(m: Module, rank: int) -> tuple[int, int]:
    """Elements of one copy's adapter matrices: A (r × in) and B (out × r) (Hu et al. 2021 §4.1)."""
    return rank * m.in_features, rank * m.out_features


def lora_params_per_copy(m: Module, rank: int) -> int:
    """Adapter parameters on one copy of a module: r · (in + out) (Hu et al. 2021, arXiv:2106.09685 §4.1)."""
    return rank * (m.in_features + m.out_features)


def lora_params_per_module(m: Module, rank: int) -> int:
    """Adapter parameters on all copies of one module: count · r · (in + out)."""
    return m.count * lora_params_per_copy(m, rank)


def lora_params(spec: ModelSpec, targets: str, rank: int) -> int:
    """Trainable LoRA parameters: Σ over adapted modules of count · r · (in + out).

    Llama-3.1-8B, all-linear, r = 16: 41,943,040 (what ``peft.get_peft_model(...)
    .print_trainable_parameters()`` reports for Llama-3-8B with ``target_modules="all-linear"``).
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0:
        raise ScenarioError(f"LoRA rank must be a positive integer, got {rank!r}")
    return sum(lora_params_per_module(m, rank) for m in lora_target_modules(spec, targets))


def lora_params_in_group(spec: ModelSpec, targets: str, rank: int, group: str) -> int:
    """Adapter parameters on the modules of one group (e.g. ``experts``): Σ count · r · (in + out)."""
    return sum(lora_params_per_module(m, rank) for m in lora_target_modules(spec, targets) if m.group == group)


def lora_params_active(spec: ModelSpec, targets: str, rank: int) -> float:
    """Adapter parameters one token uses: Σ active_count · r · (in + out) (routed experts: top-k of E copies)."""
    return sum(m.active_count * lora_params_per_copy(m, rank) for m in lora_target_modules(spec, targets))

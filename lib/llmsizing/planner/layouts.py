"""Candidate layouts of a fine-tuning run on ``n`` GPUs: tensor, pipeline, data and expert parallel
degrees, the ZeRO stage and offload mode, and gradient checkpointing (the micro-batch comes later).

GPUs = tp · pp · dp. Placement: tp innermost (inside a node), then dp (and ep inside dp · tp), pp
outermost (Megatron-LM's rank order). Validity follows ``training.layout.check_layout``; the search
only tries layouts that can be valid, so it never asks the memory model about impossible ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmsizing.errors import ScenarioError
from llmsizing.planner.request import Request
from llmsizing.specs import ModelSpec

TP_MAX = 8        # tensor parallelism stays inside a node (NVLink/NVSwitch domain)


@dataclass
class Shape:
    """A layout without the micro-batch, with its data-independent terms filled in as the search needs them."""

    tp: int
    pp: int
    dp: int
    ep: int
    zero: int
    offload: str
    gc: bool                          # gradient checkpointing
    coef: Any = None                  # step_time.ShapeCosts, filled lazily
    io: tuple | None = None           # (load_s, save_s), filled lazily
    fit_mb: int | None = None         # largest micro-batch that fits; 0 = nothing fits; None = unknown


def powers_of_two(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit``."""
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def int_list(value: Any, name: str) -> tuple[int, ...]:
    """Parse an assumption holding comma-separated positive integers ("8,64")."""
    try:
        out = tuple(int(x) for x in str(value).split(",") if x.strip())
    except ValueError:
        raise ScenarioError(f"assumption '{name}' must be comma-separated integers, got {value!r}") from None
    if not out or any(x < 1 for x in out):
        raise ScenarioError(f"assumption '{name}' must be comma-separated positive integers, got {value!r}")
    return out


def gpu_count_ladder(gpus_per_node: int, max_gpus: int) -> list[int]:
    """GPU counts the planner tries: 1, 2, 4, ... below a node, then 1, 2, 3, 4, 6, 8, 12, 16, 24, ... nodes.

    Whole nodes in powers of two and 1.5 × powers of two: each step adds at most 50% more GPUs.
    """
    counts = {g for g in powers_of_two(gpus_per_node) if g < gpus_per_node}
    max_nodes = max(1, max_gpus // gpus_per_node)
    for k in powers_of_two(max_nodes):
        counts.add(k * gpus_per_node)
        if k >= 2 and 3 * k // 2 <= max_nodes:
            counts.add(3 * k // 2 * gpus_per_node)
    return sorted(counts)


def tp_choices(spec: ModelSpec, req: Request, n: int, gpus_per_node: int) -> list[int]:
    """Tensor-parallel degrees: powers of two inside a node dividing the heads (training.check_layout)."""
    kv = spec.num_kv_heads

    def ok(t: int) -> bool:
        return spec.num_heads % t == 0 and (t == 1 or spec.is_mla or kv % t == 0 or t % kv == 0)

    out = [t for t in powers_of_two(min(TP_MAX, gpus_per_node, n)) if n % t == 0 and ok(t)]
    if req.tp is not None:
        out = [t for t in out if t == req.tp]
    return out


def pp_choices(spec: ModelSpec, req: Request, n_over_tp: int, max_pipeline_stages: int) -> list[int]:
    """Pipeline degrees: powers of two up to max_pipeline_stages (or exactly the pinned --pp)."""
    if req.pp is not None:
        p = req.pp
        return [p] if p <= spec.num_layers and n_over_tp % p == 0 else []
    limit = min(max_pipeline_stages, spec.num_layers, n_over_tp)
    return [p for p in powers_of_two(limit) if n_over_tp % p == 0]


def ep_choices(spec: ModelSpec, req: Request, dp: int, expert_parallel_degrees: tuple[int, ...]) -> list[int]:
    """Expert-parallel degrees: 1 and ``planner_expert_parallel`` (any valid one when --ep is pinned).

    training.memory splits routed experts by tp and by ep, so every expert is held only when ep divides dp
    (ep ≤ dp); ep | dp·tp alone would leave experts unplaced when ep > dp.
    """
    if not spec.is_moe:
        out = [1]
    else:
        E = spec.num_experts
        valid = [e for e in powers_of_two(min(E, dp)) if E % e == 0 and dp % e == 0]
        out = [e for e in valid if e == 1 or e in expert_parallel_degrees] if req.ep is None else valid
    if req.ep is not None:
        out = [e for e in out if e == req.ep]
    return out


def zero_offload_pairs(req: Request, dp: int, pp: int) -> list[tuple[int, str]]:
    """(ZeRO stage, offload) pairs to try.

    ZeRO 0, 1 and 2 move the same bytes (Rajbhandari et al. 2020, arXiv:1910.02054 §7), so the search
    uses the one that needs least memory: stage 2 (stage 1 with pipeline parallelism, DDP on one GPU).
    DeepSpeed runs ZeRO-2/3 and offload only without pipeline parallelism; offloading the optimizer
    needs ZeRO >= 1 (ZeRO-Offload runs as stage 2 on one GPU), offloading parameters ZeRO-3.
    """
    if pp > 1:
        pairs = [(1 if dp > 1 else 0, "none")]
    else:
        pairs = [(2 if dp > 1 else 0, "none")]
        if dp > 1:
            pairs.append((3, "none"))
        pairs += [(2, "optimizer"), (3, "optimizer"), (3, "optimizer+params")]
    if req.zero is not None:
        # the user's stage: keep the pairs of its class (3, or 0-2 which share a cost) at that stage
        pairs = [(req.zero, o) for (z, o) in pairs if (z == 3) == (req.zero == 3)]
        pairs = [(z, o) for (z, o) in pairs if o == "none" or z >= 1]
        pairs = list(dict.fromkeys(pairs))
    if req.offload is not None:
        pairs = [(z, o) for (z, o) in pairs if o == req.offload]
    return pairs


def candidate_shapes(spec: ModelSpec, req: Request, n: int, *, gpus_per_node: int, max_pipeline_stages: int,
                     expert_parallel_degrees: tuple[int, ...], global_batch_seqs: int) -> list[Shape]:
    """Every candidate layout shape for ``n`` GPUs (dp never exceeds the global batch in sequences)."""
    out: list[Shape] = []
    gcs = (req.gradient_checkpointing,) if req.gradient_checkpointing is not None else (False, True)
    for tp in tp_choices(spec, req, n, gpus_per_node):
        for pp in pp_choices(spec, req, n // tp, max_pipeline_stages):
            dp = n // (tp * pp)
            if dp > global_batch_seqs:
                continue
            for ep in ep_choices(spec, req, dp, expert_parallel_degrees):
                for zero, offload in zero_offload_pairs(req, dp, pp):
                    for gc in gcs:
                        out.append(Shape(tp, pp, dp, ep, zero, offload, gc))
    return out


def check_fixed_layout(spec: ModelSpec, req: Request) -> None:
    """Refuse a pinned layout the model's shape cannot take, naming the value and the valid choices.

    An impossible request (``--tp 3`` on 28 heads, ``--pp 1000`` on 28 layers, ``--ep 8`` on a dense
    model, a sequence past the model's maximum) is bad input, not a "does not fit" result.
    """
    kv = spec.num_kv_heads
    if req.tp is not None:
        valid = [t for t in powers_of_two(TP_MAX) if spec.num_heads % t == 0
                 and (t == 1 or spec.is_mla or kv % t == 0 or t % kv == 0)]
        if req.tp not in valid:
            raise ScenarioError(f"--tp {req.tp}: tensor parallelism must divide the {spec.num_heads} attention heads "
                                f"({kv} KV heads) of {spec.slug} within one node; valid: {', '.join(map(str, valid))}")
    if req.pp is not None and req.pp > spec.num_layers:
        raise ScenarioError(f"--pp {req.pp}: {spec.slug} has {spec.num_layers} layers; valid pipeline degrees: "
                            f"1 to {spec.num_layers}")
    if req.ep is not None and req.ep > 1:
        if not spec.is_moe:
            raise ScenarioError(f"--ep {req.ep}: {spec.slug} is a dense model (no experts); valid: 1")
        valid = [e for e in powers_of_two(spec.num_experts) if spec.num_experts % e == 0]
        if req.ep not in valid:
            raise ScenarioError(f"--ep {req.ep} does not divide the {spec.num_experts} experts of {spec.slug}; "
                                f"valid: {', '.join(map(str, valid))}")
    if spec.max_context_tokens and req.seq_len > spec.max_context_tokens:
        raise ScenarioError(f"sequence length {req.seq_len:,} exceeds {spec.slug}'s maximum of "
                            f"{spec.max_context_tokens:,} tokens; valid: 1 to {spec.max_context_tokens:,}")

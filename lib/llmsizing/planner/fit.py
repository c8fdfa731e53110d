"""Does a layout fit? GPU memory from the memory oracle, host RAM for offloaded states, and the cheap
tests and dominance rules that let the search skip most memory questions.

Memory is monotone in the micro-batch, so each shape has a largest micro-batch that fits (``fit_mb``).
"""

from __future__ import annotations

from typing import Any

from llmsizing.choices import OFFLOADS
from llmsizing.planner import cluster
from llmsizing.planner.context import PlanContext
from llmsizing.planner.layouts import Shape, powers_of_two


def micro_batch_options(ctx: PlanContext) -> list[int]:
    """Micro-batches to try: the pinned one, else powers of two up to ``max_micro_batch``."""
    if ctx.request.micro_batch is not None:
        return [ctx.request.micro_batch]
    return powers_of_two(ctx.max_micro_batch)


def fits(ctx: PlanContext, tp, pp, dp, ep, zero, offload, gc, mb, node: cluster.NodeType) -> bool:
    """Fits the GPU's memory, and with offloading the node's usable host RAM."""
    if not ctx.oracle_for(tp, pp).fits_gpu(ctx.memory_key(tp, pp, dp, ep, zero, offload, gc, mb), ctx.fit_memory_bytes):
        return False
    if node.ram_bytes is not None and offload != "none":
        m = ctx.memory(tp, pp, dp, ep, zero, offload, gc, mb)
        per_node = min(node.gpus_per_node, tp * pp * dp)
        need = ctx.host_ram_per_node(m, per_node, tp, pp, dp, zero)["total"]
        if need > node.ram_bytes * float(ctx.assumptions["instance_ram_usable_fraction"]):
            return False
    return True


def surely_too_big(ctx: PlanContext, sh: Shape) -> bool:
    """Cheap test without the memory model: a lower bound of the model states on one GPU (weights,
    gradients and optimizer states of its partition, experts counted as split by tp · ep · pp) plus
    the CUDA context exceeds the GPU. Paged optimizer states do not count (they page to host)."""
    tp, pp, dp, ep, z = sh.tp, sh.pp, sh.dp, sh.ep, sh.zero
    w = 0.0 if sh.offload == "optimizer+params" else ctx.weight_bytes_per_rank(tp, pp, ep) / (dp if z == 3 else 1)
    states = 0.0
    if sh.offload == "none":
        t = ctx.trainable_per_rank(tp, pp, ep)
        opt = 0.0 if ctx.request.optimizer.startswith("paged-") else ctx.optimizer_bytes_per_param
        states = t * (ctx.grad_bytes_per_param / (dp if z >= 2 else 1) + opt / (dp if z >= 1 else 1))
    return w + states + ctx.constants.cuda_context_bytes > ctx.fit_memory_bytes


def surely_no_host_ram(ctx: PlanContext, sh: Shape, n: int) -> bool:
    """Cheap test for offloading shapes: a lower bound of the offloaded states (optimizer states and master
    weights of the GPU's ZeRO partition, plus its weights with parameter offload) of the node's GPUs,
    with the per-process host RAM, exceeds the node's usable RAM."""
    node = ctx.node(n)
    if sh.offload == "none" or node.ram_bytes is None:
        return False
    k = ctx.constants
    per_gpu = ctx.trainable_per_rank(sh.tp, sh.pp, sh.ep) / sh.dp * ctx.optimizer_bytes_per_param
    if sh.offload == "optimizer+params":
        per_gpu += ctx.weight_bytes_per_rank(sh.tp, sh.pp, sh.ep) / sh.dp
    gpus_on_node = min(n, node.gpus_per_node)
    need = k.host_ram_base_per_node_bytes + gpus_on_node * (k.host_ram_per_gpu_bytes + per_gpu)
    return need > node.ram_bytes * k.instance_ram_usable_fraction


def fit_micro_batch(ctx: PlanContext, sh: Shape, n: int) -> int:
    """Largest micro-batch that fits for this shape (0 if none); memory is monotone in the micro-batch."""
    if sh.fit_mb is not None:
        return sh.fit_mb
    if surely_too_big(ctx, sh) or surely_no_host_ram(ctx, sh, n) or not frugal_sibling_fits(ctx, sh, n):
        sh.fit_mb = 0
        return 0
    node = ctx.node(n)
    best = 0
    for mb in micro_batch_options(ctx):
        if fits(ctx, sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, sh.gc, mb, node):
            best = mb
        else:
            break
    sh.fit_mb = best
    return best


def confirm_fit(ctx: PlanContext, sh: Shape, mb: int) -> bool:
    """Confirm a predicted fit with a direct call of the memory model (pp > 1)."""
    key = ctx.memory_key(sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, sh.gc, mb)
    return ctx.oracle_for(sh.tp, sh.pp).fits_exact(key, ctx.fit_memory_bytes)


def fit_micro_batch_exact(ctx: PlanContext, sh: Shape) -> int:
    """Largest micro-batch that fits by direct calls (after a pp > 1 prediction failed)."""
    best = 0
    for mb in micro_batch_options(ctx):
        if mb > (sh.fit_mb or 0):
            break
        if confirm_fit(ctx, sh, mb):
            best = mb
        else:
            break
    sh.fit_mb = best
    return best


def frugal_sibling_fits(ctx: PlanContext, sh: Shape, n: int) -> bool:
    """Dominance: ZeRO-3 with optimizer and parameters offloaded and checkpointing needs the least memory
    of the shapes with the same tp, pp = 1, dp and ep; if it does not fit at micro-batch 1, none does.
    Likewise a shape without checkpointing needs more than its twin with checkpointing."""
    if not sh.gc:
        key = ctx.memory_key(sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, True, 1)
        if any(f.gc and (f.tp, f.pp, f.dp, f.ep, f.zero, f.offload) == (sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload)
               for f in ctx.shapes(n)) and not ctx.oracle.fits_gpu(key, ctx.fit_memory_bytes):
            return False
    if sh.pp != 1 or (sh.zero, sh.offload, sh.gc) == (3, "optimizer+params", True):
        return True
    skey = (n, sh.tp, sh.dp, sh.ep)
    cache = ctx.frugal_sibling_cache
    if skey not in cache:
        ok = True
        for f in ctx.shapes(n):
            if (f.tp, f.pp, f.dp, f.ep, f.zero, f.offload, f.gc) == (sh.tp, 1, sh.dp, sh.ep, 3, "optimizer+params", True):
                key = (f.tp, 1, f.dp, f.ep, 3, "optimizer+params", True, 1, 1)
                ok = ctx.oracle.fits_gpu(key, ctx.fit_memory_bytes)
                break
        cache[skey] = ok
    return cache[skey]


_OFFLOAD_DEPTH = {o: i for i, o in enumerate(OFFLOADS)}


def frugal_fits(ctx: PlanContext, n: int) -> bool:
    """Gate: if the most memory-frugal shape on ``n`` GPUs (ZeRO-3 with optimizer and parameters offloaded,
    checkpointing, the widest tp · ep · pp, micro-batch 1) does not fit the GPU, nothing on ``n`` does."""
    rank = _OFFLOAD_DEPTH
    sh = max(ctx.shapes(n), key=lambda x: (rank[x.offload], x.zero, x.gc, x.tp * x.ep * x.pp, -x.pp))
    if sh.offload != "optimizer+params":
        return True
    key = ctx.memory_key(sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, sh.gc, 1)
    return ctx.oracle.fits_gpu(key, ctx.fit_memory_bytes)


def least_memory_shape(ctx: PlanContext, n: int, mb: int = 1) -> tuple[Shape, Any] | None:
    """For a report on a count where nothing fits: the most sharded shape with the least memory at
    micro-batch ``mb`` (the pinned one, else 1).

    Candidates are the shapes with the deepest offload, checkpointing on, and the largest tp · pp · ep.
    """
    shapes = [sh for sh in ctx.shapes(n) if sh.gc or ctx.request.gradient_checkpointing is False]
    if not shapes:
        return None
    rank = _OFFLOAD_DEPTH
    top = max((rank[sh.offload], sh.zero, sh.tp * sh.pp * sh.ep) for sh in shapes)
    best = None
    for sh in shapes:
        if (rank[sh.offload], sh.zero) != top[:2] or sh.tp * sh.pp * sh.ep < top[2] // 4:
            continue
        m = ctx.memory(sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, sh.gc, mb)
        if m is not None and (best is None or m.total < best[1].total):
            best = (sh, m)
    return best

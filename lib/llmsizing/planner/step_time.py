"""Time of a fine-tuning run on a layout: step time with communication, pipeline bubbles, offload
transfers and I/O (every term a function below, every constant a named assumption)::

    stage_s   = training.compute.step_time_parts(...)   one micro-batch through one pipeline stage
    u         = stage_s + exposed TP, PP, EP and ZeRO-3 communication per micro-batch
    step_s    = (ga + (pp − 1)/v) · u + exposed data-parallel gradient sync + offloaded optimizer step
    total_s   = steps · step_s + load model + tokenize + save checkpoints

with ``ga`` micro-batches per replica per step and ``(pp − 1)/v · u`` the interleaved 1F1B pipeline bubble
with v virtual stages (``comm.pipeline_bubble_fraction``: (p − 1)/(v·m + p − 1) of the step; each micro-batch
then crosses 2·v stage boundaries). Collectives are ``llmsizing.comm``'s
ring all-reduce, all-gather and all-to-all. Bandwidth is the GPU's intra-node link
(``GpuSpec.intra_node_bytes_per_s``) inside a node and each GPU's share of the instance network
(``network_Gbps / gpus``) across nodes, each times an NCCL efficiency. So adding GPUs is not free:
per-step communication stays while per-GPU compute shrinks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from llmsizing.comm import all_to_all_s, exposed_s, ring_allgather_s, ring_allreduce_s
from llmsizing.dataset import DatasetSize
from llmsizing.planner import cluster
from llmsizing.planner.context import BF16_BYTES, PlanContext
from llmsizing.planner.layouts import Shape
from llmsizing.planner.request import TimeBreakdown

# Megatron tensor parallelism: 2 all-reduces forward (attention, MLP) and 2 backward per layer,
# 2 more when the forward is recomputed (Korthikanti et al. 2022, arXiv:2205.05198 §4).
TP_ALLREDUCES_PER_LAYER = 4
TP_ALLREDUCES_PER_LAYER_RECOMPUTE = 2
# Expert parallelism: dispatch + combine forward and backward per MoE layer (+2 with recompute).
EP_ALL_TO_ALLS_PER_LAYER = 4
EP_ALL_TO_ALLS_PER_LAYER_RECOMPUTE = 2
# ZeRO-3: parameters are all-gathered once for the forward and once for the backward pass.
ZERO3_GATHERS_PER_MICRO_STEP = 2
# Pipeline parallelism: one activation send forward and one gradient send backward per micro-batch.
PP_TRANSFERS_PER_MICRO_BATCH = 2


class ShapeCosts(NamedTuple):
    """Data- and micro-batch-independent cost terms of a shape on ``n`` GPUs (seconds).

    One micro-batch of ``mb`` sequences costs max(compute_per_seq_s · mb, host_s) + dequant_s on its stage,
    plus comm_per_seq_s · mb of TP/PP/EP traffic, plus the ZeRO-3 traffic ``zero3_s`` less what hides
    behind up to zero3_hideable_per_seq_s · mb of compute; once per step the data-parallel all-reduce
    ``dp_allreduce_s`` less up to dp_hideable_per_seq_s · mb of backward, and the offloaded optimizer step.
    """

    compute_per_seq_s: float
    host_s: float
    dequant_s: float
    comm_per_seq_s: float
    zero3_s: float
    zero3_hideable_per_seq_s: float
    dp_allreduce_s: float
    dp_hideable_per_seq_s: float
    offload_s: float
    tp_per_seq_s: float
    pp_per_seq_s: float
    ep_per_seq_s: float


def adam_cores_per_gpu(ctx: PlanContext, node: cluster.NodeType) -> float:
    """vCPUs per GPU left for CPU-Adam: the node's vCPUs less the base and each GPU's process and loaders
    (a node without catalog vCPUs is taken to have twice the per-GPU need)."""
    k = ctx.constants
    if node.vcpus:
        spare = (node.vcpus - k.cpu_cores_base_per_node) / node.gpus_per_node - k.cpu_cores_per_gpu
    else:
        spare = k.cpu_cores_per_gpu
    return max(1.0, spare)


def shape_costs(ctx: PlanContext, sh: Shape, n: int) -> ShapeCosts:
    """The ``ShapeCosts`` of a shape on ``n`` GPUs (cached on the shape)."""
    if sh.coef is not None:
        return sh.coef
    k = ctx.constants
    spec = ctx.spec
    tp, pp, dp, ep, gc = sh.tp, sh.pp, sh.dp, sh.ep, sh.gc
    node = ctx.node(n)
    inter = ctx.inter_node_bytes_per_s(node)
    intra = ctx.intra_node_bytes_per_s
    multi = n > node.gpus_per_node
    st = ctx.step_parts[gc]
    C = st.compute_s / (tp * pp)
    H = st.host_s / pp
    D = st.dequant_s / (tp * pp)
    act1 = ctx.seq_len * spec.hidden_size * ctx.activation_bytes_per_elem      # one sequence's hidden states
    # tensor parallel (inside the node): Megatron all-reduces per layer of the stage
    n_ar = TP_ALLREDUCES_PER_LAYER + (TP_ALLREDUCES_PER_LAYER_RECOMPUTE if gc else 0)
    tp1 = (1.0 - k.tp_comm_overlap) * n_ar * (spec.num_layers / pp) * ring_allreduce_s(act1, tp, intra)
    # pipeline point-to-point
    pp_bw = inter if (multi and tp * dp >= node.gpus_per_node) else intra
    pp1 = PP_TRANSFERS_PER_MICRO_BATCH * ctx.virtual_stages(pp) * act1 / pp_bw if pp > 1 else 0.0
    # expert parallel all-to-all
    ep1 = 0.0
    if ep > 1 and ctx.moe_layers:
        n_a2a = EP_ALL_TO_ALLS_PER_LAYER + (EP_ALL_TO_ALLS_PER_LAYER_RECOMPUTE if gc else 0)
        ep_bw = inter if (multi and ep > node.gpus_per_node) else intra
        ep1 = (1.0 - k.ep_comm_overlap) * n_a2a * (ctx.moe_layers / pp) * all_to_all_s(
            act1 * spec.experts_per_token / tp, ep, ep_bw)
    # data parallel: ZeRO-3 gathers per micro-step, or one gradient all-reduce per step
    dp_bw = inter if (multi and tp * dp > node.gpus_per_node) else intra
    edp = ctx.expert_dp(dp, ep)
    edp_bw = inter if (multi and tp * ep * edp > node.gpus_per_node) else intra
    dw, ew, dt, et = ctx.split_per_rank(tp, pp, ep)
    g = ctx.grad_bytes_per_param
    pcie = k.pcie_host_device_bytes_per_s
    gather = ar = ovz = ovd = 0.0
    if sh.zero == 3:
        # parameters gathered for the forward and the backward pass, gradients reduce-scattered
        gather = (ZERO3_GATHERS_PER_MICRO_STEP * (ring_allgather_s(dw, dp, dp_bw) + ring_allgather_s(ew, edp, edp_bw))
                  + ring_allgather_s(dt * g, dp, dp_bw) + ring_allgather_s(et * g, edp, edp_bw))
        if sh.offload == "optimizer+params":
            gather += ZERO3_GATHERS_PER_MICRO_STEP * (dw / dp + ew / edp) / pcie
        ovz = k.zero3_comm_overlap * C
    else:
        ar = ring_allreduce_s(dt * g, dp, dp_bw) + ring_allreduce_s(et * g, edp, edp_bw)
        ovd = k.dp_comm_overlap * (1.0 - ctx.forward_share[gc]) * C
    off = 0.0
    if sh.offload != "none":
        shard = (dt / dp + et / edp) if sh.zero >= 1 else dt + et
        off = (shard * (ctx.grad_bytes_per_param + BF16_BYTES) / pcie
               + shard / (k.cpu_adam_params_per_s_per_core * adam_cores_per_gpu(ctx, node)))
    sh.coef = ShapeCosts(C, H, D, tp1 + pp1 + ep1, gather, ovz, ar, ovd, off, tp1, pp1, ep1)
    return sh.coef


def micro_batch_costs(ctx: PlanContext, sh: Shape, mb: int, n: int) -> tuple[float, float, dict]:
    """(u, v, parts): seconds of one micro-batch on one stage with exposed communication, and the
    per-step extra (exposed data-parallel sync, offloaded optimizer step)."""
    c = shape_costs(ctx, sh, n)
    stage = max(c.compute_per_seq_s * mb, c.host_s) + c.dequant_s
    z3 = exposed_s(c.zero3_s, mb, c.zero3_hideable_per_seq_s)
    dps = exposed_s(c.dp_allreduce_s, mb, c.dp_hideable_per_seq_s)
    parts = {"stage": stage, "tp": c.tp_per_seq_s * mb, "pp": c.pp_per_seq_s * mb, "ep": c.ep_per_seq_s * mb,
             "zero3": z3, "dp": dps, "offload": c.offload_s}
    return stage + c.comm_per_seq_s * mb + z3, dps + c.offload_s, parts


def fixed_io_s(ctx: PlanContext, sh: Shape, n: int) -> tuple[float, float]:
    """(load_s, save_s): read the node's share of the base checkpoint; write one training checkpoint."""
    if sh.io is not None:
        return sh.io
    k = ctx.constants
    node = ctx.node(n)
    nodes = cluster.nodes_for(n, node)
    gpus_on_node = min(n, node.gpus_per_node)
    shard = 1.0 / (sh.tp * sh.pp * (sh.dp if sh.zero == 3 else 1))
    load = min(1.0, gpus_on_node * shard) * ctx.checkpoint_native_bytes / k.storage_read_bytes_per_s_per_node
    save = ctx.checkpoint_bytes / nodes / k.storage_write_bytes_per_s_per_node
    sh.io = (load, save)
    return load, save


def tokenize_s(ctx: PlanContext, raw_bytes: float, n: int) -> float:
    """Tokenize the raw text on the cluster's vCPUs (text given as tokens needs none)."""
    node = ctx.node(n)
    nodes = cluster.nodes_for(n, node)
    vcpus = (node.vcpus or ctx.constants.cpu_cores_per_gpu * node.gpus_per_node) * nodes
    return raw_bytes / (ctx.constants.tokenization_bytes_per_s_per_core * vcpus)


def data_terms(ctx: PlanContext, seqs: int, dp: int, mb: int) -> tuple[int, int, int]:
    """(steps, micro-batches per replica per step, effective micro-batch) for ``seqs`` sequences."""
    s_step = min(seqs, ctx.global_batch_seqs)
    steps = -(-seqs // ctx.global_batch_seqs)
    r = -(-s_step // dp)
    mb_eff = min(mb, r)
    ga = -(-r // mb_eff)
    return steps, ga, mb_eff


def shape_time_s(ctx: PlanContext, sh: Shape, mb: int, n: int, seqs: int, tok_s: float) -> float:
    """Total seconds for shape ``sh`` at micro-batch ``mb`` (no memory check):
    load + save + tokenize + steps · ((ga + pp − 1) · u + v). The search's inner loop: written out flat."""
    gb = ctx.global_batch_seqs
    s_step = seqs if seqs < gb else gb
    steps = -(-seqs // gb)
    r = -(-s_step // sh.dp)
    m = mb if mb < r else r
    ga = -(-r // m)
    C, H, D, cpm, gather, ovz, ar, ovd, off = (sh.coef or shape_costs(ctx, sh, n))[:9]
    cm = C * m
    u = (cm if cm > H else H) + D + cpm * m
    if gather:
        g = gather - ovz * m
        if g > 0.0:
            u += g
    v = off
    if ar:
        d = ar - ovd * m
        if d > 0.0:
            v += d
    load, save = sh.io or fixed_io_s(ctx, sh, n)
    train = steps * ((ga + ctx.bubble_micro_batches(sh.pp)) * u + v)
    if not math.isfinite(train):   # overflowing communication terms or an unusable term: never chosen
        return math.inf
    return load + save * (1 + int(train // ctx.checkpoint_interval_s)) + tok_s + train


def shape_lower_bound_s(ctx: PlanContext, sh: Shape, max_mb: int, n: int, seqs: int, tok_s: float) -> float:
    """A lower bound of ``shape_time_s`` over every micro-batch up to ``max_mb`` (one evaluation).

    Per sequence a micro-batch costs u(m)/m, which does not grow with m (host overhead, dequantization
    and ZeRO-3 traffic are per micro-batch), and the step extra v(m) does not grow either; so with
    M = min(max_mb, sequences per replica) every choice takes at least
    steps · (r · u(M)/M + (pp − 1) · (max(C, H) + D) + v(M)), plus I/O.
    """
    gb = ctx.global_batch_seqs
    s_step = seqs if seqs < gb else gb
    steps = -(-seqs // gb)
    r = -(-s_step // sh.dp)
    m = max_mb if max_mb < r else r
    C, H, D, cpm, gather, ovz, ar, ovd, off = (sh.coef or shape_costs(ctx, sh, n))[:9]
    cm = C * m
    u = (cm if cm > H else H) + D + cpm * m
    if gather and gather > ovz * m:
        u += gather - ovz * m
    v = off + (ar - ovd * m if ar and ar > ovd * m else 0.0)
    train = steps * (r * u / m + ctx.bubble_micro_batches(sh.pp) * ((C if C > H else H) + D) + v)
    if not math.isfinite(train):   # overflowing communication terms or an unusable term: never chosen
        return math.inf
    load, save = sh.io or fixed_io_s(ctx, sh, n)
    return load + save * (1 + int(train // ctx.checkpoint_interval_s)) + tok_s + train


def lower_bound_s(ctx: PlanContext, n: int, train_tokens: float, tok_s: float) -> float:
    """No layout on ``n`` GPUs can beat this: tokenization + tokens at the best per-GPU throughput."""
    return tok_s + train_tokens / (n * ctx.max_tokens_per_s_per_gpu)


def time_breakdown(ctx: PlanContext, sh: Shape, mb: int, n: int, data: DatasetSize) -> TimeBreakdown:
    """The same total as ``shape_time_s``, split by part."""
    seqs = max(1, math.ceil(data.train_tokens / ctx.seq_len))
    steps, ga, mb_eff = data_terms(ctx, seqs, sh.dp, mb)
    u, v, p = micro_batch_costs(ctx, sh, mb_eff, n)
    load, save = fixed_io_s(ctx, sh, n)
    tok = tokenize_s(ctx, data.raw_bytes if data.unit == "bytes" else 0.0, n)
    tps = ctx.tokens_per_s_per_gpu(sh.tp, sh.pp, sh.gc, mb_eff)
    compute = data.train_tokens / (n * tps)
    micro = steps * ga
    bubble = ctx.bubble_micro_batches(sh.pp)
    train = steps * ((ga + bubble) * u + v)
    saves = 1 + int(train // ctx.checkpoint_interval_s) if math.isfinite(train) else 1
    save = save * saves
    total = load + save + tok + train
    return TimeBreakdown(
        compute_s=compute, quantization_s=micro * p["stage"] - compute, bubble_s=steps * bubble * u,
        tp_comm_s=micro * p["tp"], pp_comm_s=micro * p["pp"], ep_comm_s=micro * p["ep"],
        zero3_comm_s=micro * p["zero3"], dp_comm_s=steps * p["dp"], offload_s=steps * p["offload"],
        load_s=load, tokenize_s=tok, save_s=save, total_s=total, steps=steps, micro_steps_per_step=ga)


def inter_node_bytes_per_step(ctx: PlanContext, sh: Shape, mb: int, n: int, ga: int) -> float:
    """Bytes one GPU sends across nodes per optimizer step (data-parallel, ZeRO-3, EP, PP traffic)."""
    node = ctx.node(n)
    if n <= node.gpus_per_node:
        return 0.0
    tp, pp, dp, ep = sh.tp, sh.pp, sh.dp, sh.ep
    dw, ew, dt, et = ctx.split_per_rank(tp, pp, ep)
    g = ctx.grad_bytes_per_param
    edp = ctx.expert_dp(dp, ep)
    total = 0.0
    if tp * dp > node.gpus_per_node:
        fd = (dp - 1) / dp
        fe = (edp - 1) / edp if tp * ep * edp > node.gpus_per_node else 0.0
        if sh.zero == 3:
            total += ga * (ZERO3_GATHERS_PER_MICRO_STEP * (fd * dw + fe * ew) + fd * dt * g + fe * et * g)
        else:
            total += 2.0 * (fd * dt * g + fe * et * g)
    act = mb * ctx.seq_len * ctx.spec.hidden_size * ctx.activation_bytes_per_elem
    if ep > node.gpus_per_node and ctx.moe_layers:
        n_a2a = EP_ALL_TO_ALLS_PER_LAYER + (EP_ALL_TO_ALLS_PER_LAYER_RECOMPUTE if sh.gc else 0)
        total += ga * n_a2a * (ctx.moe_layers / pp) * (ep - 1) / ep * act * ctx.spec.experts_per_token / tp
    if pp > 1 and tp * dp >= node.gpus_per_node:
        total += ga * PP_TRANSFERS_PER_MICRO_BATCH * ctx.virtual_stages(pp) * act
    return total

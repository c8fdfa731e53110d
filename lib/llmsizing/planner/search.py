"""The search: from a deadline to the plan that minimises the objective among those that meet it.

For each GPU count on a ladder (the GPU counts of whole instances: 1, 2, 4 where such instances are
sold, then whole nodes: 1, 2, 3, 4, 6, 8, 12, ... nodes) the search finds the fastest layout that fits
in GPU memory and in the node's host RAM (``fit.py``). Objectives (``choices.OPTIMIZE``):

- ``cost`` (default): the cheapest count that meets the deadline, cost = nodes × price × hours (paid
  GPU-hours, nodes × GPUs per node × hours, where no instance has a price); ties go to fewer GPUs;
- ``gpus``: the smallest count that meets the deadline;
- ``time``: the fastest count.

When no count meets the deadline, every objective returns the fastest layout it found.

Speed: memory questions go to ``memory_oracle`` (a few calls of the memory model per layout family,
shared by every GPU type); per-layout costs are cached per (model, setup, GPU, GPU count); data size
and deadline only enter a last, cheap loop. Plans are monotone by construction: for each GPU count
the best time is an exact minimum over memory-feasible layouts, each non-decreasing in the data,
and the smallest GPU count meeting the deadline is found by an exact scan.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from llmsizing.planner.context import PlanContext
from llmsizing.planner.fit import (confirm_fit, fit_micro_batch, fit_micro_batch_exact, frugal_fits,
                                   micro_batch_options)
from llmsizing.planner.layouts import Shape
from llmsizing.planner.step_time import lower_bound_s, shape_lower_bound_s, shape_time_s, tokenize_s
from llmsizing.planner import cluster


#: The cost scan stops after this many consecutive multi-node counts that meet the deadline but cost more
#: than the cheapest so far (GPU-hours grow with the count once communication outgrows compute).
COST_STALE_COUNTS = 2
#: ... "more" meaning by more than this fraction (flat cost curves, near-perfect scaling, are scanned on)
COST_STALE_MARGIN = 0.05


@dataclass(frozen=True)
class Found:
    """The search's answer: ``n`` GPUs, a shape and a micro-batch (``shape`` None: nothing fits on ``n``)."""

    gpus: int
    shape: Shape | None
    micro_batch: int
    searched: bool            # the search chose the GPU count (False: the caller fixed it)


def best_at(ctx: PlanContext, n: int, seqs: int, tok_s: float, deadline_s: float | None = None
            ) -> tuple[float, Shape, int] | None:
    """Fastest memory-feasible (shape, micro-batch) on ``n`` GPUs: exact best-first search.

    Keys are lower bounds (the best time over every micro-batch option); a shape's key becomes its
    exact time once its memory is known, and the first exact key popped is the minimum. The search may
    stop within ``planner_search_tolerance`` of the minimum, but never where that could change the answer
    to "does some layout on ``n`` GPUs meet ``deadline_s``?" (so the smallest count is exact).
    """
    shapes = ctx.shapes(n)
    if not shapes:
        # no layout without pipeline parallelism is valid here (data parallelism beyond the global batch):
        # the large-model regime, where Megatron-style runs add pipeline stages
        large = ctx.shapes(n, large=True)
        return _best_in(ctx, large, n, seqs, tok_s, deadline_s) if large else None
    if not frugal_fits(ctx, n):
        return None
    return _best_in(ctx, shapes, n, seqs, tok_s, deadline_s)


def _best_in(ctx: PlanContext, shapes: list[Shape], n: int, seqs: int, tok_s: float, deadline_s: float | None
             ) -> tuple[float, Shape, int] | None:
    """``best_at`` over the given shapes."""
    opts = micro_batch_options(ctx)
    heap = [(shape_lower_bound_s(ctx, sh, opts[-1], n, seqs, tok_s), 0, i, 0)
            for i, sh in enumerate(shapes) if sh.fit_mb != 0]
    heapq.heapify(heap)
    tol = ctx.constants.planner_search_tolerance
    found: tuple[float, Shape, int] | None = None

    def exact_entry(i: int, fit: int) -> tuple[float, int, int, int]:
        ts = [(shape_time_s(ctx, shapes[i], m, n, seqs, tok_s), m) for m in opts if m <= fit]
        t_best, m_best = min(ts)
        return t_best, 2, i, m_best

    while heap:
        t, state, i, mb = heapq.heappop(heap)
        if found is not None and t >= found[0] * (1.0 - tol) and (
                deadline_s is None or found[0] <= deadline_s or t > deadline_s):
            return found     # nothing left is faster by more than the tolerance, nor changes the deadline test
        sh = shapes[i]
        if state == 2 and not math.isfinite(t):
            continue     # no finite step time (overflowing terms from absurd assumption overrides)
        if state == 2:
            if sh.pp > 1 and not confirm_fit(ctx, sh, mb):
                fit = fit_micro_batch_exact(ctx, sh)
                if fit:
                    heapq.heappush(heap, exact_entry(i, fit))
                continue
            if found is None or t < found[0]:
                found = (t, sh, mb)
            if not heap or heap[0][0] >= t:
                return found
            continue
        fit = fit_micro_batch(ctx, sh, n)
        if fit:
            heapq.heappush(heap, exact_entry(i, fit))
    return found


def rate_per_s(ctx: PlanContext, n: int) -> float:
    """What one second on ``n`` GPUs costs, for ranking: nodes × USD per node-hour / 3600, or (no
    priced instance) the paid GPUs, nodes × GPUs per node (GPU-seconds)."""
    node = ctx.node(n)
    nodes = cluster.nodes_for(n, node)
    if node.price_usd_per_hour is not None:
        return nodes * node.price_usd_per_hour / 3600.0
    return float(nodes * node.gpus_per_node) if n >= node.gpus_per_node else float(n)


def search(ctx: PlanContext, seqs: int, train_tokens: float, raw_bytes: float, deadline_s: float,
           fixed_gpus: int | None, optimize: str = "cost") -> Found:
    """The GPU count, shape and micro-batch of a plan for ``seqs`` sequences (``train_tokens`` tokens).

    ``fixed_gpus`` evaluates exactly that count. Otherwise the count that minimises ``optimize`` (module
    docstring) among those that meet the deadline, or the fastest one found; ``Found.shape`` is None when
    nothing fits (on the largest count that has shapes).
    """
    if fixed_gpus is not None:
        found = best_at(ctx, fixed_gpus, seqs, tokenize_s(ctx, raw_bytes, fixed_gpus))
        if found is None:
            return Found(fixed_gpus, None, 1, searched=False)
        return Found(fixed_gpus, found[1], found[2], searched=False)
    evaluated: dict[int, tuple[float, Shape, int] | None] = {}

    def best(n: int, tok_s: float):
        if n not in evaluated:
            evaluated[n] = best_at(ctx, n, seqs, tok_s, deadline_s)
        return evaluated[n]

    # 1. counts that meet the deadline: exact ascending scan; counts whose lower bound already misses the
    #    deadline (or, for cost, already costs more than the best plan found) are skipped without a search
    if optimize in ("cost", "gpus"):
        cheapest: tuple[float, int, Shape, int] | None = None
        dearer = 0
        for n in ctx.gpu_counts:
            tok_s = tokenize_s(ctx, raw_bytes, n)
            lb = lower_bound_s(ctx, n, train_tokens, tok_s)
            if lb > deadline_s:
                continue
            rate = rate_per_s(ctx, n)
            if cheapest is not None and rate * lb >= cheapest[0]:
                continue
            found = best(n, tok_s)
            if found is not None and found[0] <= deadline_s:
                if optimize == "gpus":
                    return Found(n, found[1], found[2], searched=True)
                cost = rate * found[0]
                if cheapest is None or cost < cheapest[0]:
                    cheapest = (cost, n, found[1], found[2])
                    dearer = 0
                elif n > ctx.gpus_per_node and cost > cheapest[0] * (1.0 + COST_STALE_MARGIN):
                    # multi-node counts rent the same node type, so cost follows GPU-hours, which grow
                    # once scaling efficiency falls: stop after COST_STALE_COUNTS clearly dearer counts in a row
                    dearer += 1
                    if dearer >= COST_STALE_COUNTS:
                        break
                else:
                    dearer = 0
        if cheapest is not None:
            return Found(cheapest[1], cheapest[2], cheapest[3], searched=True)
    # 2. none does: the fastest plan. Scan down from the largest count; stop when two evaluated counts
    #    in a row are no faster, or when nothing fits (fewer GPUs cannot fit either).
    fastest: tuple[float, int, Shape, int] | None = None
    for n, f in evaluated.items():
        if f is not None and (fastest is None or f[0] < fastest[0]):
            fastest = (f[0], n, f[1], f[2])
    stale = 0
    for n in reversed(ctx.gpu_counts):
        tok_s = tokenize_s(ctx, raw_bytes, n)
        if fastest is not None and lower_bound_s(ctx, n, train_tokens, tok_s) >= fastest[0]:
            continue
        found = best(n, tok_s)
        if found is None:
            if fastest is not None:
                break
            continue
        if fastest is None or found[0] < fastest[0]:
            fastest = (found[0], n, found[1], found[2])
            stale = 0
        else:
            stale += 1
            if stale >= 2:
                break
    if fastest is None:
        largest = max((n for n in ctx.gpu_counts if ctx.shapes(n) or ctx.shapes(n, large=True)),
                      default=ctx.gpu_counts[0])
        return Found(largest, None, 1, searched=True)
    _, n, sh, mb = fastest
    return Found(n, sh, mb, searched=True)

"""Collective-communication and pipeline-schedule times: the one home of every such formula.

Times in seconds, sizes in bytes, bandwidths in bytes/s (one direction, per GPU). The serving
roofline (tensor-parallel all-reduces per token) and the training planner (data-parallel gradient
all-reduce, ZeRO gathers, expert all-to-all, pipeline bubbles) both call these.
"""

from __future__ import annotations


def ring_allreduce_s(n_bytes: float, n: int, bytes_per_s: float, latency_s: float = 0.0) -> float:
    """Ring all-reduce: latency + 2(n − 1)/n · bytes / bandwidth; 0 for one rank or no data.

    Patarasuk & Yuan 2009, "Bandwidth optimal all-reduce algorithms for clusters of workstations";
    NCCL's bus-bandwidth convention (github.com/NVIDIA/nccl-tests, doc/PERFORMANCE.md).
    """
    if n <= 1 or n_bytes <= 0:
        return 0.0
    return latency_s + 2.0 * (n - 1) / n * n_bytes / bytes_per_s


def ring_allgather_s(n_bytes: float, n: int, bytes_per_s: float) -> float:
    """Ring all-gather (or reduce-scatter) of an ``n_bytes`` result: (n − 1)/n · bytes / bandwidth.

    Same source as ``ring_allreduce_s`` (an all-reduce is a reduce-scatter plus an all-gather).
    """
    if n <= 1 or n_bytes <= 0:
        return 0.0
    return (n - 1) / n * n_bytes / bytes_per_s


def all_to_all_s(n_bytes: float, n: int, bytes_per_s: float) -> float:
    """All-to-all where each GPU holds ``n_bytes`` to spread evenly: (n − 1)/n · bytes / bandwidth.

    nccl-tests doc/PERFORMANCE.md (alltoall bus bandwidth factor (n − 1)/n).
    """
    if n <= 1 or n_bytes <= 0:
        return 0.0
    return (n - 1) / n * n_bytes / bytes_per_s


def pipeline_bubble_fraction(pp: int, micro_batches: int, virtual_stages: int = 1) -> float:
    """Share of a step lost to the pipeline bubble: (p − 1) / (v·m + p − 1).

    1F1B (v = 1): Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters
    Using Megatron-LM", §2.2 (bubble time fraction (p − 1)/m of the ideal time); interleaved schedule with
    v model chunks per GPU divides the bubble by v (same paper, §2.2.2).
    """
    if pp <= 1:
        return 0.0
    v = max(1, int(virtual_stages))
    return (pp - 1) / (v * micro_batches + pp - 1)


def exposed_s(comm_s: float, hideable_s: float, overlap: float) -> float:
    """Communication left on the critical path: max(0, comm − overlap · compute it can hide behind)."""
    return max(0.0, comm_s - overlap * hideable_s)

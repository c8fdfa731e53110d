"""Deadline planner: from a model, a method, a GPU type, a dataset and a deadline back to a cluster.

For each GPU count on a ladder (1, 2, 4, then whole nodes: 1, 2, 3, 4, 6, 8, 12, ... nodes) the
planner finds the fastest layout that fits in GPU memory (``training.finetune_memory``) and in the
node's host RAM, and returns the smallest GPU count whose layout meets the deadline. When none
does, it returns the fastest plan it found and says what limits it.

A layout is tensor (tp), pipeline (pp), data (dp) and expert (ep) parallel degrees, a ZeRO stage,
an offload mode, gradient checkpointing and a micro-batch; gradient accumulation fills the global
batch (``global_batch_tokens``). GPUs = tp · pp · dp. Placement: tp innermost (inside a node),
then dp (and ep inside dp · tp), pp outermost (Megatron-LM's rank order).

Time of one run (every term a function below, every constant a named assumption)::

    stage_s   = training_compute.step_time(...)   one micro-batch through one pipeline stage
    u         = stage_s + exposed TP, PP, EP and ZeRO-3 communication per micro-batch
    step_s    = (ga + pp − 1) · u + exposed data-parallel gradient sync + offloaded optimizer step
    total_s   = steps · step_s + load model + tokenize + save checkpoints

with ``ga`` micro-batches per replica per step, ``(pp − 1) · u`` the 1F1B pipeline bubble
(Narayanan et al. 2021, arXiv:2104.04473 §2.2: bubble fraction (p − 1)/m), and ring collectives
costing 2(n − 1)/n · bytes / bandwidth for an all-reduce and (n − 1)/n · bytes / bandwidth for an
all-gather, reduce-scatter or all-to-all (Patarasuk & Yuan 2009; NCCL's bus-bandwidth convention).
Bandwidth is the GPU's intra-node link (``GpuSpec.intra_node_bytes_per_s``) inside a node and each
GPU's share of the instance network (``network_Gbps / gpus``) across nodes, each times an NCCL
efficiency. So adding GPUs is not free: per-step communication stays while per-GPU compute shrinks.

Speed: memory questions go to ``memory_oracle`` (a few calls of the memory model per layout family,
shared by every GPU type); per-layout costs are cached per (model, setup, GPU, GPU count); data size
and deadline only enter a last, cheap loop. Plans are monotone by construction: for each GPU count
the best time is an exact minimum over memory-feasible layouts, each non-decreasing in the data,
and the smallest GPU count meeting the deadline is found by an exact scan.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, Iterable, Mapping

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing.planner import cluster
from llmsizing.training import compute as tc
from llmsizing.assumptions import Assumptions
from llmsizing.dataset import DatasetSize, dataset_size
from llmsizing.planner.memory_oracle import MemoryOracle, memory_on_gpu, oracle_for
from llmsizing.errors import ScenarioError
from llmsizing.specs import GpuSpec, ModelSpec
from llmsizing.units import SECONDS_PER_HOUR, parse_duration_s
from llmsizing.weights import weight_bytes

METHODS = ("full", "lora", "qlora")
OFFLOADS = ("none", "optimizer", "optimizer+params")
ZERO_STAGES = (0, 1, 2, 3)
FP32_BYTES = 4.0
BF16_BYTES = 2.0
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
TP_MAX = 8        # tensor parallelism stays inside a node (NVLink/NVSwitch domain)


# ============================================================================ communication model


def ring_allreduce_s(n_bytes: float, n: int, bytes_per_s: float) -> float:
    """Ring all-reduce time: 2(n − 1)/n · bytes / bandwidth (Patarasuk & Yuan 2009; NCCL busbw)."""
    if n <= 1 or n_bytes <= 0:
        return 0.0
    return 2.0 * (n - 1) / n * n_bytes / bytes_per_s


def ring_allgather_s(n_bytes: float, n: int, bytes_per_s: float) -> float:
    """Ring all-gather (or reduce-scatter) of a ``n_bytes`` result: (n − 1)/n · bytes / bandwidth."""
    if n <= 1 or n_bytes <= 0:
        return 0.0
    return (n - 1) / n * n_bytes / bytes_per_s


def all_to_all_s(n_bytes: float, n: int, bytes_per_s: float) -> float:
    """All-to-all where each GPU holds ``n_bytes`` to spread evenly: (n − 1)/n · bytes / bandwidth."""
    if n <= 1 or n_bytes <= 0:
        return 0.0
    return (n - 1) / n * n_bytes / bytes_per_s


def pipeline_bubble_fraction(pp: int, micro_batches: int) -> float:
    """1F1B bubble share of a step: (p − 1) / (m + p − 1) (Narayanan et al. 2021 §2.2)."""
    if pp <= 1:
        return 0.0
    return (pp - 1) / (micro_batches + pp - 1)


def exposed_s(comm_s: float, hideable_s: float, overlap: float) -> float:
    """Communication left on the critical path: max(0, comm − overlap · compute it can hide behind)."""
    return max(0.0, comm_s - overlap * hideable_s)


# ============================================================================ request and results


@dataclass(frozen=True)
class Request:
    """What the user fixed. ``None`` fields are searched by the planner."""

    method: str = "lora"
    precision: str = "mixed-bf16"
    optimizer: str = "adamw"
    seq_len: int = 4096
    lora_rank: int = 16
    lora_targets: str = "all-linear"
    qlora_quant: str = "nf4-dq"
    micro_batch: int | None = None
    gradient_checkpointing: bool | None = None
    zero: int | None = None
    offload: str | None = None
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ScenarioError(f"method {self.method!r} is not one of {', '.join(METHODS)}")
        if self.offload is not None and self.offload not in OFFLOADS:
            raise ScenarioError(f"offload {self.offload!r} is not one of {', '.join(OFFLOADS)}")
        if self.zero is not None and self.zero not in ZERO_STAGES:
            raise ScenarioError(f"ZeRO stage {self.zero!r} is not one of 0, 1, 2, 3")
        for name in ("seq_len", "lora_rank", "micro_batch", "tp", "pp", "ep"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ScenarioError(f"{name.replace('_', '-')} must be a positive integer, got {v!r}")


@dataclass(frozen=True)
class Layout:
    """A parallel layout and its memory-related switches."""

    tp: int
    pp: int
    dp: int
    ep: int
    zero: int
    offload: str
    micro_batch: int
    grad_accum: int
    gradient_checkpointing: bool

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    def to_dict(self) -> dict:
        return {"tp": self.tp, "pp": self.pp, "dp": self.dp, "ep": self.ep, "zero": self.zero,
                "offload": self.offload, "micro_batch": self.micro_batch, "grad_accum": self.grad_accum,
                "gradient_checkpointing": self.gradient_checkpointing}


@dataclass(frozen=True)
class TimeBreakdown:
    """Seconds of one run by part; ``total_s`` is their sum."""

    compute_s: float          # train_flop / (gpus × hardware FLOP/s per GPU): the ideal
    quantization_s: float     # partial micro-batches and steps (batch granularity)
    bubble_s: float           # pipeline fill and drain
    tp_comm_s: float
    pp_comm_s: float
    ep_comm_s: float
    zero3_comm_s: float       # exposed ZeRO-3 parameter gathers / gradient reduce-scatters (+ parameter offload)
    dp_comm_s: float          # exposed data-parallel gradient synchronisation
    offload_s: float          # offloaded optimizer step: PCIe transfers + CPU-Adam
    load_s: float
    tokenize_s: float
    save_s: float
    total_s: float
    steps: int
    micro_steps_per_step: int

    @property
    def io_s(self) -> float:
        return self.load_s + self.tokenize_s + self.save_s

    @property
    def comm_s(self) -> float:
        return self.tp_comm_s + self.pp_comm_s + self.ep_comm_s + self.zero3_comm_s + self.dp_comm_s

    @property
    def scaling_efficiency(self) -> float:
        """Ideal compute time ÷ training time (I/O excluded): falls as GPUs are added."""
        train = self.total_s - self.io_s
        return self.compute_s / train if train > 0 else 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(io_s=self.io_s, comm_s=self.comm_s, scaling_efficiency=self.scaling_efficiency)
        return d


@dataclass(frozen=True)
class ClusterPlan:
    """Bill of materials derived from a plan (requirements, and the instance that provides them)."""

    nodes: int
    gpus_per_node: int
    cpu_cores: int              # vCPUs required, all nodes
    ram_bytes: int              # host RAM required, all nodes
    storage_bytes: int          # shared storage required
    network_gbps: float         # per node: link to provision (traffic to hide behind compute, capped at the node's network; or data ingest)
    rdma_needed: bool
    instance: str | None
    node: dict                  # what one instance provides (vCPUs, RAM, NVMe, network, price)
    cpu_cores_parts: dict
    ram_per_node_parts: dict
    storage_parts: dict
    network_parts: dict
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


@dataclass(frozen=True)
class FinetunePlan:
    """A fine-tuning plan: layout, memory, time, cluster and cost (JSON keys of ``finetune --json``)."""

    model: str
    method: str
    gpu: str
    precision: str
    optimizer: str
    seq_len: int
    lora_rank: int | None
    lora_targets: str | None
    params_total: int
    trainable_params: int
    gpus: int
    layout: Layout
    memory: Any                 # training.FinetuneMemory (per GPU)
    fits: bool
    fit_reason: str
    dataset: DatasetSize
    train_flop: float
    train_flop_per_token: float
    hardware_flop_per_s_per_gpu: float
    time: TimeBreakdown | None
    deadline_s: float
    meets_deadline: bool
    cluster: ClusterPlan | None
    cost_usd: float | None
    searched: bool              # the planner chose the GPU count (False: --gpus given)
    limit: str                  # what limits a plan that misses the deadline ("" when it meets it)
    notes: tuple[str, ...] = ()

    @property
    def hours(self) -> float | None:
        return self.time.total_s / SECONDS_PER_HOUR if self.time else None

    @property
    def gpu_hours(self) -> float | None:
        h = self.hours
        return None if h is None else h * self.gpus

    def to_dict(self) -> dict:
        """The ``finetune --json`` object: sizes as integer bytes, times in hours (and seconds)."""
        mem = self.memory
        mdict = {}
        if mem is not None:
            md = mem.to_dict() if hasattr(mem, "to_dict") else dict(mem)
            for k in ("weights", "gradients", "optimizer", "activations", "buffers", "overhead", "allocated",
                      "reserved", "total", "host_ram_bytes"):
                if k in md and md[k] is not None:
                    mdict[k] = int(round(md[k]))
        lay = self.layout
        cl = self.cluster
        return {
            "model": self.model, "method": self.method, "gpu": self.gpu, "precision": self.precision,
            "optimizer": self.optimizer, "params_total": self.params_total,
            "trainable_params": self.trainable_params, "gpus": self.gpus,
            "layout": {"tp": lay.tp, "pp": lay.pp, "dp": lay.dp, "ep": lay.ep, "zero": lay.zero,
                       "offload": lay.offload},
            "micro_batch": lay.micro_batch, "grad_accum": lay.grad_accum, "seq_len": self.seq_len,
            "gradient_checkpointing": lay.gradient_checkpointing,
            "lora_rank": self.lora_rank, "lora_targets": self.lora_targets,
            "memory_per_gpu": mdict,
            "gpu_memory_bytes": int(mem.gpu_memory_bytes) if mem is not None else None,
            "fits": self.fits, "fit_reason": self.fit_reason,
            "dataset": {"text": self.dataset.text, "unit": self.dataset.unit, "language": self.dataset.language,
                        "tokenizer": self.dataset.tokenizer, "bytes_per_token": self.dataset.bytes_per_token,
                        "raw_bytes": int(round(self.dataset.raw_bytes)), "epochs": self.dataset.epochs,
                        "packing": self.dataset.packing, "efficiency": self.dataset.efficiency,
                        "explanation": self.dataset.explanation},
            "dataset_tokens": int(round(self.dataset.text_tokens)),
            "train_tokens": int(round(self.dataset.train_tokens)),
            "epochs": self.dataset.epochs,
            "train_flop": self.train_flop, "train_flop_per_token": self.train_flop_per_token,
            "hardware_flop_per_s_per_gpu": self.hardware_flop_per_s_per_gpu,
            "hours": self.hours, "gpu_hours": self.gpu_hours,
            "deadline_hours": self.deadline_s / SECONDS_PER_HOUR, "meets_deadline": self.meets_deadline,
            "time": self.time.to_dict() if self.time else None,
            "cluster": ({"nodes": cl.nodes, "gpus_per_node": cl.gpus_per_node, "cpu_cores": cl.cpu_cores,
                         "ram_bytes": cl.ram_bytes, "storage_bytes": cl.storage_bytes,
                         "network_gbps": cl.network_gbps, "rdma_needed": cl.rdma_needed, "instance": cl.instance,
                         "node": cl.node, "cpu_cores_parts": cl.cpu_cores_parts,
                         "ram_per_node_parts": cl.ram_per_node_parts, "storage_parts": cl.storage_parts,
                         "network_parts": cl.network_parts, "notes": list(cl.notes)} if cl else None),
            "cost_usd": self.cost_usd,
            "searched": self.searched, "limit": self.limit, "notes": list(self.notes),
        }

    def row(self) -> dict:
        """One flat, DataFrame-friendly row for report tables."""
        cl = self.cluster
        return {"model": self.model, "method": self.method, "gpu": self.gpu, "data": self.dataset.text,
                "dataset_tokens": self.dataset.text_tokens, "train_tokens": self.dataset.train_tokens,
                "gpus": self.gpus, "tp": self.layout.tp, "pp": self.layout.pp, "dp": self.layout.dp,
                "ep": self.layout.ep, "zero": self.layout.zero, "offload": self.layout.offload,
                "micro_batch": self.layout.micro_batch, "grad_accum": self.layout.grad_accum,
                "gradient_checkpointing": self.layout.gradient_checkpointing, "fits": self.fits,
                "memory_per_gpu_bytes": float(self.memory.total) if self.memory is not None else None,
                "gpu_memory_bytes": self.memory.gpu_memory_bytes if self.memory is not None else None,
                "train_flop": self.train_flop, "hours": self.hours, "gpu_hours": self.gpu_hours,
                "deadline_hours": self.deadline_s / SECONDS_PER_HOUR, "meets_deadline": self.meets_deadline,
                "scaling_efficiency": self.time.scaling_efficiency if self.time else None,
                "nodes": cl.nodes if cl else None, "instance": cl.instance if cl else None,
                "cpu_cores": cl.cpu_cores if cl else None, "ram_bytes": cl.ram_bytes if cl else None,
                "storage_bytes": cl.storage_bytes if cl else None,
                "network_gbps": cl.network_gbps if cl else None, "rdma_needed": cl.rdma_needed if cl else None,
                "cost_usd": self.cost_usd, "limit": self.limit}


# ============================================================================ context (cached per setup)


def _training():
    from llmsizing.training import memory as training

    return training


def _assumptions(assumptions: Assumptions | Mapping | None) -> Assumptions:
    return assumptions if isinstance(assumptions, Assumptions) else Assumptions(assumptions)


def _int_list(value: Any, name: str) -> tuple[int, ...]:
    """Parse an assumption holding comma-separated positive integers ("8,64")."""
    try:
        out = tuple(int(x) for x in str(value).split(",") if x.strip())
    except ValueError:
        raise ScenarioError(f"assumption '{name}' must be comma-separated integers, got {value!r}") from None
    if not out or any(x < 1 for x in out):
        raise ScenarioError(f"assumption '{name}' must be comma-separated positive integers, got {value!r}")
    return out


def _powers_of_two(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def gpu_count_ladder(gpus_per_node: int, max_gpus: int) -> list[int]:
    """GPU counts the planner tries: 1, 2, 4, ... below a node, then 1, 2, 3, 4, 6, 8, 12, 16, 24, ... nodes.

    Whole nodes in powers of two and 1.5 × powers of two: each step adds at most 50% more GPUs.
    """
    counts = {g for g in _powers_of_two(gpus_per_node) if g < gpus_per_node}
    max_nodes = max(1, max_gpus // gpus_per_node)
    for k in _powers_of_two(max_nodes):
        counts.add(k * gpus_per_node)
        if k >= 2 and 3 * k // 2 <= max_nodes:
            counts.add(3 * k // 2 * gpus_per_node)
    return sorted(counts)


@dataclass
class _Shape:
    """A layout without the micro-batch, with its data-independent cost terms per micro-batch size."""

    tp: int
    pp: int
    dp: int
    ep: int
    zero: int
    offload: str
    gc: bool
    coef: tuple | None = None        # Context.coefficients, filled lazily
    io: tuple | None = None          # (load_s, save_s), filled lazily
    fit_mb: int | None = None        # largest micro-batch that fits; 0 = nothing fits; None = unknown


def _oracle(spec: ModelSpec, req: Request, a: Assumptions, gpu: GpuSpec) -> MemoryOracle:
    kw = {"method": req.method, "precision": req.precision, "optimizer": req.optimizer, "seq_len": req.seq_len,
          "lora_rank": req.lora_rank, "lora_targets": req.lora_targets}
    if req.method == "qlora":
        kw["qlora_quant"] = req.qlora_quant
    return oracle_for(spec, kw, a, gpu)


@lru_cache(maxsize=256)
def _trainable_in_experts(spec: ModelSpec, method: str, rank: int, targets: str) -> float:
    """Trainable parameters inside the routed experts (all of them for full fine-tuning, else their adapters)."""
    if method == "full":
        return float(A.params_by_group(spec).get("experts", 0))
    from llmsizing.lora import lora_target_modules

    return float(sum(m.count * rank * (m.in_features + m.out_features)
                     for m in lora_target_modules(spec, targets) if m.group == "experts"))


class _ModelSetup:
    """GPU-independent facts of one (model, request): FLOP breakdowns, trainable parameters, and the
    parts of ``training_compute.step_time`` that do not depend on the GPU (shared by every GPU type)."""

    def __init__(self, spec: ModelSpec, req: Request, a: Assumptions, oracle: MemoryOracle):
        self.base = {gc: oracle.setup(1, 1, 1, 1, 0, "none", gc, 1) for gc in (False, True)}
        self.fb = {gc: tc.flop_breakdown_per_token(spec, self.base[gc]) for gc in (False, True)}
        self.trainable = int(_training().trainable_params(spec, self.base[True]))
        self.params_total = A.params_total(spec)
        self.quantized_params = tc.quantized_weight_params(spec, self.base[True])


_MODEL_SETUPS: dict[tuple, _ModelSetup] = {}


def step_time_parts(spec: ModelSpec, setup: Any, fb: Any, quantized_params: float, gpu: GpuSpec,
                    a: Assumptions) -> tuple[float, float, float]:
    """(compute_s, host_s, dequant_s) of ``training_compute.step_time`` at tp = pp = 1 from a cached FLOP
    breakdown, in that function's documented form::

        compute = T · (model + ρ · (train − model)) / (MFU · peak);  host = L · host_overhead_s_per_layer
        dequant = passes · quantized_weights · qlora_dequant_bytes_per_param / HBM bandwidth   (QLoRA)

    ``tests/test_planner.py`` checks it equals ``step_time`` (and the tp/pp/micro-batch scaling).
    """
    rho = float(a["recompute_time_fraction"])
    u = tc.mfu(gpu, setup, a)
    if u <= 0:
        raise ScenarioError(f"MFU for {setup.method} on {gpu.slug} must be > 0, got {u}")
    peak = tc.peak_flop_per_s(gpu, setup)
    tokens = setup.micro_batch * setup.seq_len
    compute = tokens * (fb.model + rho * (fb.train - fb.model)) / (u * peak)
    host = spec.num_layers * float(a["host_overhead_s_per_layer"])
    dequant = 0.0
    if setup.method == "qlora":
        passes = 3 if setup.gradient_checkpointing else 2
        dequant = passes * quantized_params * float(a["qlora_dequant_bytes_per_param"]) / gpu.mem_bw_bytes_per_s
    return compute, host, dequant


class _StepParts:
    """compute_s, host_s, dequant_s of one micro-batch of one sequence at tp = pp = 1."""

    __slots__ = ("compute_s", "host_s", "dequant_s")

    def __init__(self, parts: tuple[float, float, float]):
        self.compute_s, self.host_s, self.dequant_s = parts


class _Context:
    """Everything about one (model, GPU, request, assumptions) that does not depend on data or GPU count."""

    def __init__(self, spec: ModelSpec, gpu: GpuSpec, req: Request, a: Assumptions):
        self.spec, self.gpu, self.req, self.a = spec, gpu, req, a
        tr = _training()
        self.tr = tr
        self.S = req.seq_len
        self.oracle = _oracle(spec, req, a, gpu)
        mkey = (spec, req.method, req.precision, req.optimizer, req.seq_len, req.lora_rank, req.lora_targets,
                req.qlora_quant, tuple(sorted(a.overrides.items())))
        ms = _MODEL_SETUPS.get(mkey)
        if ms is None:
            if len(_MODEL_SETUPS) >= _CONTEXTS_MAX:
                _MODEL_SETUPS.clear()
            ms = _MODEL_SETUPS[mkey] = _ModelSetup(spec, req, a, self.oracle)
        self.base, self.fb = ms.base, ms.fb
        self.st = {gc: _StepParts(step_time_parts(spec, self.base[gc], self.fb[gc], ms.quantized_params, gpu, a))
                   for gc in (False, True)}
        self.trainable = ms.trainable
        self.params_total = ms.params_total
        # trainable parameters inside routed experts (sharded by ep, not tp)
        self.trainable_experts = self._trainable_in_experts()
        # base weights in their training format (bf16/fp32, or 4-bit for QLoRA)
        wfmt = req.qlora_quant if req.method == "qlora" else ("fp32" if req.precision == "fp32" else "bf16")
        by_group = _weight_bytes_by_group(spec, wfmt)
        self.weight_bytes = sum(by_group.values())
        self.weight_bytes_experts = by_group.get("experts", 0.0)
        self.grad_bytes_per_elem = FP32_BYTES if req.precision == "fp32" else BF16_BYTES
        self.act_bytes = FP32_BYTES if req.precision == "fp32" else BF16_BYTES
        self.checkpoint_native_bytes = _weight_bytes(spec, spec.checkpoint_format)
        self.gb_seqs = max(1, int(a["global_batch_tokens"]) // self.S)
        # assumption values read once (the search reads them millions of times)
        self.k = {name: float(a[name]) for name in (
            "tp_comm_overlap", "ep_comm_overlap", "pcie_host_device_bytes_per_s", "zero3_comm_overlap",
            "dp_comm_overlap", "cpu_adam_params_per_s_per_core", "cpu_cores_per_gpu", "cpu_cores_base_per_node",
            "storage_read_bytes_per_s_per_node", "storage_write_bytes_per_s_per_node", "checkpoint_interval_hours",
            "tokenization_bytes_per_s_per_core", "cuda_context_bytes", "host_ram_base_per_node_bytes",
            "host_ram_per_gpu_bytes", "instance_ram_usable_fraction", "planner_search_tolerance")}
        self.sibling: dict[tuple, bool] = {}
        self.ep_wanted = _int_list(a["planner_expert_parallel"], "planner_expert_parallel")
        self.interval_s = self.k["checkpoint_interval_hours"] * SECONDS_PER_HOUR
        self.checkpoint_bytes_total = self.checkpoint_bytes()
        self.opt_bytes_per_param = self.checkpoint_bytes_total / max(1, self.trainable) - (
            FP32_BYTES if req.precision == "fp32" else BF16_BYTES)
        self.max_mb = int(a["max_micro_batch"])
        self.moe_layers = len(spec.moe_layers)
        # network
        self.intra_bw = gpu.intra_node_bytes_per_s * float(a["nccl_intra_node_efficiency"])
        self.inter_eff = float(a["nccl_inter_node_efficiency"])
        multi = cluster.node_for_gpus(gpu, 10**9, a)
        self.gpn = multi.gpus_per_node
        self.ladder = gpu_count_ladder(self.gpn, int(a["max_gpus"]))
        self.nodes_cache: dict[int, cluster.NodeType] = {}
        self.shapes_cache: dict[int, list[_Shape]] = {}
        self.fwd_share = {gc: (self.fb[gc].forward + self.fb[gc].attention / 3.0) / self.fb[gc].train
                          for gc in (False, True)}
        # largest per-GPU token throughput any layout can reach (for lower bounds on time)
        self.tps_max = max(self.tokens_per_s_per_gpu(1, 1, gc, m) for gc in (False, True)
                           for m in _powers_of_two(self.max_mb))

    # ---------------------------------------------------------------- memory, step time
    def grad_accum_for_memory(self, dp: int, mb: int, zero: int = 0, offload: str = "none") -> int:
        """Gradient accumulation at the full global batch (2 stands for 'more than one').

        It changes memory only with ZeRO 0/1 and nothing offloaded (a persistent full-gradient buffer);
        elsewhere 1 is passed so that equal layouts share one memory result."""
        if zero >= 2 or offload != "none":
            return 1
        return 2 if dp * mb < self.gb_seqs else 1

    def memory(self, tp, pp, dp, ep, zero, offload, gc, mb):
        """training.finetune_memory of a layout on this GPU (memoized, shared across GPUs); None if invalid."""
        key = (tp, pp, dp, ep, zero, offload, gc, mb, self.grad_accum_for_memory(dp, mb, zero, offload))
        ref = self.oracle.memory(key)
        return None if ref is None else memory_on_gpu(ref, self.gpu, tp * pp * dp)

    def fits(self, tp, pp, dp, ep, zero, offload, gc, mb, node: cluster.NodeType) -> bool:
        """Fits the GPU's memory, and with offloading the node's usable host RAM."""
        key = (tp, pp, dp, ep, zero, offload, gc, mb, self.grad_accum_for_memory(dp, mb, zero, offload))
        if not self.oracle.fits_gpu(key, self.gpu.memory_bytes):
            return False
        if node.ram_bytes is not None and offload != "none":
            m = self.memory(tp, pp, dp, ep, zero, offload, gc, mb)
            per_node = min(node.gpus_per_node, tp * pp * dp)
            need = self.host_ram_per_node(m, per_node, tp, pp, dp, zero)["total"]
            if need > node.ram_bytes * float(self.a["instance_ram_usable_fraction"]):
                return False
        return True

    def stage_s(self, tp: int, pp: int, gc: bool, mb: float) -> float:
        """One micro-batch through one pipeline stage, scaled from training_compute.step_time at tp=pp=mb=1.

        step_time's documented form: max(T·c/(tp·pp), L/pp·host) + dequant/(tp·pp), T = mb·seq_len.
        """
        st = self.st[gc]
        return max(st.compute_s * mb / (tp * pp), st.host_s / pp) + st.dequant_s / (tp * pp)

    def tokens_per_s_per_gpu(self, tp: int, pp: int, gc: bool, mb: float) -> float:
        return mb * self.S / self.stage_s(tp, pp, gc, mb) / (tp * pp)

    def node(self, gpus: int) -> cluster.NodeType:
        if gpus not in self.nodes_cache:
            self.nodes_cache[gpus] = cluster.node_for_gpus(self.gpu, gpus, self.a)
        return self.nodes_cache[gpus]

    def inter_bw(self, node: cluster.NodeType) -> float:
        """Each GPU's share of the node's network, times the NCCL efficiency."""
        return node.network_bytes_per_s / node.gpus_per_node * self.inter_eff

    def _trainable_in_experts(self) -> float:
        spec, r = self.spec, self.req
        if not spec.is_moe:
            return 0.0
        return _trainable_in_experts(spec, r.method, r.lora_rank, r.lora_targets)

    # ---------------------------------------------------------------- per-rank sizes
    def trainable_per_rank(self, tp, pp, ep) -> float:
        """Trainable parameters one GPU holds before ZeRO: dense part / (tp·pp), routed experts / (tp·ep·pp)
        (training.py splits expert matrices by tp and the experts by ep)."""
        dense = self.trainable - self.trainable_experts
        return dense / (tp * pp) + self.trainable_experts / (tp * ep * pp)

    def split_per_rank(self, tp: int, pp: int, ep: int) -> tuple[float, float, float, float]:
        """(dense weight bytes, expert weight bytes, dense trainable params, expert trainable params) one GPU
        holds before ZeRO. ZeRO shards the dense part over dp and the experts over their own data-parallel
        group of dp / ep ranks (``expert_dp``)."""
        dw = (self.weight_bytes - self.weight_bytes_experts) / (tp * pp)
        ew = self.weight_bytes_experts / (tp * ep * pp)
        dt = (self.trainable - self.trainable_experts) / (tp * pp)
        et = self.trainable_experts / (tp * ep * pp)
        return dw, ew, dt, et

    @staticmethod
    def expert_dp(dp: int, ep: int) -> int:
        """Data-parallel group of an expert shard: dp / ep ranks (training.py: no sharding if ep ∤ dp)."""
        return dp // ep if dp % ep == 0 else 1

    def weight_bytes_per_rank(self, tp, pp, ep) -> float:
        """Base-weight bytes one GPU holds before ZeRO-3 sharding (same split as ``trainable_per_rank``)."""
        dense = self.weight_bytes - self.weight_bytes_experts
        return dense / (tp * pp) + self.weight_bytes_experts / (tp * ep * pp)

    def optimizer_bytes_per_param(self) -> float:
        """Optimizer state + master-weight bytes per trainable parameter (checkpoint bytes less the weight)."""
        return self.opt_bytes_per_param

    def surely_too_big(self, sh: "_Shape") -> bool:
        """Cheap test without the memory model: a lower bound of the model states on one GPU (weights,
        gradients and optimizer states of its partition, experts counted as split by tp · ep · pp) plus
        the CUDA context exceeds the GPU. Paged optimizer states do not count (they page to host)."""
        tp, pp, dp, ep, z = sh.tp, sh.pp, sh.dp, sh.ep, sh.zero
        w = 0.0 if sh.offload == "optimizer+params" else self.weight_bytes_per_rank(tp, pp, ep) / (dp if z == 3 else 1)
        states = 0.0
        if sh.offload == "none":
            t = self.trainable_per_rank(tp, pp, ep)
            opt = 0.0 if self.req.optimizer.startswith("paged-") else self.optimizer_bytes_per_param()
            states = t * (self.grad_bytes_per_elem / (dp if z >= 2 else 1) + opt / (dp if z >= 1 else 1))
        return w + states + self.k["cuda_context_bytes"] > self.gpu.memory_bytes

    def surely_no_host_ram(self, sh: "_Shape", n: int) -> bool:
        """Cheap test for offloading shapes: a lower bound of the offloaded states (optimizer states and master
        weights of the GPU's ZeRO partition, plus its weights with parameter offload) of the node's GPUs,
        with the per-process host RAM, exceeds the node's usable RAM."""
        node = self.node(n)
        if sh.offload == "none" or node.ram_bytes is None:
            return False
        per_gpu = self.trainable_per_rank(sh.tp, sh.pp, sh.ep) / sh.dp * self.optimizer_bytes_per_param()
        if sh.offload == "optimizer+params":
            per_gpu += self.weight_bytes_per_rank(sh.tp, sh.pp, sh.ep) / sh.dp
        gpus_on_node = min(n, node.gpus_per_node)
        need = self.k["host_ram_base_per_node_bytes"] + gpus_on_node * (self.k["host_ram_per_gpu_bytes"] + per_gpu)
        return need > node.ram_bytes * self.k["instance_ram_usable_fraction"]

    def checkpoint_bytes(self) -> float:
        """One training checkpoint: trainable weights + master copy + optimizer state.

        bytes/param = weight (2 bf16, 4 fp32) + master_weight_bytes (mixed-bf16) + optimizer state
        (adam_state_bytes_fp32, adam_8bit_state_bytes, 4 for SGD momentum, 0 for SGD).
        """
        a, r = self.a, self.req
        per = FP32_BYTES if r.precision == "fp32" else BF16_BYTES
        if r.precision == "mixed-bf16":
            per += float(a["master_weight_bytes"])
        opt = r.optimizer
        if opt == "adamw":
            per += float(a["adam_state_bytes_fp32"])
        elif opt in ("adamw-8bit", "paged-adamw-8bit"):
            per += float(a["adam_8bit_state_bytes"])
        elif opt == "sgd-momentum":
            per += FP32_BYTES
        return self.trainable * per

    def final_model_bytes(self) -> float:
        """The exported result: full weights in bf16 (full fine-tuning) or the adapters in bf16."""
        if self.req.method == "full":
            return _weight_bytes(self.spec, "bf16")
        return self.trainable * BF16_BYTES

    def host_ram_per_node(self, mem, gpus_on_node, tp, pp, dp, zero) -> dict:
        shard = 1.0 / (tp * pp * (dp if zero == 3 else 1))
        staging = min(1.0, gpus_on_node * shard) * self.checkpoint_native_bytes
        # FinetuneMemory.host_ram_bytes covers min(gpus, node_gpus_max) processes
        procs = min(tp * pp * dp, self.gpu.node_gpus_max or tp * pp * dp)
        offloaded = float(getattr(mem, "host_ram_bytes", 0.0) or 0.0) / max(1, procs)
        return cluster.host_ram_required_per_node_bytes(gpus_on_node, self.gpu.memory_bytes, offloaded, staging,
                                                        self.a)

    # ---------------------------------------------------------------- layouts
    def tp_choices(self, n: int) -> list[int]:
        """Tensor-parallel degrees: powers of two inside a node dividing the heads (training.check_layout)."""
        spec = self.spec
        kv = spec.num_kv_heads

        def ok(t: int) -> bool:
            return spec.num_heads % t == 0 and (t == 1 or spec.is_mla or kv % t == 0 or t % kv == 0)

        out = [t for t in _powers_of_two(min(TP_MAX, self.gpn, n)) if n % t == 0 and ok(t)]
        if self.req.tp is not None:
            out = [t for t in out if t == self.req.tp]
        return out

    def pp_choices(self, n_over_tp: int) -> list[int]:
        """Pipeline degrees: powers of two up to max_pipeline_stages (or exactly the pinned --pp)."""
        if self.req.pp is not None:
            p = self.req.pp
            return [p] if p <= self.spec.num_layers and n_over_tp % p == 0 else []
        limit = min(int(self.a["max_pipeline_stages"]), self.spec.num_layers, n_over_tp)
        return [p for p in _powers_of_two(limit) if n_over_tp % p == 0]

    def ep_choices(self, dp: int, tp: int) -> list[int]:
        if not self.spec.is_moe:
            out = [1]
        else:
            E = self.spec.num_experts
            # training.py splits routed experts by tp and by ep, so every expert is held only when
            # ep divides dp (ep ≤ dp); ep | dp·tp alone would leave experts unplaced when ep > dp.
            # The search tries no expert parallelism and planner_expert_parallel (one node's NVLink domain).
            valid = [e for e in _powers_of_two(min(E, dp)) if E % e == 0 and dp % e == 0]
            out = [e for e in valid if e == 1 or e in self.ep_wanted] if self.req.ep is None else valid
        if self.req.ep is not None:
            out = [e for e in out if e == self.req.ep]
        return out

    def shapes(self, n: int) -> list[_Shape]:
        """Every candidate layout shape for ``n`` GPUs (cached)."""
        if n in self.shapes_cache:
            return self.shapes_cache[n]
        r = self.req
        out: list[_Shape] = []
        gcs = (r.gradient_checkpointing,) if r.gradient_checkpointing is not None else (False, True)
        for tp in self.tp_choices(n):
            for pp in self.pp_choices(n // tp):
                dp = n // (tp * pp)
                if dp > self.gb_seqs:
                    continue
                for ep in self.ep_choices(dp, tp):
                    for zero, offload in self._zero_offload(dp, pp):
                        for gc in gcs:
                            out.append(_Shape(tp, pp, dp, ep, zero, offload, gc))
        self.shapes_cache[n] = out
        return out

    def _zero_offload(self, dp: int, pp: int) -> list[tuple[int, str]]:
        """(ZeRO stage, offload) pairs to try.

        ZeRO 0, 1 and 2 move the same bytes (Rajbhandari et al. 2020, arXiv:1910.02054 §7), so the search
        uses the one that needs least memory: stage 2 (stage 1 with pipeline parallelism, DDP on one GPU).
        DeepSpeed runs ZeRO-2/3 and offload only without pipeline parallelism; offloading the optimizer
        needs ZeRO >= 1 (ZeRO-Offload runs as stage 2 on one GPU), offloading parameters ZeRO-3.
        """
        r = self.req
        if pp > 1:
            pairs = [(1 if dp > 1 else 0, "none")]
        else:
            pairs = [(2 if dp > 1 else 0, "none")]
            if dp > 1:
                pairs.append((3, "none"))
            pairs += [(2, "optimizer"), (3, "optimizer"), (3, "optimizer+params")]
        if r.zero is not None:
            # the user's stage: keep the pairs of its class (3, or 0-2 which share a cost) at that stage
            pairs = [(r.zero, o) for (z, o) in pairs if (z == 3) == (r.zero == 3)]
            pairs = [(z, o) for (z, o) in pairs if o == "none" or z >= 1]
            pairs = list(dict.fromkeys(pairs))
        if r.offload is not None:
            pairs = [(z, o) for (z, o) in pairs if o == r.offload]
        return pairs

    # ---------------------------------------------------------------- costs of one shape
    def coefficients(self, sh: _Shape, n: int) -> tuple:
        """Data- and micro-batch-independent cost terms of a shape on ``n`` GPUs (cached on the shape).

        (C, H, D, comm_per_mb, gather, z3_overlap_per_mb, dp_allreduce, dp_overlap_per_mb, offload, tp_per_mb,
        pp_per_mb, ep_per_mb): one micro-batch of ``mb`` sequences costs stage = max(C·mb, H) + D (scaled
        training_compute.step_time), TP/PP/EP communication ∝ mb, ZeRO-3 traffic ``gather`` hidden behind
        up to z3_overlap·mb of compute, the data-parallel all-reduce behind up to dp_overlap·mb of backward.
        """
        if sh.coef is not None:
            return sh.coef
        k = self.k
        tp, pp, dp, ep, gc = sh.tp, sh.pp, sh.dp, sh.ep, sh.gc
        node = self.node(n)
        inter = self.inter_bw(node)
        multi = n > node.gpus_per_node
        st = self.st[gc]
        C = st.compute_s / (tp * pp)
        H = st.host_s / pp
        D = st.dequant_s / (tp * pp)
        act1 = self.S * self.spec.hidden_size * self.act_bytes          # one sequence's hidden states
        # tensor parallel (inside the node): Megatron all-reduces per layer of the stage
        n_ar = TP_ALLREDUCES_PER_LAYER + (TP_ALLREDUCES_PER_LAYER_RECOMPUTE if gc else 0)
        tp1 = (1.0 - k["tp_comm_overlap"]) * n_ar * (self.spec.num_layers / pp) * ring_allreduce_s(
            act1, tp, self.intra_bw)
        # pipeline point-to-point
        pp_bw = inter if (multi and tp * dp >= node.gpus_per_node) else self.intra_bw
        pp1 = PP_TRANSFERS_PER_MICRO_BATCH * act1 / pp_bw if pp > 1 else 0.0
        # expert parallel all-to-all
        ep1 = 0.0
        if ep > 1 and self.moe_layers:
            n_a2a = EP_ALL_TO_ALLS_PER_LAYER + (EP_ALL_TO_ALLS_PER_LAYER_RECOMPUTE if gc else 0)
            ep_bw = inter if (multi and ep > node.gpus_per_node) else self.intra_bw
            ep1 = (1.0 - k["ep_comm_overlap"]) * n_a2a * (self.moe_layers / pp) * all_to_all_s(
                act1 * self.spec.experts_per_token / tp, ep, ep_bw)
        # data parallel: ZeRO-3 gathers per micro-step, or one gradient all-reduce per step
        dp_bw = inter if (multi and tp * dp > node.gpus_per_node) else self.intra_bw
        edp = self.expert_dp(dp, ep)
        edp_bw = inter if (multi and tp * ep * edp > node.gpus_per_node) else self.intra_bw
        dw, ew, dt, et = self.split_per_rank(tp, pp, ep)
        g = self.grad_bytes_per_elem
        pcie = k["pcie_host_device_bytes_per_s"]
        gather = ar = ovz = ovd = 0.0
        if sh.zero == 3:
            # parameters gathered for the forward and the backward pass, gradients reduce-scattered
            gather = (ZERO3_GATHERS_PER_MICRO_STEP * (ring_allgather_s(dw, dp, dp_bw) + ring_allgather_s(ew, edp, edp_bw))
                      + ring_allgather_s(dt * g, dp, dp_bw) + ring_allgather_s(et * g, edp, edp_bw))
            if sh.offload == "optimizer+params":
                gather += ZERO3_GATHERS_PER_MICRO_STEP * (dw / dp + ew / edp) / pcie
            ovz = k["zero3_comm_overlap"] * C
        else:
            ar = ring_allreduce_s(dt * g, dp, dp_bw) + ring_allreduce_s(et * g, edp, edp_bw)
            ovd = k["dp_comm_overlap"] * (1.0 - self.fwd_share[gc]) * C
        off = 0.0
        if sh.offload != "none":
            shard = (dt / dp + et / edp) if sh.zero >= 1 else dt + et
            off = (shard * (self.grad_bytes_per_elem + BF16_BYTES) / pcie
                   + shard / (k["cpu_adam_params_per_s_per_core"] * self.adam_cores_per_gpu(node)))
        sh.coef = (C, H, D, tp1 + pp1 + ep1, gather, ovz, ar, ovd, off, tp1, pp1, ep1)
        return sh.coef

    def costs(self, sh: _Shape, mb: int, n: int) -> tuple[float, float, dict]:
        """(u, v, parts): seconds of one micro-batch on one stage with exposed communication, and the
        per-step extra (exposed data-parallel sync, offloaded optimizer step)."""
        C, H, D, cpm, gather, ovz, ar, ovd, off, tp1, pp1, ep1 = self.coefficients(sh, n)
        stage = max(C * mb, H) + D
        z3 = exposed_s(gather, mb, ovz)       # ovz, ovd: hideable seconds per sequence of the micro-batch
        dps = exposed_s(ar, mb, ovd)
        parts = {"stage": stage, "tp": tp1 * mb, "pp": pp1 * mb, "ep": ep1 * mb, "zero3": z3, "dp": dps,
                 "offload": off}
        return stage + cpm * mb + z3, dps + off, parts

    def adam_cores_per_gpu(self, node: cluster.NodeType) -> float:
        """vCPUs per GPU left for CPU-Adam: the node's vCPUs less the base and each GPU's process and loaders
        (a node without catalog vCPUs is taken to have twice the per-GPU need)."""
        k = self.k
        if node.vcpus:
            spare = (node.vcpus - k["cpu_cores_base_per_node"]) / node.gpus_per_node - k["cpu_cores_per_gpu"]
        else:
            spare = k["cpu_cores_per_gpu"]
        return max(1.0, spare)

    def fixed_io_s(self, sh: _Shape, n: int) -> tuple[float, float]:
        """(load_s, save_s): read the node's share of the base checkpoint; write the checkpoints."""
        if sh.io is not None:
            return sh.io
        k = self.k
        node = self.node(n)
        nodes = cluster.nodes_for(n, node)
        gpus_on_node = min(n, node.gpus_per_node)
        shard = 1.0 / (sh.tp * sh.pp * (sh.dp if sh.zero == 3 else 1))
        load = min(1.0, gpus_on_node * shard) * self.checkpoint_native_bytes / k["storage_read_bytes_per_s_per_node"]
        save = self.checkpoint_bytes_total / nodes / k["storage_write_bytes_per_s_per_node"]  # one save
        sh.io = (load, save)
        return load, save

    def tokenize_s(self, raw_bytes: float, n: int) -> float:
        """Tokenize the raw text on the cluster's vCPUs (text given as tokens needs none)."""
        node = self.node(n)
        nodes = cluster.nodes_for(n, node)
        vcpus = (node.vcpus or self.k["cpu_cores_per_gpu"] * node.gpus_per_node) * nodes
        return raw_bytes / (self.k["tokenization_bytes_per_s_per_core"] * vcpus)


_CONTEXTS: dict[tuple, _Context] = {}
_CONTEXTS_MAX = 4096


def _context(spec: ModelSpec, gpu: GpuSpec, req: Request, a: Assumptions) -> _Context:
    key = (spec, gpu.slug, gpu.memory_bytes, req, tuple(sorted(a.overrides.items())))
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        if len(_CONTEXTS) >= _CONTEXTS_MAX:
            _CONTEXTS.clear()
        ctx = _CONTEXTS[key] = _Context(spec, gpu, req, a)
    else:
        ctx.a = a  # record assumption use on the caller's object
    return ctx


def clear_cache() -> None:
    """Forget cached contexts and memory results (after changing catalogs or modules at run time)."""
    _CONTEXTS.clear()
    from llmsizing.planner import memory_oracle

    memory_oracle.clear()


@lru_cache(maxsize=512)
def _weight_bytes_by_group(spec: ModelSpec, precision: str) -> dict[str, float]:
    from llmsizing.weights import weight_bytes_by_group

    return weight_bytes_by_group(spec, precision)


@lru_cache(maxsize=512)
def _weight_bytes(spec: ModelSpec, precision: str) -> float:
    return weight_bytes(spec, precision)


# ============================================================================ time of a layout


def _data_terms(ctx: _Context, seqs: int, dp: int, mb: int) -> tuple[int, int, int]:
    """(steps, micro-batches per replica per step, effective micro-batch) for ``seqs`` sequences."""
    s_step = min(seqs, ctx.gb_seqs)
    steps = -(-seqs // ctx.gb_seqs)
    r = -(-s_step // dp)
    mb_eff = min(mb, r)
    ga = -(-r // mb_eff)
    return steps, ga, mb_eff


def _shape_time_s(ctx: _Context, sh: _Shape, mb: int, n: int, seqs: int, tok_s: float) -> float:
    """Total seconds for shape ``sh`` at micro-batch ``mb`` (no memory check):
    load + save + tokenize + steps · ((ga + pp − 1) · u + v)."""
    s_step = seqs if seqs < ctx.gb_seqs else ctx.gb_seqs
    steps = -(-seqs // ctx.gb_seqs)
    r = -(-s_step // sh.dp)
    m = mb if mb < r else r
    ga = -(-r // m)
    C, H, D, cpm, gather, ovz, ar, ovd, off = (sh.coef or ctx.coefficients(sh, n))[:9]
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
    load, save = sh.io or ctx.fixed_io_s(sh, n)
    train = steps * ((ga + sh.pp - 1) * u + v)
    return load + save * (1 + int(train // ctx.interval_s)) + tok_s + train


def _shape_lower_bound_s(ctx: _Context, sh: _Shape, max_mb: int, n: int, seqs: int, tok_s: float) -> float:
    """A lower bound of ``_shape_time_s`` over every micro-batch up to ``max_mb`` (one evaluation).

    Per sequence a micro-batch costs u(m)/m, which does not grow with m (host overhead, dequantization
    and ZeRO-3 traffic are per micro-batch), and the step extra v(m) does not grow either; so with
    M = min(max_mb, sequences per replica) every choice takes at least
    steps · (r · u(M)/M + (pp − 1) · (max(C, H) + D) + v(M)), plus I/O.
    """
    s_step = seqs if seqs < ctx.gb_seqs else ctx.gb_seqs
    steps = -(-seqs // ctx.gb_seqs)
    r = -(-s_step // sh.dp)
    m = max_mb if max_mb < r else r
    C, H, D, cpm, gather, ovz, ar, ovd, off = (sh.coef or ctx.coefficients(sh, n))[:9]
    cm = C * m
    u = (cm if cm > H else H) + D + cpm * m
    if gather and gather > ovz * m:
        u += gather - ovz * m
    v = off + (ar - ovd * m if ar and ar > ovd * m else 0.0)
    train = steps * (r * u / m + (sh.pp - 1) * ((C if C > H else H) + D) + v)
    load, save = sh.io or ctx.fixed_io_s(sh, n)
    return load + save * (1 + int(train // ctx.interval_s)) + tok_s + train


def _breakdown(ctx: _Context, sh: _Shape, mb: int, n: int, data: DatasetSize) -> TimeBreakdown:
    """The same total as ``_shape_time_s``, split by part."""
    seqs = max(1, math.ceil(data.train_tokens / ctx.S))
    steps, ga, mb_eff = _data_terms(ctx, seqs, sh.dp, mb)
    u, v, p = ctx.costs(sh, mb_eff, n)
    load, save = ctx.fixed_io_s(sh, n)
    tok = ctx.tokenize_s(data.raw_bytes if data.unit == "bytes" else 0.0, n)
    tps = ctx.tokens_per_s_per_gpu(sh.tp, sh.pp, sh.gc, mb_eff)
    compute = data.train_tokens / (n * tps)
    micro = steps * ga
    train = steps * ((ga + sh.pp - 1) * u + v)
    saves = 1 + int(train // ctx.interval_s)
    save = save * saves
    total = load + save + tok + train
    return TimeBreakdown(
        compute_s=compute, quantization_s=micro * p["stage"] - compute, bubble_s=steps * (sh.pp - 1) * u,
        tp_comm_s=micro * p["tp"], pp_comm_s=micro * p["pp"], ep_comm_s=micro * p["ep"],
        zero3_comm_s=micro * p["zero3"], dp_comm_s=steps * p["dp"], offload_s=steps * p["offload"],
        load_s=load, tokenize_s=tok, save_s=save, total_s=total, steps=steps, micro_steps_per_step=ga)


def _mb_options(ctx: _Context) -> list[int]:
    if ctx.req.micro_batch is not None:
        return [ctx.req.micro_batch]
    return _powers_of_two(ctx.max_mb)


def _fit_mb(ctx: _Context, sh: _Shape, n: int) -> int:
    """Largest micro-batch that fits for this shape (0 if none); memory is monotone in the micro-batch."""
    if sh.fit_mb is not None:
        return sh.fit_mb
    if ctx.surely_too_big(sh) or ctx.surely_no_host_ram(sh, n) or not _frugal_sibling_fits(ctx, sh, n):
        sh.fit_mb = 0
        return 0
    node = ctx.node(n)
    best = 0
    for mb in _mb_options(ctx):
        if ctx.fits(sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, sh.gc, mb, node):
            best = mb
        else:
            break
    sh.fit_mb = best
    return best


def _best_at(ctx: _Context, n: int, seqs: int, tok_s: float, deadline_s: float | None = None
             ) -> tuple[float, _Shape, int] | None:
    """Fastest memory-feasible (shape, micro-batch) on ``n`` GPUs: exact best-first search.

    Keys are lower bounds (the best time over every micro-batch option); a shape's key becomes its
    exact time once its memory is known, and the first exact key popped is the minimum. The search may
    stop within ``planner_search_tolerance`` of the minimum, but never where that could change the answer
    to "does some layout on ``n`` GPUs meet ``deadline_s``?" (so the smallest count is exact).
    """
    shapes = ctx.shapes(n)
    if not shapes or not _frugal_fits(ctx, n):
        return None
    opts = _mb_options(ctx)
    heap = [(_shape_lower_bound_s(ctx, sh, opts[-1], n, seqs, tok_s), 0, i, 0)
            for i, sh in enumerate(shapes) if sh.fit_mb != 0]
    heapq.heapify(heap)
    tol = ctx.k["planner_search_tolerance"]
    found: tuple[float, _Shape, int] | None = None

    def exact_entry(i: int, fit: int) -> tuple[float, int, int, int]:
        ts = [(_shape_time_s(ctx, shapes[i], m, n, seqs, tok_s), m) for m in opts if m <= fit]
        t_best, m_best = min(ts)
        return t_best, 2, i, m_best

    while heap:
        t, state, i, mb = heapq.heappop(heap)
        if found is not None and t >= found[0] * (1.0 - tol) and (
                deadline_s is None or found[0] <= deadline_s or t > deadline_s):
            return found     # nothing left is faster by more than the tolerance, nor changes the deadline test
        sh = shapes[i]
        if state == 2:
            if sh.pp > 1 and not _confirm(ctx, sh, n, mb):
                fit = _fit_mb_exact(ctx, sh, n)
                if fit:
                    heapq.heappush(heap, exact_entry(i, fit))
                continue
            if found is None or t < found[0]:
                found = (t, sh, mb)
            if not heap or heap[0][0] >= t:
                return found
            continue
        fit = _fit_mb(ctx, sh, n)
        if fit:
            heapq.heappush(heap, exact_entry(i, fit))
    return found


def _confirm(ctx: _Context, sh: _Shape, n: int, mb: int) -> bool:
    """Confirm a predicted fit with a direct call of the memory model (pp > 1)."""
    key = (sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, sh.gc, mb, ctx.grad_accum_for_memory(sh.dp, mb, sh.zero, sh.offload))
    return ctx.oracle.fits_exact(key, ctx.gpu.memory_bytes)


def _fit_mb_exact(ctx: _Context, sh: _Shape, n: int) -> int:
    """Largest micro-batch that fits by direct calls (after a pp > 1 prediction failed)."""
    best = 0
    for mb in _mb_options(ctx):
        if mb > (sh.fit_mb or 0):
            break
        key = (sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, sh.gc, mb, ctx.grad_accum_for_memory(sh.dp, mb, sh.zero, sh.offload))
        if ctx.oracle.fits_exact(key, ctx.gpu.memory_bytes):
            best = mb
        else:
            break
    sh.fit_mb = best
    return best


def _frugal_sibling_fits(ctx: _Context, sh: _Shape, n: int) -> bool:
    """Dominance: ZeRO-3 with optimizer and parameters offloaded and checkpointing needs the least memory
    of the shapes with the same tp, pp = 1, dp and ep; if it does not fit at micro-batch 1, none does.
    Likewise a shape without checkpointing needs more than its twin with checkpointing."""
    if not sh.gc:
        key = (sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, True, 1, ctx.grad_accum_for_memory(sh.dp, 1, sh.zero, sh.offload))
        if any(f.gc and (f.tp, f.pp, f.dp, f.ep, f.zero, f.offload) == (sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload)
               for f in ctx.shapes(n)) and not ctx.oracle.fits_gpu(key, ctx.gpu.memory_bytes):
            return False
    if sh.pp != 1 or (sh.zero, sh.offload, sh.gc) == (3, "optimizer+params", True):
        return True
    skey = (n, sh.tp, sh.dp, sh.ep)
    if skey not in ctx.sibling:
        ok = True
        for f in ctx.shapes(n):
            if (f.tp, f.pp, f.dp, f.ep, f.zero, f.offload, f.gc) == (sh.tp, 1, sh.dp, sh.ep, 3, "optimizer+params", True):
                key = (f.tp, 1, f.dp, f.ep, 3, "optimizer+params", True, 1, 1)
                ok = ctx.oracle.fits_gpu(key, ctx.gpu.memory_bytes)
                break
        ctx.sibling[skey] = ok
    return ctx.sibling[skey]


def _frugal_fits(ctx: _Context, n: int) -> bool:
    """Gate: if the most memory-frugal shape on ``n`` GPUs (ZeRO-3 with optimizer and parameters offloaded,
    checkpointing, the widest tp · ep · pp, micro-batch 1) does not fit the GPU, nothing on ``n`` does."""
    rank = {o: i for i, o in enumerate(OFFLOADS)}
    shapes = ctx.shapes(n)
    sh = max(shapes, key=lambda x: (rank[x.offload], x.zero, x.gc, x.tp * x.ep * x.pp, -x.pp))
    if sh.offload != "optimizer+params":
        return True
    key = (sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, sh.gc, 1, ctx.grad_accum_for_memory(sh.dp, 1, sh.zero, sh.offload))
    return ctx.oracle.fits_gpu(key, ctx.gpu.memory_bytes)


def _lower_bound_s(ctx: _Context, n: int, train_tokens: float, tok_s: float) -> float:
    """No layout on ``n`` GPUs can beat this: tokenization + tokens at the best per-GPU throughput."""
    return tok_s + train_tokens / (n * ctx.tps_max)


def _least_memory_shape(ctx: _Context, n: int) -> tuple[_Shape, Any] | None:
    """For a report on a count where nothing fits: the most sharded shape with the least memory at mb=1.

    Candidates are the shapes with the deepest offload, checkpointing on, and the largest tp · pp · ep.
    """
    shapes = [sh for sh in ctx.shapes(n) if sh.gc or ctx.req.gradient_checkpointing is False]
    if not shapes:
        return None
    rank = {o: i for i, o in enumerate(OFFLOADS)}
    top = max((rank[sh.offload], sh.zero, sh.tp * sh.pp * sh.ep) for sh in shapes)
    best = None
    for sh in shapes:
        if (rank[sh.offload], sh.zero) != top[:2] or sh.tp * sh.pp * sh.ep < top[2] // 4:
            continue
        m = ctx.memory(sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, sh.gc, 1)
        if m is not None and (best is None or m.total < best[1].total):
            best = (sh, m)
    return best


# ============================================================================ public API


def _resolve(model, gpu, gpu_memory=None) -> tuple[ModelSpec, GpuSpec]:
    spec = model if isinstance(model, ModelSpec) else catalog.load_model(model)
    g = gpu if isinstance(gpu, GpuSpec) else catalog.load_gpu(gpu, gpu_memory)
    return spec, g


def _deadline_s(deadline) -> float:
    return parse_duration_s(deadline)


def plan_finetune(
    model: str | ModelSpec,
    method: str = "lora",
    gpu: str | GpuSpec = "h100-80gb",
    data: str | int | float = "1GB",
    *,
    deadline: str | float = "24h",
    epochs: float | str = 1.0,
    language: str = "en",
    tokenizer: str | None = None,
    packing: bool = True,
    gpus: int | None = None,
    seq_len: int = 4096,
    micro_batch: int | None = None,
    gradient_checkpointing: bool | None = None,
    precision: str = "mixed-bf16",
    optimizer: str = "adamw",
    zero: int | None = None,
    offload: str | None = None,
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    lora_rank: int = 16,
    lora_targets: str = "all-linear",
    gpu_memory: str | None = None,
    assumptions: Assumptions | Mapping | None = None,
) -> FinetunePlan:
    """Plan a fine-tuning run: smallest GPU count and layout that fit and meet the deadline.

    ``gpus`` fixes the count (the best layout on exactly that many GPUs is evaluated); other
    ``None`` arguments are searched. Raises ``ScenarioError`` on bad input (one line naming the
    accepted forms); "does not fit" and "misses the deadline" are results, not errors.
    """
    a = _assumptions(assumptions)
    spec, g = _resolve(model, gpu, gpu_memory)
    req = Request(method=method, precision=precision, optimizer=optimizer, seq_len=seq_len, lora_rank=lora_rank,
                  lora_targets=lora_targets, micro_batch=micro_batch, gradient_checkpointing=gradient_checkpointing,
                  zero=zero, offload=offload, tp=tp, pp=pp, ep=ep)
    dl = _deadline_s(deadline)
    ds = dataset_size(data, spec, language=language, tokenizer=tokenizer, epochs=epochs, packing=packing,
                      assumptions=a)
    if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1):
        raise ScenarioError(f"gpus must be a positive integer, got {gpus!r}")
    ctx = _context(spec, g, req, a)
    return _plan(ctx, ds, dl, gpus)


def _plan(ctx: _Context, ds: DatasetSize, deadline_s: float, fixed_gpus: int | None) -> FinetunePlan:
    seqs = max(1, math.ceil(ds.train_tokens / ctx.S))
    raw = ds.raw_bytes if ds.unit == "bytes" else 0.0
    if fixed_gpus is not None:
        tok_s = ctx.tokenize_s(raw, fixed_gpus)
        found = _best_at(ctx, fixed_gpus, seqs, tok_s)
        if found is None:
            return _no_fit_plan(ctx, ds, deadline_s, fixed_gpus, searched=False)
        t, sh, mb = found
        return _make_plan(ctx, ds, deadline_s, fixed_gpus, sh, mb, searched=False)
    evaluated: dict[int, tuple[float, _Shape, int] | None] = {}

    def best_at(n: int, tok_s: float):
        if n not in evaluated:
            evaluated[n] = _best_at(ctx, n, seqs, tok_s, deadline_s)
        return evaluated[n]

    # 1. the smallest count that meets the deadline: exact ascending scan; counts whose lower bound
    #    already misses the deadline cannot meet it and are skipped without a search
    for n in ctx.ladder:
        tok_s = ctx.tokenize_s(raw, n)
        if _lower_bound_s(ctx, n, ds.train_tokens, tok_s) > deadline_s:
            continue
        found = best_at(n, tok_s)
        if found is not None and found[0] <= deadline_s:
            t, sh, mb = found
            return _make_plan(ctx, ds, deadline_s, n, sh, mb, searched=True)
    # 2. none does: the fastest plan. Scan down from the largest count; stop when two evaluated counts
    #    in a row are no faster, or when nothing fits (fewer GPUs cannot fit either).
    best: tuple[float, int, _Shape, int] | None = None
    for n, f in evaluated.items():
        if f is not None and (best is None or f[0] < best[0]):
            best = (f[0], n, f[1], f[2])
    stale = 0
    for n in reversed(ctx.ladder):
        tok_s = ctx.tokenize_s(raw, n)
        if best is not None and _lower_bound_s(ctx, n, ds.train_tokens, tok_s) >= best[0]:
            continue
        found = best_at(n, tok_s)
        if found is None:
            if best is not None:
                break
            continue
        if best is None or found[0] < best[0]:
            best = (found[0], n, found[1], found[2])
            stale = 0
        else:
            stale += 1
            if stale >= 2:
                break
    if best is None:
        largest = max((n for n in ctx.ladder if ctx.shapes(n)), default=ctx.ladder[0])
        return _no_fit_plan(ctx, ds, deadline_s, largest, searched=True)
    t, n, sh, mb = best
    return _make_plan(ctx, ds, deadline_s, n, sh, mb, searched=True)


def _make_plan(ctx: _Context, ds: DatasetSize, deadline_s: float, n: int, sh: _Shape, mb: int, *,
               searched: bool) -> FinetunePlan:
    a = ctx.a
    zero = sh.zero
    mem = ctx.memory(sh.tp, sh.pp, sh.dp, sh.ep, zero, sh.offload, sh.gc, mb)
    shape = replace(sh, zero=zero, coef=None, io=None, fit_mb=None)
    tb = _breakdown(ctx, sh, mb, n, ds)
    seqs = max(1, math.ceil(ds.train_tokens / ctx.S))
    _, ga, mb_eff = _data_terms(ctx, seqs, sh.dp, mb)
    layout = Layout(sh.tp, sh.pp, sh.dp, sh.ep, zero, sh.offload, mb, ga, sh.gc)
    fpt = ctx.fb[sh.gc].train
    train_flop = ds.train_tokens * fpt
    hw = ctx.tokens_per_s_per_gpu(sh.tp, sh.pp, sh.gc, mb_eff) * fpt
    meets = tb.total_s <= deadline_s
    cl = _cluster_plan(ctx, ds, deadline_s, n, shape, mb, mem, tb)
    node = ctx.node(n)
    cost = cluster.cost_usd(cl.nodes, tb.total_s / SECONDS_PER_HOUR, node)
    limit = "" if meets else _limit_text(ctx, n, layout, tb, deadline_s, searched)
    notes = []
    if ds.unit == "bytes" and ds.train_tokens < ctx.S:
        notes.append(f"the dataset ({ds.text_tokens:,.0f} tokens) is shorter than one {ctx.S}-token sequence")
    if sh.offload == "optimizer+params":
        notes.append(f"parameters live in host RAM (ZeRO-3 parameter offload, ZeRO-Infinity style) and are "
                     f"streamed to the GPUs over PCIe for every pass: {cl.ram_bytes / 2**30:,.0f} GiB of host RAM "
                     f"in all; slow per token, chosen because it needs the fewest GPUs")
    return FinetunePlan(
        model=ctx.spec.slug, method=ctx.req.method, gpu=ctx.gpu.slug, precision=ctx.req.precision,
        optimizer=ctx.req.optimizer, seq_len=ctx.S,
        lora_rank=ctx.req.lora_rank if ctx.req.method != "full" else None,
        lora_targets=ctx.req.lora_targets if ctx.req.method != "full" else None,
        params_total=ctx.params_total, trainable_params=ctx.trainable, gpus=n, layout=layout, memory=mem,
        fits=True, fit_reason="", dataset=ds, train_flop=train_flop, train_flop_per_token=fpt,
        hardware_flop_per_s_per_gpu=hw, time=tb, deadline_s=deadline_s, meets_deadline=meets, cluster=cl,
        cost_usd=cost, searched=searched, limit=limit, notes=tuple(notes))


def _no_fit_plan(ctx: _Context, ds: DatasetSize, deadline_s: float, n: int, *, searched: bool) -> FinetunePlan:
    """Nothing fits: report the least-memory layout on ``n`` GPUs with its memory and the reason."""
    least = _least_memory_shape(ctx, n)
    if least is None:
        sh = _Shape(1, 1, n, 1, 3 if n > 1 else 0, "none", True)
        mem = None
        reason = f"no valid layout of {ctx.spec.slug} on {n} × {ctx.gpu.slug}"
    else:
        sh, mem = least
        reason = mem.reason or "does not fit"
        if mem.fits:  # fits the GPU but not the node's host RAM (offloaded states)
            reason = "offloaded states exceed the node's host RAM"
    where = f"up to {n} × {ctx.gpu.slug}" if searched else f"on {n} × {ctx.gpu.slug}"
    layout = Layout(sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, 1, 1, sh.gc)
    fpt = ctx.fb[sh.gc].train
    return FinetunePlan(
        model=ctx.spec.slug, method=ctx.req.method, gpu=ctx.gpu.slug, precision=ctx.req.precision,
        optimizer=ctx.req.optimizer, seq_len=ctx.S,
        lora_rank=ctx.req.lora_rank if ctx.req.method != "full" else None,
        lora_targets=ctx.req.lora_targets if ctx.req.method != "full" else None,
        params_total=ctx.params_total, trainable_params=ctx.trainable, gpus=n, layout=layout, memory=mem,
        fits=False, fit_reason=f"no layout fits {where}: {reason}", dataset=ds,
        train_flop=ds.train_tokens * fpt, train_flop_per_token=fpt, hardware_flop_per_s_per_gpu=0.0, time=None,
        deadline_s=deadline_s, meets_deadline=False,
        cluster=_cluster_plan(ctx, ds, deadline_s, n, sh, 1, mem, None), cost_usd=None, searched=searched,
        limit=f"memory: no layout fits {where}", notes=())


def _limit_text(ctx: _Context, n: int, layout: Layout, tb: TimeBreakdown, deadline_s: float,
                searched: bool) -> str:
    """One sentence on what keeps a plan from the deadline."""
    h = tb.total_s / SECONDS_PER_HOUR
    dl = deadline_s / SECONDS_PER_HOUR
    if tb.io_s >= deadline_s:
        return (f"I/O: loading the model, tokenizing and saving checkpoints alone take "
                f"{tb.io_s / SECONDS_PER_HOUR:,.1f} h of the {dl:g} h deadline")
    parts = {"communication": tb.comm_s, "pipeline bubble": tb.bubble_s, "offloaded optimizer step": tb.offload_s,
             "batch granularity": tb.quantization_s, "I/O": tb.io_s, "compute": tb.compute_s}
    if not searched:
        if tb.compute_s > deadline_s:
            return (f"{n} GPUs take {h:,.1f} h (deadline {dl:g} h); compute alone is "
                    f"{tb.compute_s / SECONDS_PER_HOUR:,.1f} h, so more GPUs are needed")
        over = max((k for k in parts if k != "compute"), key=parts.get)
        return (f"{n} GPUs take {h:,.1f} h (deadline {dl:g} h); compute is "
                f"{tb.compute_s / SECONDS_PER_HOUR:,.1f} h and {over} adds {parts[over] / SECONDS_PER_HOUR:,.1f} h")
    worst = max(parts, key=parts.get)
    share = parts[worst] / tb.total_s if tb.total_s else 0.0
    why = []
    if n >= ctx.ladder[-1]:
        why.append(f"the planner stops at max_gpus = {ctx.ladder[-1]}")
    if layout.dp * layout.micro_batch >= ctx.gb_seqs:
        why.append(f"data parallelism is capped by the global batch ({ctx.gb_seqs} sequences of {ctx.S} tokens)")
    if not why:
        why.append("more GPUs make it slower: per-step communication and pipeline overheads outgrow the "
                   "shrinking compute")
    return (f"best achievable {h:,.1f} h on {n} GPUs (deadline {dl:g} h); {worst} is {share:.0%} of the run, "
            f"scaling efficiency {tb.scaling_efficiency:.0%}; " + "; ".join(why))


def _cluster_plan(ctx: _Context, ds: DatasetSize, deadline_s: float, n: int, sh: _Shape, mb: int, mem: Any,
                  tb: TimeBreakdown | None) -> ClusterPlan:
    a = ctx.a
    node = ctx.node(n)
    nodes = cluster.nodes_for(n, node)
    gpn_used = min(n, node.gpus_per_node)
    notes: list[str] = []
    # CPU
    adam = ctx.adam_cores_per_gpu(node) * n if sh.offload != "none" else 0.0
    cpu = cluster.cpu_cores_required(n, nodes, ds.raw_bytes if ds.unit == "bytes" else 0.0, deadline_s, a, adam)
    # RAM
    if mem is not None:
        ram = ctx.host_ram_per_node(mem, gpn_used, sh.tp, sh.pp, sh.dp, sh.zero)
    else:
        ram = cluster.host_ram_required_per_node_bytes(gpn_used, ctx.gpu.memory_bytes, 0.0,
                                                       ctx.checkpoint_native_bytes, a)
    # storage
    tokenized = ds.text_tokens * float(a["tokenized_bytes_per_token"])
    storage = cluster.storage_required_bytes(ds.raw_bytes, tokenized, ctx.checkpoint_native_bytes,
                                             ctx.checkpoint_bytes(), ctx.final_model_bytes(), a)
    # network: inter-node bytes per node per step, against the step's compute
    net_parts = {"inter_node_bytes_per_step_per_gpu": 0.0, "step_compute_s": 0.0, "comm_gbps": 0.0,
                 "ingest_gbps": 0.0}
    if tb is not None:
        steps = max(1, tb.steps)
        per_gpu = _inter_node_bytes_per_step(ctx, sh, mb, n, tb.micro_steps_per_step)
        step_compute = tb.compute_s / steps
        net_parts["inter_node_bytes_per_step_per_gpu"] = per_gpu
        net_parts["step_compute_s"] = step_compute
        if step_compute > 0 and nodes > 1:
            net_parts["comm_gbps"] = cluster.gbps(per_gpu * gpn_used / step_compute)
    ingest_window = float(a["tokenization_time_fraction"]) * deadline_s
    net_parts["ingest_gbps"] = cluster.gbps((ds.raw_bytes + ctx.checkpoint_native_bytes) / nodes / ingest_window)
    # The link to provision: what hides communication behind compute, but never more than the node's
    # network (beyond it the communication is exposed in the time, and a note says so). Tiny runs with
    # one short step would otherwise "need" far more than any network offers.
    link_gbps = net_parts["comm_gbps"]
    if node.network_gbps and link_gbps > node.network_gbps:
        link_gbps = node.network_gbps
    network = max(link_gbps, net_parts["ingest_gbps"])
    rdma = cluster.rdma_needed(net_parts["comm_gbps"], nodes, a)
    if node.instance is None:
        notes.append(f"no cloud instance with {ctx.gpu.slug} in the catalog: generic {node.gpus_per_node}-GPU "
                     f"nodes with {node.network_gbps:g} Gbps assumed, no price")
    else:
        if node.vcpus is not None and cpu["total"] > node.vcpus * nodes:
            notes.append(f"needs {cpu['total']:.0f} vCPUs, the {nodes} × {node.instance.name} have "
                         f"{node.vcpus * nodes}")
        if node.ram_bytes is not None and ram["total"] > node.ram_bytes:
            notes.append(f"needs {ram['total'] / 2**30:,.0f} GiB host RAM per node, {node.instance.name} has "
                         f"{node.ram_bytes / 2**30:,.0f} GiB")
        if rdma and not node.instance.has_rdma:
            notes.append(f"{net_parts['comm_gbps']:,.0f} Gbps per node calls for RDMA; {node.instance.name} "
                         f"has none, so communication runs at {node.network_gbps:g} Gbps")
        if net_parts["comm_gbps"] > node.network_gbps:
            notes.append(f"communication needs {net_parts['comm_gbps']:,.0f} Gbps per node to hide behind compute; "
                         f"{node.instance.name} has {node.network_gbps:g} Gbps, the rest is exposed in the time")
    return ClusterPlan(
        nodes=nodes, gpus_per_node=node.gpus_per_node, cpu_cores=int(cpu["total"]),
        ram_bytes=int(round(ram["total"] * nodes)), storage_bytes=int(round(storage["total"])),
        network_gbps=round(network, 3), rdma_needed=rdma, instance=node.slug, node=node.to_dict(),
        cpu_cores_parts=cpu, ram_per_node_parts=ram, storage_parts=storage, network_parts=net_parts,
        notes=tuple(notes))


def _inter_node_bytes_per_step(ctx: _Context, sh: _Shape, mb: int, n: int, ga: int) -> float:
    """Bytes one GPU sends across nodes per optimizer step (data-parallel, ZeRO-3, EP, PP traffic)."""
    node = ctx.node(n)
    if n <= node.gpus_per_node:
        return 0.0
    tp, pp, dp, ep = sh.tp, sh.pp, sh.dp, sh.ep
    dw, ew, dt, et = ctx.split_per_rank(tp, pp, ep)
    g = ctx.grad_bytes_per_elem
    edp = ctx.expert_dp(dp, ep)
    total = 0.0
    if tp * dp > node.gpus_per_node:
        fd = (dp - 1) / dp
        fe = (edp - 1) / edp if tp * ep * edp > node.gpus_per_node else 0.0
        if sh.zero == 3:
            total += ga * (ZERO3_GATHERS_PER_MICRO_STEP * (fd * dw + fe * ew) + fd * dt * g + fe * et * g)
        else:
            total += 2.0 * (fd * dt * g + fe * et * g)
    act = mb * ctx.S * ctx.spec.hidden_size * ctx.act_bytes
    if ep > node.gpus_per_node and ctx.moe_layers:
        n_a2a = EP_ALL_TO_ALLS_PER_LAYER + (EP_ALL_TO_ALLS_PER_LAYER_RECOMPUTE if sh.gc else 0)
        total += ga * n_a2a * (ctx.moe_layers / pp) * (ep - 1) / ep * act * ctx.spec.experts_per_token / tp
    if pp > 1 and tp * dp >= node.gpus_per_node:
        total += ga * PP_TRANSFERS_PER_MICRO_BATCH * act
    return total


# ============================================================================ evaluate a given layout


def evaluate_layout(
    model: str | ModelSpec,
    method: str,
    gpu: str | GpuSpec,
    data: str | int | float,
    *,
    gpus: int,
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    zero: int | None = None,
    offload: str | None = None,
    micro_batch: int | None = None,
    gradient_checkpointing: bool | None = None,
    deadline: str | float = "24h",
    **kwargs: Any,
) -> FinetunePlan:
    """A plan on exactly ``gpus`` GPUs with the given parts of the layout pinned (the rest searched).

    The audit of hand-made tables uses this: "16 × A100, TP=8 + ZeRO-3" becomes
    ``evaluate_layout(..., gpus=16, tp=8, zero=3)``.
    """
    return plan_finetune(model, method, gpu, data, deadline=deadline, gpus=gpus, tp=tp, pp=pp, ep=ep, zero=zero,
                         offload=offload, micro_batch=micro_batch, gradient_checkpointing=gradient_checkpointing,
                         **kwargs)


# ============================================================================ the report matrix

DEEPSEEK_R1_FAMILY = (
    "deepseek-r1", "deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-7b", "deepseek-r1-distill-qwen-14b",
    "deepseek-r1-distill-qwen-32b", "deepseek-r1-distill-llama-8b", "deepseek-r1-distill-llama-70b",
)
SEED_DATA_SIZES = ("1K", "1M", "1GB", "10GB", "100GB", "1TB")


def finetune_matrix(
    models: Iterable[str] = DEEPSEEK_R1_FAMILY,
    methods: Iterable[str] = METHODS,
    gpus: Iterable[str] | None = None,
    data_sizes: Iterable[str] = SEED_DATA_SIZES,
    *,
    deadline: str | float = "24h",
    assumptions: Assumptions | Mapping | None = None,
    workers: int = 1,
    **kwargs: Any,
) -> list[dict]:
    """Plan every model × method × GPU × data size; one flat dict per plan (``FinetunePlan.row()``).

    ``gpus`` defaults to every GPU type in the catalog. Catalogs load once; no I/O in the loop.
    ``workers`` > 1 spreads the (model, method) pairs over that many processes (each keeps its own
    memory results, which are per model and method anyway); rows come back in the same order.
    """
    a = _assumptions(assumptions)
    gpu_slugs = [catalog.load_gpu(g).slug for g in gpus] if gpus is not None else [g.slug for g in catalog.list_gpus()]
    model_slugs = [catalog.load_model(m).slug for m in models]
    tasks = [(m, method) for m in model_slugs for method in methods]
    args = (tuple(gpu_slugs), tuple(data_sizes), deadline, a.overrides, tuple(sorted(kwargs.items())))
    if workers <= 1 or len(tasks) <= 1:
        out = [_matrix_task(t, *args) for t in tasks]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # the largest models first, so that the pool finishes together
        order = sorted(range(len(tasks)), key=lambda i: -A.params_total(catalog.load_model(tasks[i][0])))
        ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
            futures = {i: pool.submit(_matrix_task, tasks[i], *args) for i in order}
            out = [futures[i].result() for i in range(len(tasks))]
    return [row for rows in out for row in rows]


def _matrix_task(task: tuple[str, str], gpu_slugs: tuple, data_sizes: tuple, deadline: Any, overrides: dict,
                 kwargs: tuple) -> list[dict]:
    """Rows of one (model, method) for every GPU and data size (run in-process or in a worker)."""
    model, method = task
    a = Assumptions(overrides)
    spec = catalog.load_model(model)
    rows = []
    for g in (catalog.load_gpu(s) for s in gpu_slugs):
        for d in data_sizes:
            try:
                p = plan_finetune(spec, method, g, d, deadline=deadline, assumptions=a, **dict(kwargs))
            except ScenarioError as exc:
                rows.append({"model": spec.slug, "method": method, "gpu": g.slug, "data": str(d), "fits": False,
                             "meets_deadline": False, "limit": str(exc)})
                continue
            rows.append(p.row())
    return rows

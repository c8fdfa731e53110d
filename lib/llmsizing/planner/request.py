"""What the planner is asked and what it answers: the request, the chosen layout, the time breakdown,
the cluster bill of materials and the whole plan (the JSON of ``llmsizing finetune --json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from llmsizing.choices import DEFAULT_FRAMEWORK, FRAMEWORKS, METHODS, OFFLOADS, ZERO_STAGES, one_of
from llmsizing.dataset import DatasetSize
from llmsizing.errors import ScenarioError
from llmsizing.training.memory import MEMORY_KINDS
from llmsizing.units import SECONDS_PER_HOUR


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
    framework: str = DEFAULT_FRAMEWORK
    micro_batch: int | None = None
    gradient_checkpointing: bool | None = None
    zero: int | None = None
    offload: str | None = None
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None
    global_batch: int | None = None     # sequences per optimizer step (None: global_batch_tokens / seq_len)

    def __post_init__(self) -> None:
        one_of(self.method, METHODS, "method")
        one_of(self.framework, FRAMEWORKS, "framework")
        if self.offload is not None:
            one_of(self.offload, OFFLOADS, "offload")
        if self.zero is not None:
            one_of(self.zero, ZERO_STAGES, "ZeRO stage")
        for name in ("seq_len", "lora_rank", "micro_batch", "tp", "pp", "ep", "global_batch"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ScenarioError(f"{name.replace('_', '-')} must be a positive integer, got {v!r}")


@dataclass(frozen=True)
class TrainingLayout:
    """A training run's parallel layout (tp, pp, dp, ep), ZeRO stage, offload, checkpointing and batch
    (not the serving estimator's ``serving.estimate.Layout``)."""

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
    network_gbps: float         # per node: the communication/ingest need rounded up to a NIC speed, at least the node's NICs
    rdma_needed: bool
    instance: str | None
    node: dict                  # what one instance provides (vCPUs, RAM, NVMe, network, price)
    cpu_cores_parts: dict
    ram_per_node_parts: dict
    storage_parts: dict
    network_parts: dict
    notes: tuple[str, ...]
    cpu_cores_per_node: int = 0       # vCPUs required on each node
    ram_bytes_per_node: int = 0       # host RAM required on each node
    storage_bytes_per_node: int = 0   # the shared storage's share per node (striped over local NVMe)

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
    layout: TrainingLayout
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
    framework: str = DEFAULT_FRAMEWORK
    memory_range: Any = None    # training.ranges.MemoryRange of the device-level total per GPU
    optimize: str = "cost"      # what the search minimised (choices.OPTIMIZE)
    would_fit: str = ""         # when nothing fits: the nearest thing that does

    @property
    def hours(self) -> float | None:
        return self.time.total_s / SECONDS_PER_HOUR if self.time else None

    @property
    def gpu_hours(self) -> float | None:
        h = self.hours
        return None if h is None else h * self.gpus

    def instance(self) -> dict | None:
        """What is rented: provider, instance name, GPUs per instance, count, hours, price per instance-hour
        (USD), price kind, price date, region and the run's cost (None: no catalog instance, or no fit)."""
        cl = self.cluster
        if cl is None or not cl.node.get("instance"):
            return None
        node = cl.node
        return {"provider": node["provider"], "name": node["instance_name"], "slug": node["instance"],
                "gpus": node["gpus_per_node"], "count": cl.nodes, "hours": self.hours,
                "price_usd_per_hour": node["price_usd_per_hour"], "price_kind": node["price_kind"],
                "currency": node["currency"], "price": node["price"], "price_date": node["price_date"],
                "region": node["price_region"], "confidence": node["confidence"], "cost_usd": self.cost_usd}

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
            "memory_kinds": dict(MEMORY_KINDS),
            "framework": self.framework,
            "memory_per_gpu_range": self.memory_range.to_dict() if self.memory_range is not None else None,
            "tight": bool(self.memory_range.tight) if self.memory_range is not None else False,
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
                         "cpu_cores_per_node": cl.cpu_cores_per_node, "ram_bytes_per_node": cl.ram_bytes_per_node,
                         "storage_bytes_per_node": cl.storage_bytes_per_node,
                         "network_gbps": cl.network_gbps, "rdma_needed": cl.rdma_needed, "instance": cl.instance,
                         "node": cl.node, "cpu_cores_parts": cl.cpu_cores_parts,
                         "ram_per_node_parts": cl.ram_per_node_parts, "storage_parts": cl.storage_parts,
                         "network_parts": cl.network_parts, "notes": list(cl.notes)} if cl else None),
            "cost_usd": self.cost_usd, "optimize": self.optimize, "instance": self.instance(),
            "would_fit": self.would_fit,
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

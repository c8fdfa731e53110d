"""Everything the planner knows about one (model, GPU type, request, assumptions) before it sees the
data size, the deadline or a GPU count: FLOP per token, the step-time terms, trainable parameters,
weight bytes, the network, the node type per GPU count, and the memory oracle. Built once, cached.

``plan_context`` returns a ``PlanContext``; the search, the step-time model and the plan assembly read
it. Its caches (node types, candidate shapes, dominance tests) fill as the search goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import lru_cache

from llmsizing import architecture as A
from llmsizing.assumptions import Assumptions
from llmsizing.lora import lora_params_in_group
from llmsizing.planner import cluster, memory_oracle
from llmsizing.planner.layouts import Shape, candidate_shapes, gpu_count_ladder, int_list, powers_of_two
from llmsizing.planner.memory_oracle import MemoryOracle, memory_on_gpu, oracle_for
from llmsizing.planner.request import Request
from llmsizing.specs import GpuSpec, ModelSpec
from llmsizing.training import compute as tc
from llmsizing.training import memory as training
from llmsizing.training.compute import FlopBreakdown, StepParts
from llmsizing.training.ranges import high_ratio
from llmsizing.units import SECONDS_PER_HOUR
from llmsizing.weights import weight_bytes, weight_bytes_by_group

FP32_BYTES = 4.0
BF16_BYTES = 2.0


@dataclass(frozen=True)
class PlannerConstants:
    """Assumption values the search reads millions of times, read once (names as in the registry)."""

    tp_comm_overlap: float
    ep_comm_overlap: float
    pcie_host_device_bytes_per_s: float
    zero3_comm_overlap: float
    dp_comm_overlap: float
    cpu_adam_params_per_s_per_core: float
    cpu_cores_per_gpu: float
    cpu_cores_base_per_node: float
    storage_read_bytes_per_s_per_node: float
    storage_write_bytes_per_s_per_node: float
    checkpoint_interval_hours: float
    tokenization_bytes_per_s_per_core: float
    cuda_context_bytes: float
    host_ram_base_per_node_bytes: float
    host_ram_per_gpu_bytes: float
    instance_ram_usable_fraction: float
    planner_search_tolerance: float

    @classmethod
    def read(cls, a: Assumptions) -> "PlannerConstants":
        return cls(**{f.name: float(a[f.name]) for f in fields(cls)})


@dataclass(frozen=True, eq=False)
class PlanContext:
    """One (model, GPU type, request, assumptions): what does not depend on data, deadline or GPU count.

    Dictionaries keyed by ``True``/``False`` are per gradient-checkpointing setting.
    """

    spec: ModelSpec
    gpu: GpuSpec
    request: Request
    assumptions: Assumptions            # the caller's (records which assumptions a plan used)
    oracle: MemoryOracle                # memory of layouts, shared by every GPU type
    oracle_sp: MemoryOracle             # the same with Megatron sequence parallelism (pipeline-parallel layouts)
    seq_len: int
    base_setups: dict                   # FinetuneSetup at tp = pp = dp = micro-batch = 1
    flop: dict                          # FlopBreakdown per token
    step_parts: dict                    # StepParts of one sequence at tp = pp = 1
    forward_share: dict                 # share of the train FLOP in the forward pass (what DP sync cannot hide behind)
    trainable_params: int
    trainable_params_experts: float     # inside routed experts (sharded by ep, not tp)
    params_total: int
    weight_bytes: float                 # base weights in their training format (bf16/fp32, 4-bit for QLoRA)
    weight_bytes_experts: float
    grad_bytes_per_param: float
    activation_bytes_per_elem: float
    checkpoint_native_bytes: float      # the model's published checkpoint (what is loaded)
    checkpoint_bytes: float             # one training checkpoint (``training_checkpoint_bytes``)
    optimizer_bytes_per_param: float    # optimizer states + master weight per trainable parameter
    global_batch_seqs: int
    max_micro_batch: int
    moe_layers: int
    expert_parallel_degrees: tuple[int, ...]
    checkpoint_interval_s: float
    constants: PlannerConstants
    intra_node_bytes_per_s: float       # the GPU's intra-node link × NCCL efficiency
    inter_node_efficiency: float
    gpus_per_node: int                  # of the multi-node training instance
    gpu_counts: list[int]               # the ladder of GPU counts the search tries
    max_tokens_per_s_per_gpu: float     # best any layout reaches (lower bounds on time)
    nodes_cache: dict = field(default_factory=dict)
    shapes_cache: dict = field(default_factory=dict)
    frugal_sibling_cache: dict = field(default_factory=dict)

    # ---------------------------------------------------------------- step time
    def stage_s(self, tp: int, pp: int, gc: bool, mb: float) -> float:
        """One micro-batch through one pipeline stage, scaled from ``training.compute.step_time_parts`` at
        tp = pp = mb = 1 in its documented form: max(T·c/(tp·pp), L/pp·host) + dequant/(tp·pp), T = mb·seq_len."""
        st = self.step_parts[gc]
        return stage_seconds(st, tp, pp, mb)

    def tokens_per_s_per_gpu(self, tp: int, pp: int, gc: bool, mb: float) -> float:
        return mb * self.seq_len / self.stage_s(tp, pp, gc, mb) / (tp * pp)

    # ---------------------------------------------------------------- nodes and layouts
    def node(self, gpus: int) -> cluster.NodeType:
        if gpus not in self.nodes_cache:
            self.nodes_cache[gpus] = cluster.node_for_gpus(self.gpu, gpus, self.assumptions)
        return self.nodes_cache[gpus]

    def inter_node_bytes_per_s(self, node: cluster.NodeType) -> float:
        """Each GPU's share of the node's network, times the NCCL efficiency."""
        return node.network_bytes_per_s / node.gpus_per_node * self.inter_node_efficiency

    def shapes(self, n: int, large: bool = False) -> list[Shape]:
        """Every candidate layout shape for ``n`` GPUs (cached). ``large``: the pipeline-parallel shapes
        (2 ≤ pp ≤ ``max_pipeline_stages_large``) the search tries where nothing without them fits."""
        key = (n, large)
        if key not in self.shapes_cache:
            if large:
                found = candidate_shapes(
                    self.spec, self.request, n, gpus_per_node=self.gpus_per_node,
                    max_pipeline_stages=int(self.assumptions["max_pipeline_stages_large"]),
                    expert_parallel_degrees=self.expert_parallel_degrees, global_batch_seqs=self.global_batch_seqs)
                small = {(s.tp, s.pp, s.dp, s.ep, s.zero, s.offload, s.gc) for s in self.shapes(n)}
                found = [s for s in found if (s.tp, s.pp, s.dp, s.ep, s.zero, s.offload, s.gc) not in small]
                # large runs use tensor parallelism across the whole node (Llama 3 405B: TP 8) or none with
                # expert parallelism (DeepSeek-V3: TP 1, EP 64); intermediate degrees are not searched here
                # (each pipeline layout costs direct calls of the memory model)
                tp_top = max((s.tp for s in found), default=1)
                found = [s for s in found if s.tp in (1, tp_top)]
            else:
                found = candidate_shapes(
                    self.spec, self.request, n, gpus_per_node=self.gpus_per_node,
                    max_pipeline_stages=int(self.assumptions["max_pipeline_stages"]),
                    expert_parallel_degrees=self.expert_parallel_degrees, global_batch_seqs=self.global_batch_seqs)
            self.shapes_cache[key] = found
        return self.shapes_cache[key]

    def bubble_micro_batches(self, pp: int) -> float:
        """The pipeline bubble in micro-batch times: (pp − 1) / v with v virtual stages per GPU (interleaved
        1F1B, ``comm.pipeline_bubble_fraction``), v = min(pipeline_virtual_stages_max, layers / pp)."""
        if pp <= 1:
            return 0.0
        return (pp - 1) / self.virtual_stages(pp)

    def virtual_stages(self, pp: int) -> int:
        """Model chunks per GPU under the interleaved schedule (1 without pipeline parallelism)."""
        if pp <= 1:
            return 1
        return max(1, min(int(self.assumptions["pipeline_virtual_stages_max"]), self.spec.num_layers // pp))

    # ---------------------------------------------------------------- memory
    @property
    def fit_memory_bytes(self) -> float:
        """The memory a layout's estimate must fit: the planner decides on the high end of the estimate's
        range (``training.ranges``, method × framework) plus ``planner_memory_margin_fraction``, i.e.
        estimate · high_ratio · (1 + margin) ≤ GPU memory."""
        if not self.assumptions["planner_fit_on_range_high"]:
            return float(self.gpu.memory_bytes)
        margin = float(self.assumptions["planner_memory_margin_fraction"])
        return self.gpu.memory_bytes / (high_ratio(self.request.method, self.request.framework, self.assumptions)
                                        * (1 + margin))

    def memory_key(self, tp, pp, dp, ep, zero, offload, gc, mb) -> tuple:
        """The memory oracle's key: the layout and the gradient accumulation that changes its memory."""
        return (tp, pp, dp, ep, zero, offload, gc, mb, self.grad_accum_for_memory(dp, mb, zero, offload))

    def grad_accum_for_memory(self, dp: int, mb: int, zero: int = 0, offload: str = "none") -> int:
        """Gradient accumulation at the full global batch (2 stands for 'more than one').

        It changes memory only with ZeRO 0/1 and nothing offloaded (a persistent full-gradient buffer);
        elsewhere 1 is passed so that equal layouts share one memory result."""
        if zero >= 2 or offload != "none":
            return 1
        return 2 if dp * mb < self.global_batch_seqs else 1

    def oracle_for(self, tp: int, pp: int) -> MemoryOracle:
        """Pipeline-parallel layouts are Megatron-style (ZeRO-1 distributed optimizer, ``layouts.py``), and
        Megatron runs tensor parallelism with sequence parallelism (Korthikanti et al. 2022,
        arXiv:2205.05198 §4.2.2: activations outside attention/MLP split by tp too); other layouts do not."""
        return self.oracle_sp if (pp > 1 and tp > 1) else self.oracle

    def memory(self, tp, pp, dp, ep, zero, offload, gc, mb):
        """training.finetune_memory of a layout on this GPU (memoized, shared across GPUs); None if invalid."""
        ref = self.oracle_for(tp, pp).memory(self.memory_key(tp, pp, dp, ep, zero, offload, gc, mb))
        return None if ref is None else memory_on_gpu(ref, self.gpu, tp * pp * dp)

    def host_ram_per_node(self, mem, gpus_on_node, tp, pp, dp, zero) -> dict:
        """Host RAM one node needs: its processes' offloaded states plus checkpoint staging (cluster.py)."""
        shard = 1.0 / (tp * pp * (dp if zero == 3 else 1))
        staging = min(1.0, gpus_on_node * shard) * self.checkpoint_native_bytes
        # FinetuneMemory.host_ram_bytes covers min(gpus, node_gpus_max) processes
        procs = min(tp * pp * dp, self.gpu.node_gpus_max or tp * pp * dp)
        offloaded = float(getattr(mem, "host_ram_bytes", 0.0) or 0.0) / max(1, procs)
        return cluster.host_ram_required_per_node_bytes(gpus_on_node, self.gpu.memory_bytes, offloaded, staging,
                                                        self.assumptions)

    # ---------------------------------------------------------------- per-rank sizes
    def trainable_per_rank(self, tp, pp, ep) -> float:
        """Trainable parameters one GPU holds before ZeRO: dense part / (tp·pp), routed experts / (tp·ep·pp)
        (training.memory splits expert matrices by tp and the experts by ep)."""
        dense = self.trainable_params - self.trainable_params_experts
        return dense / (tp * pp) + self.trainable_params_experts / (tp * ep * pp)

    def weight_bytes_per_rank(self, tp, pp, ep) -> float:
        """Base-weight bytes one GPU holds before ZeRO-3 sharding (same split as ``trainable_per_rank``)."""
        dense = self.weight_bytes - self.weight_bytes_experts
        return dense / (tp * pp) + self.weight_bytes_experts / (tp * ep * pp)

    def split_per_rank(self, tp: int, pp: int, ep: int) -> tuple[float, float, float, float]:
        """(dense weight bytes, expert weight bytes, dense trainable params, expert trainable params) one GPU
        holds before ZeRO. ZeRO shards the dense part over dp and the experts over their own data-parallel
        group of dp / ep ranks (``expert_dp``)."""
        dw = (self.weight_bytes - self.weight_bytes_experts) / (tp * pp)
        ew = self.weight_bytes_experts / (tp * ep * pp)
        dt = (self.trainable_params - self.trainable_params_experts) / (tp * pp)
        et = self.trainable_params_experts / (tp * ep * pp)
        return dw, ew, dt, et

    @staticmethod
    def expert_dp(dp: int, ep: int) -> int:
        """Data-parallel group of an expert shard: dp / ep ranks (training.memory: no sharding if ep ∤ dp)."""
        return dp // ep if dp % ep == 0 else 1

    def final_model_bytes(self) -> float:
        """The exported result: full weights in bf16 (full fine-tuning) or the adapters in bf16."""
        if self.request.method == "full":
            return _weight_bytes(self.spec, "bf16")
        return self.trainable_params * BF16_BYTES


def stage_seconds(parts: StepParts, tp: int, pp: int, mb: float) -> float:
    """One micro-batch of ``mb`` sequences through one of ``pp`` stages on ``tp`` GPUs, from the
    tp = pp = mb = 1 terms: max(compute · mb / (tp · pp), host / pp) + dequant / (tp · pp)
    (``training.compute.step_time``'s form)."""
    return max(parts.compute_s * mb / (tp * pp), parts.host_s / pp) + parts.dequant_s / (tp * pp)


def training_checkpoint_bytes(trainable_params: float, req: Request, setup: training.FinetuneSetup,
                              a: Assumptions) -> float:
    """One training checkpoint: trainable weights + master copy + optimizer state.

    bytes/param = weight (2 bf16, 4 fp32) + ``optimizer_state_bytes_per_param`` (master weight and states,
    training.memory's formula: fp32 Adam moments under mixed-bf16/fp32, bf16 moments under pure bf16).
    """
    per = FP32_BYTES if req.precision == "fp32" else BF16_BYTES
    return trainable_params * (per + optimizer_state_bytes_per_param(setup, a))


def optimizer_state_bytes_per_param(setup, a: Assumptions) -> float:
    """Master weight + optimizer states per trainable parameter of a large tensor, from
    ``training.memory.optimizer_bytes_per_param`` (one formula; large tensors: 8-bit states apply, so this
    is the least a parameter costs — the pre-checks use it as a lower bound)."""
    return float(training.optimizer_bytes_per_param(setup, float("inf"), a))


# ============================================================================ building and caching


@lru_cache(maxsize=256)
def trainable_in_experts(spec: ModelSpec, method: str, rank: int, targets: str) -> float:
    """Trainable parameters inside the routed experts (all of them for full fine-tuning, else their adapters)."""
    if method == "full":
        return float(A.params_by_group(spec).get("experts", 0))
    return float(lora_params_in_group(spec, targets, rank, "experts"))


@lru_cache(maxsize=512)
def _weight_bytes_by_group(spec: ModelSpec, precision: str) -> dict[str, float]:
    return weight_bytes_by_group(spec, precision)


@lru_cache(maxsize=512)
def _weight_bytes(spec: ModelSpec, precision: str) -> float:
    return weight_bytes(spec, precision)


def _oracle(spec: ModelSpec, req: Request, a: Assumptions, gpu: GpuSpec,
            sequence_parallel: bool = False) -> MemoryOracle:
    kw = {"method": req.method, "precision": req.precision, "optimizer": req.optimizer, "seq_len": req.seq_len,
          "lora_rank": req.lora_rank, "lora_targets": req.lora_targets, "framework": req.framework}
    if sequence_parallel:
        kw["sequence_parallel"] = True
    if req.method == "qlora":
        kw["qlora_quant"] = req.qlora_quant
    return oracle_for(spec, kw, a, gpu)


@dataclass(frozen=True)
class _ModelSetup:
    """GPU-independent facts of one (model, request): shared by every GPU type."""

    base_setups: dict
    flop: dict
    trainable_params: int
    params_total: int
    quantized_params: float


def _model_setup(spec: ModelSpec, req: Request, a: Assumptions, oracle: MemoryOracle) -> _ModelSetup:
    key = (spec, req.method, req.precision, req.optimizer, req.seq_len, req.lora_rank, req.lora_targets,
           req.qlora_quant, req.framework, tuple(sorted(a.overrides.items())))
    ms = _MODEL_SETUPS.get(key)
    if ms is None:
        if len(_MODEL_SETUPS) >= _CACHE_MAX:
            _MODEL_SETUPS.clear()
        base = {gc: oracle.setup(1, 1, 1, 1, 0, "none", gc, 1) for gc in (False, True)}
        ms = _MODEL_SETUPS[key] = _ModelSetup(
            base_setups=base, flop={gc: tc.flop_breakdown_per_token(spec, base[gc]) for gc in (False, True)},
            trainable_params=int(training.trainable_params(spec, base[True])), params_total=A.params_total(spec),
            quantized_params=tc.quantized_weight_params(spec, base[True]))
    return ms


def _forward_share(fb: FlopBreakdown) -> float:
    return (fb.forward + fb.attention / 3.0) / fb.train


def _build(spec: ModelSpec, gpu: GpuSpec, req: Request, a: Assumptions) -> PlanContext:
    oracle = _oracle(spec, req, a, gpu)
    ms = _model_setup(spec, req, a, oracle)
    step_parts = {gc: tc.step_time_parts(spec, ms.base_setups[gc], gpu, a, ms.flop[gc], ms.quantized_params)
                  for gc in (False, True)}
    trainable_experts = (trainable_in_experts(spec, req.method, req.lora_rank, req.lora_targets)
                         if spec.is_moe else 0.0)
    wfmt = req.qlora_quant if req.method == "qlora" else ("fp32" if req.precision == "fp32" else "bf16")
    by_group = _weight_bytes_by_group(spec, wfmt)
    elem_bytes = FP32_BYTES if req.precision == "fp32" else BF16_BYTES
    checkpoint_native = _weight_bytes(spec, spec.checkpoint_format)
    gb_seqs = max(1, int(a["global_batch_tokens"]) // req.seq_len)
    if req.global_batch is not None:
        gb_seqs = req.global_batch
    constants = PlannerConstants.read(a)
    ep_wanted = int_list(a["planner_expert_parallel"], "planner_expert_parallel")
    ckpt = training_checkpoint_bytes(ms.trainable_params, req, ms.base_setups[True], a)
    max_mb = int(a["max_micro_batch"])
    intra = gpu.intra_node_bytes_per_s * float(a["nccl_intra_node_efficiency"])
    inter_eff = float(a["nccl_inter_node_efficiency"])
    gpn = cluster.node_for_gpus(gpu, 10**9, a).gpus_per_node
    ladder = cluster.billed_gpu_counts(gpu, gpu_count_ladder(gpn, int(a["max_gpus"])), a)
    tps_max = max(mb * req.seq_len / stage_seconds(step_parts[gc], 1, 1, mb)
                  for gc in (False, True) for mb in powers_of_two(max_mb))
    return PlanContext(
        spec=spec, gpu=gpu, request=req, assumptions=a, oracle=oracle,
        oracle_sp=_oracle(spec, req, a, gpu, sequence_parallel=True), seq_len=req.seq_len,
        base_setups=ms.base_setups, flop=ms.flop, step_parts=step_parts,
        forward_share={gc: _forward_share(ms.flop[gc]) for gc in (False, True)},
        trainable_params=ms.trainable_params, trainable_params_experts=trainable_experts,
        params_total=ms.params_total, weight_bytes=sum(by_group.values()),
        weight_bytes_experts=by_group.get("experts", 0.0), grad_bytes_per_param=elem_bytes,
        activation_bytes_per_elem=elem_bytes, checkpoint_native_bytes=checkpoint_native, checkpoint_bytes=ckpt,
        optimizer_bytes_per_param=optimizer_state_bytes_per_param(ms.base_setups[True], a),
        global_batch_seqs=gb_seqs, max_micro_batch=max_mb, moe_layers=len(spec.moe_layers),
        expert_parallel_degrees=ep_wanted, checkpoint_interval_s=constants.checkpoint_interval_hours * SECONDS_PER_HOUR,
        constants=constants, intra_node_bytes_per_s=intra, inter_node_efficiency=inter_eff, gpus_per_node=gpn,
        gpu_counts=ladder, max_tokens_per_s_per_gpu=tps_max)


_MODEL_SETUPS: dict[tuple, _ModelSetup] = {}
_CONTEXTS: dict[tuple, PlanContext] = {}
_CACHE_MAX = 4096


def plan_context(spec: ModelSpec, gpu: GpuSpec, req: Request, a: Assumptions) -> PlanContext:
    """The cached context of (model, GPU, request, assumption overrides), carrying the caller's ``a``."""
    key = (spec, gpu.slug, gpu.memory_bytes, req, tuple(sorted(a.overrides.items())))
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        if len(_CONTEXTS) >= _CACHE_MAX:
            _CONTEXTS.clear()
        ctx = _CONTEXTS[key] = _build(spec, gpu, req, a)
        return ctx
    # record assumption use on the caller's object; the caches stay shared
    return ctx if ctx.assumptions is a else replace(ctx, assumptions=a)


def clear_cache() -> None:
    """Forget cached contexts, model setups and memory results (after changing catalogs or modules at run time)."""
    _CONTEXTS.clear()
    _MODEL_SETUPS.clear()
    for fn in (trainable_in_experts, _weight_bytes_by_group, _weight_bytes):
        fn.cache_clear()
    memory_oracle.clear()

"""Fine-tuning memory per GPU: weights, gradients, optimizer states, activations, buffers, overheads.

Model states follow ZeRO (Rajbhandari et al. 2020, arXiv:1910.02054 §3, §5): with mixed
precision each trainable parameter costs 2 B (bf16 weight) + 2 B (bf16 gradient) + K B of
optimizer state, K = 4 (fp32 master) + 8 (Adam moments) = 12, so 16 B/param; pure bf16
(torchtune) keeps bf16 weights, gradients and AdamW moments, 8 B/param; fp32 16 B/param. ZeRO
stage 1 divides the optimizer states by dp, stage 2 also the gradients, stage 3 also the weights.
LoRA trains only adapters (``lora.py``); the frozen base stays in its storage dtype, 4-bit NF4 for
QLoRA (Dettmers et al. 2023, arXiv:2305.14314 §3) with embeddings, head and norms in bf16.

Activations come from ``activations.py`` (what autograd saves, layer by layer). The peak is the
largest of four moments of a training step (phases):

- ``loss``: every layer's saved tensors (or checkpointed inputs) + the head and cross-entropy;
- ``layer_backward``: checkpointed inputs + one layer recomputed + its gradient buffers + the
  output head's gradient (computed before any layer's);
- ``backward_end``: all gradients materialised, activations freed;
- ``optimizer_step``: gradients + optimizer states + step temporaries.

Gradients that exist during the whole step (DDP buckets, ZeRO-2/3 partitions, accumulation) and
the weights and optimizer states are in every phase. ``allocated`` is the largest phase (what
``torch.cuda.max_memory_allocated`` reports), ``reserved`` adds the caching allocator's slack,
``total`` adds the CUDA context and NCCL buffers (what ``nvidia-smi`` shows). bitsandbytes paged
optimizers allocate their states with ``cudaMallocManaged``, outside PyTorch's allocator: they
count towards the device total while they fit and page to host memory when they do not.

Pipeline parallelism (1F1B, Narayanan et al. 2021, arXiv:2104.04473 §2.2): stage ``i`` of ``pp``
holds ``pp − i`` micro-batches in flight; the first stage has the embedding and the most
activations, the last the head and the logits. Every stage is evaluated; the largest is reported.
"""

from __future__ import annotations

from functools import lru_cache
from dataclasses import asdict, dataclass, field
from typing import Any

from llmsizing.architecture import Module, model_modules
from llmsizing.assumptions import Assumptions
from llmsizing.catalog import load_precision
from llmsizing.choices import (ADAPTER_DTYPES, ATTENTION_KERNELS, BASE_WEIGHTS, FRAMEWORKS, LOSS_IMPLS, METHODS,
                               OFFLOADS, OPTIMIZER_IMPLS, OPTIMIZERS, QLORA_QUANTS, ZERO_BACKENDS, ZERO_STAGES, one_of)
from llmsizing.choices import TRAIN_PRECISIONS as PRECISIONS
from llmsizing.errors import ScenarioError
from llmsizing.lora import lora_matrix_elems, lora_target_modules
from llmsizing.specs import GpuSpec, ModelSpec
from llmsizing.training.activations import ACT_BYTES, activation_bytes, stage_activation_bytes
from llmsizing.training.frameworks import Terms, resolve_terms
from llmsizing.training.layout import check_layout, stage_layers, stage_layers_of
from llmsizing.training.setup import FinetuneSetup
from llmsizing.training.terms import (adapter_weight_bytes, backward_built_gradients_bytes, deepspeed_zero3_fp32_grad_bytes,
                                      eval_full_logits_bytes,
                                      kbit_prep_extra_weight_bytes,
                                      megatron_main_grad_bytes, moe_select_backward_bytes, optimizer_step_temp_bytes,
                                      zero3_offload_resident_bytes)
from llmsizing.weights import is_quantized_module, module_weight_bytes

PHASES = ("loss", "layer_backward", "backward_end", "optimizer_step")
#: Which of the three measurable quantities each memory number is (JSON ``memory_kinds``).
MEMORY_KINDS = {
    "weights": "allocated", "gradients": "allocated", "optimizer": "allocated", "activations": "allocated",
    "buffers": "allocated",
    "allocated": "allocated: live tensors at the peak (torch.cuda.max_memory_allocated)",
    "reserved": "reserved: allocated + caching-allocator slack (torch.cuda.max_memory_reserved)",
    "overhead": "device: CUDA context + NCCL, outside PyTorch's allocator",
    "total": "device: reserved + CUDA context + NCCL + resident paged states (nvidia-smi)",
}
FP32 = 4


# ----------------------------------------------------------------------------- sharding


@lru_cache(maxsize=4096)
def _stage_bounds(num_layers: int, pp: int, stage: int) -> tuple[int, int]:
    """(first, past-the-last) decoder layer of ``stage``: the bounds of ``layout.stage_layers``, cached
    because every module of every memory evaluation asks."""
    r = stage_layers_of(num_layers, pp, stage)
    return r.start, r.stop


def _on_stage(m: Module, spec: ModelSpec, setup: FinetuneSetup, stage: int) -> bool:
    if m.layer >= 0:
        lo, hi = _stage_bounds(spec.num_layers, setup.pp, stage)
        return lo <= m.layer < hi
    if m.group in ("embedding", "position"):
        return stage == 0 or (spec.tie_embeddings and stage == setup.pp - 1)
    return stage == setup.pp - 1  # final norm, lm_head


def _local_fraction(m: Module, setup: FinetuneSetup) -> float:
    """Share of module ``m`` one GPU holds before ZeRO: tp splits matrices, ep splits routed experts."""
    frac = 1.0 if m.kind in ("norm", "vector") else 1.0 / setup.tp
    if m.group == "experts":
        frac /= setup.ep
    return frac


def _zero_divisor(m: Module, setup: FinetuneSetup) -> int:
    """ZeRO shards each parameter over its data-parallel group (experts: dp / ep of them)."""
    if m.group == "experts" and setup.ep > 1:
        return max(1, setup.dp // setup.ep) if setup.dp % setup.ep == 0 else 1
    return setup.dp


def _quant_precision(setup: FinetuneSetup):
    return load_precision(str(setup.qlora_quant))


def module_storage_bytes(m: Module, spec: ModelSpec, setup: FinetuneSetup) -> float:
    """Bytes of the base weights of all copies of ``m`` (before any sharding).

    Full and LoRA: the working dtype (2 B bf16, 4 B fp32); QLoRA: weights.py's NF4 bytes for the
    quantized linears, bf16 for embeddings, head, norms and routers.
    """
    if setup.method == "qlora":
        if _experts_stay_16bit(m, setup):
            return m.params * 2
        return module_weight_bytes(m, _quant_precision(setup), spec.num_layers)
    if setup.method == "lora" and setup.base_weights != "auto":
        return m.params * (FP32 if setup.base_weights == "fp32" else 2)
    return m.params * ACT_BYTES[setup.precision]


def module_compute_bytes(m: Module, spec: ModelSpec, setup: FinetuneSetup) -> float:
    """Bytes of ``m`` as ZeRO-3 / FSDP gathers it for compute: the compute dtype (FSDP mixed
    precision casts before the all-gather), or the packed 4-bit storage for QLoRA."""
    if setup.method == "qlora":
        if _experts_stay_16bit(m, setup):
            return m.params * 2
        return module_weight_bytes(m, _quant_precision(setup), spec.num_layers)
    return m.params * ACT_BYTES[setup.precision]


def _experts_stay_16bit(m: Module, setup: FinetuneSetup) -> bool:
    """transformers 5 + bitsandbytes quantizes ``nn.Linear`` modules only
    (``quantizers/quantizer_bnb_4bit.py::param_needs_quantization``); its fused 3-D routed-expert
    tensors stay bf16 (the framework's ``moe_eager_experts``)."""
    return m.group == "experts" and setup.terms.moe_eager_experts


# ----------------------------------------------------------------------------- trainable tensors


def trainable_tensors(spec: ModelSpec, setup: FinetuneSetup) -> tuple[tuple[Module, int, int], ...]:
    """(module, elements per tensor, tensor count) of every trainable tensor, all stages, unsharded.

    Full: each module's weight (and bias); LoRA/QLoRA: the A (r × in) and B (out × r) matrices
    of every adapted copy.
    """
    return _trainable_tensors(spec, setup.method, setup.lora_targets, setup.lora_rank)


@lru_cache(maxsize=512)
def _trainable_tensors(spec: ModelSpec, method: str, lora_targets: str, lora_rank: int
                       ) -> tuple[tuple[Module, int, int], ...]:
    """``trainable_tensors`` by the only setup fields it depends on (cached: every memory evaluation asks)."""
    out: list[tuple[Module, int, int]] = []
    if method == "full":
        for m in model_modules(spec):
            if m.buffer:
                continue
            out.append((m, m.weight_params, m.count))
            if m.bias:
                out.append((m, m.out_features, m.count))
        return tuple(out)
    for m in lora_target_modules(spec, lora_targets):
        a_elems, b_elems = lora_matrix_elems(m, lora_rank)
        out.append((m, a_elems, m.count))
        out.append((m, b_elems, m.count))
    return tuple(out)


def trainable_params(spec: ModelSpec, setup: FinetuneSetup) -> int:
    """Parameters that receive gradients: all (full; buffers excluded) or the LoRA adapters."""
    return sum(n * c for _, n, c in trainable_tensors(spec, setup))


def _local_trainable(spec: ModelSpec, setup: FinetuneSetup, stage: int) -> list[tuple[float, float, Module]]:
    """(elements per tensor on this GPU, copies on this GPU, module) for the stage's trainable tensors."""
    out = []
    for m, n, c in trainable_tensors(spec, setup):
        if not _on_stage(m, spec, setup, stage):
            continue
        tp_frac = 1.0 if m.kind in ("norm", "vector") else 1.0 / setup.tp
        copies = c / setup.ep if m.group == "experts" else c
        out.append((n * tp_frac, copies, m))
    return out


# ----------------------------------------------------------------------------- model states


def grad_bytes_per_param(setup: FinetuneSetup) -> int:
    """Gradient dtype bytes: bf16 (2) for mixed-bf16 and bf16, fp32 (4) for fp32 (ZeRO §3.1) and for
    fp32 adapters in a bf16 model (PEFT ``autocast_adapter_dtype=True``)."""
    return FP32 if setup.terms.adapter_fp32 else ACT_BYTES[setup.precision]


def _state_bytes(setup: FinetuneSetup) -> int:
    """Dtype of AdamW moments: fp32 with an fp32 master or fp32 adapters, else the parameter's dtype."""
    return FP32 if setup.precision == "mixed-bf16" or setup.terms.adapter_fp32 else ACT_BYTES[setup.precision]


def optimizer_bytes_per_param(setup: FinetuneSetup, numel: float, a: Assumptions) -> float:
    """Optimizer-state bytes for one trainable parameter of a tensor with ``numel`` elements.

    mixed-bf16 adds the fp32 master (4 B). AdamW: 2 moments in the state dtype (fp32 for
    mixed/fp32, bf16 for pure bf16: torch keeps states in the parameter's dtype); 8-bit AdamW:
    2 × (1 B + 4 B absmax / block) for tensors of at least ``adam_8bit_min_size`` elements, fp32
    moments below; SGD: none; SGD with momentum: one state.
    """
    state_dtype = _state_bytes(setup)
    master = a["master_weight_bytes"] if setup.precision == "mixed-bf16" else 0
    opt = setup.optimizer
    if opt in ("adamw", "paged-adamw"):
        states = a["adam_state_bytes_fp32"] * state_dtype / FP32
    elif opt in ("adamw-8bit", "paged-adamw-8bit"):
        if numel < a["adam_8bit_min_size"]:
            states = a["adam_state_bytes_fp32"]
        else:
            states = a["adam_8bit_state_bytes"] * (1 + FP32 / a["adam_8bit_block_size"])
    elif opt == "sgd-momentum":
        states = state_dtype
    else:
        states = 0.0
    return master + states


def _paged(setup: FinetuneSetup) -> bool:
    return setup.optimizer.startswith("paged-")


@dataclass(frozen=True)
class ModelStates:
    """Per-GPU bytes of weights, gradients and optimizer states on one pipeline stage."""

    weights: float
    grads_full: float          # all local gradients if materialised unsharded
    grads_persistent: float    # gradient memory alive during the whole step
    grads_transient: float     # gradient memory that appears during backward / step only
    optimizer: float           # GPU-resident optimizer states (+ fp32 master)
    optimizer_paged: float     # states in CUDA managed memory (paged optimizers)
    optimizer_host: float      # states offloaded to host RAM
    params_host: float         # parameters offloaded to host RAM
    largest_grad: float
    head_grad: float           # output-head gradient, produced before any layer's backward
    grads_host: float = 0.0    # fp32 gradient partition in host RAM (optimizer offload)
    step_temp: float = 0.0     # optimizer-step temporaries (terms.optimizer_step_temp_bytes)
    built_grads: float = 0.0   # gradients alive in the first layer's backward (full FT, ZeRO <= 1)
    moe_backward: float = 0.0  # SelectBackward copies of fused expert tensors (full FT, eager experts)


def model_states(spec: ModelSpec, setup: FinetuneSetup, stage: int, a: Assumptions) -> ModelStates:
    """Weights, gradients and optimizer states of one GPU on pipeline stage ``stage``."""
    zero, dp, t = setup.zero, setup.dp, setup.terms
    weights = kbit = 0.0
    for m in model_modules(spec):
        if not _on_stage(m, spec, setup, stage):
            continue
        b = module_storage_bytes(m, spec, setup) * _local_fraction(m, setup)
        weights += b / (_zero_divisor(m, setup) if zero == 3 else 1)
        if t.kbit_prep and not is_quantized_module(m, _quant_precision(setup)) and not m.buffer:
            kbit += m.params * _local_fraction(m, setup) / (_zero_divisor(m, setup) if zero == 3 else 1)
    weights += kbit_prep_extra_weight_bytes(kbit)
    gb = grad_bytes_per_param(setup)
    g_full = g_sharded = opt_sharded = largest = head_grad = 0.0
    numel_opt = adapters = g_first = g_embed = 0.0
    experts_tensor: dict[int, float] = {}
    opt_cache: dict[float, float] = {}
    first_layer = min(stage_layers(spec, setup, stage), default=-1)
    for n, copies, m in _local_trainable(spec, setup, stage):
        g_full += n * copies * gb
        g_sharded += n * copies * gb / _zero_divisor(m, setup)
        largest = max(largest, n)
        if m.group == "lm_head" or (spec.tie_embeddings and m.group == "embedding" and stage == setup.pp - 1):
            head_grad += n * copies * gb
        g_first += n * copies * gb if m.layer == first_layer else 0.0
        g_embed += n * copies * gb if m.group in ("embedding", "position") else 0.0
        if m.group == "experts" and m.name.endswith(("gate_proj", "up_proj")):   # one fused (E, 2I, h) tensor
            experts_tensor[m.layer] = experts_tensor.get(m.layer, 0.0) + n * copies * ACT_BYTES[setup.precision]
        per_param = opt_cache.get(n)
        if per_param is None:   # one call per tensor shape: the assumptions it reads are recorded all the same
            per_param = opt_cache[n] = optimizer_bytes_per_param(setup, n, a)
        per = per_param * n * copies
        opt_sharded += per / (_zero_divisor(m, setup) if zero >= 1 else 1)
        numel_opt += n * copies / (_zero_divisor(m, setup) if zero >= 1 else 1)
        adapters += n * copies / (_zero_divisor(m, setup) if zero == 3 else 1)
    if setup.method != "full" and setup.precision != "mixed-bf16":
        weights += adapter_weight_bytes(adapters, FP32 if t.adapter_fp32 else ACT_BYTES[setup.precision])
    if zero >= 2:
        persistent = g_sharded
        bucket = a["ds_reduce_bucket_size"] * gb if setup.zero_backend == "deepspeed" else _largest_layer_grad(
            spec, setup, stage)
        transient = min(g_full, bucket)
    else:
        ddp_copy = dp > 1 and zero == 0 and not a["ddp_gradient_as_bucket_view"]
        persistent = g_full if ddp_copy else 0.0
        transient = g_full
    built = 0.0
    if setup.method == "full" and zero < 2 and setup.grad_accumulation == 1 and not setup.optimizer_in_backward:
        built = backward_built_gradients_bytes(g_full, g_first, g_embed)
    if setup.grad_accumulation > 1 and zero < 2:
        persistent, transient, head_grad = persistent + g_full, 0.0, 0.0  # accumulated .grad tensors
    if setup.optimizer_in_backward:
        transient = largest * gb
    if t.main_grad_fp32:
        # Megatron: one fp32 main-grad buffer for the whole step, bf16 grads never materialise apart
        persistent, transient, head_grad, built = megatron_main_grad_bytes(g_full / gb), 0.0, 0.0, 0.0
    if zero in (1, 2) and a["zero_fp32_grad_partition"] and setup.precision == "mixed-bf16":
        transient += g_sharded * FP32 / gb
    ds3_fp32_grads = 0.0
    if zero == 3 and setup.zero_backend == "deepspeed" and setup.precision == "mixed-bf16" and setup.offload == "none":
        ds3_fp32_grads = deepspeed_zero3_fp32_grad_bytes(g_sharded / gb, a)
    step_temp = optimizer_step_temp_bytes(t.optimizer_impl, numel_opt, largest, _state_bytes(setup)) + ds3_fp32_grads
    optimizer, paged, host, grads_host = opt_sharded, 0.0, 0.0, 0.0
    if setup.offload != "none":
        # ZeRO-Offload: fp32 master, moments and an fp32 gradient partition in host memory
        optimizer, host, grads_host, step_temp = 0.0, opt_sharded, g_sharded * FP32 / gb, 0.0
        persistent = 0.0
        transient = min(transient, a["ds_reduce_bucket_size"] * gb)
    elif _paged(setup):
        optimizer, paged = 0.0, opt_sharded
    params_host = 0.0
    if setup.offload == "optimizer+params":
        keep = 0.0
        if setup.method == "qlora" and setup.zero_backend == "fsdp" and a["fsdp_offload_keeps_4bit_shards"]:
            keep = weights - kbit_prep_extra_weight_bytes(kbit)
        params_host, weights = weights - keep, keep
    moe = moe_select_backward_bytes(max(experts_tensor.values(), default=0.0), a) \
        if setup.method == "full" and t.moe_eager_experts else 0.0
    return ModelStates(weights, g_full, persistent, transient, optimizer, paged, host, params_host, largest * gb,
                       head_grad, grads_host, step_temp, built, moe)


def model_state_bytes(spec: ModelSpec, setup: FinetuneSetup, assumptions: Assumptions | dict | None = None,
                      stage: int = 0) -> dict[str, float]:
    """Model states per GPU as ZeRO accounts them (Rajbhandari et al. 2020 §5.1, Figure 1).

    weights: the working copy (÷dp at stage 3); gradients: all of them below stage 2, the dp
    partition from stage 2; optimizer: master + moments (÷dp from stage 1), paged states included.
    No DDP bucket copies, reduce buckets or gather buffers (``finetune_memory`` adds those).
    Mixed-precision AdamW at dp = Nd: (2 + 2 + 12)Ψ, 4Ψ + 12Ψ/Nd, 2Ψ + 14Ψ/Nd, 16Ψ/Nd.
    """
    a = _assumptions(assumptions)
    check_layout(spec, setup)
    ms = model_states(spec, setup, stage, a)
    grads = ms.grads_full / setup.dp if setup.zero >= 2 else ms.grads_full
    optimizer = ms.optimizer + ms.optimizer_paged + ms.optimizer_host
    weights = ms.weights + ms.params_host
    return {"weights": weights, "gradients": grads, "optimizer": optimizer, "total": weights + grads + optimizer}


def _layer_param_bytes(spec: ModelSpec, setup: FinetuneSetup) -> dict[int, tuple[float, float]]:
    """{decoder layer: (parameters, storage bytes) on one GPU before ZeRO}, in one pass over the modules."""
    out: dict[int, tuple[float, float]] = {}
    for m in model_modules(spec):
        if m.layer >= 0:
            f = _local_fraction(m, setup)
            n, b = out.get(m.layer, (0.0, 0.0))
            out[m.layer] = (n + m.params * f, b + module_compute_bytes(m, spec, setup) * f)
    return out


def _largest_layer_grad(spec: ModelSpec, setup: FinetuneSetup, stage: int) -> float:
    """Unsharded gradient of the largest decoder layer on the stage (FSDP reduce-scatters per unit)."""
    gb = grad_bytes_per_param(setup)
    per_layer: dict[int, float] = {}
    for n, copies, m in _local_trainable(spec, setup, stage):
        per_layer[m.layer] = per_layer.get(m.layer, 0.0) + n * copies * gb
    return max(per_layer.values(), default=0.0)


def zero3_gather_bytes(spec: ModelSpec, setup: FinetuneSetup, stage: int, a: Assumptions) -> float:
    """Full (gathered) parameters ZeRO-3 keeps alive on one GPU.

    FSDP: the unit computing plus ``fsdp_prefetch_units`` prefetched units (one decoder layer
    each, plus the largest of embedding/head when on the stage). DeepSpeed: the largest layer
    plus ``stage3_prefetch_bucket_size`` parameters, capped by ``stage3_max_live_parameters``, or
    the embedding / head when larger; with parameter offload also the largest module resident
    (``terms.zero3_offload_resident_bytes``). Bytes are the storage bytes (bf16, or NF4 for QLoRA with a bf16 quant_storage).
    """
    if setup.zero != 3:
        return 0.0
    per_layer = _layer_param_bytes(spec, setup)
    n_layer, b_layer = max((per_layer.get(i, (0.0, 0.0)) for i in stage_layers(spec, setup, stage)),
                           key=lambda nb: nb[1], default=(0.0, 0.0))
    outside = [module_compute_bytes(m, spec, setup) * _local_fraction(m, setup)
               for m in model_modules(spec) if m.layer < 0 and _on_stage(m, spec, setup, stage)]
    if setup.zero_backend == "fsdp":
        return (1 + a["fsdp_prefetch_units"]) * max([b_layer] + outside)
    if n_layer == 0:
        return 0.0
    live = min(a["ds_stage3_max_live_parameters"], n_layer + a["ds_stage3_prefetch_bucket_size"])
    gathered = max(live * b_layer / n_layer, max(outside, default=0.0))
    if setup.offload == "optimizer+params":
        largest = max([n_layer] + [m.params * _local_fraction(m, setup) for m in model_modules(spec)
                                   if m.layer < 0 and _on_stage(m, spec, setup, stage)])
        gathered += zero3_offload_resident_bytes(largest, a)
    return gathered


def dequant_workspace_bytes(spec: ModelSpec, setup: FinetuneSetup, a: Assumptions) -> float:
    """QLoRA: bf16 copies of the largest quantized weight (bitsandbytes dequantize_4bit per matmul)."""
    if setup.method != "qlora":
        return 0.0
    p = _quant_precision(setup)
    largest = max((m.weight_params for m in model_modules(spec) if is_quantized_module(m, p)), default=0)
    return a["dequant_workspace_copies"] * largest * 2 / setup.tp


# ----------------------------------------------------------------------------- memory


def reserved_bytes(allocated: float, a: Assumptions) -> float:
    """PyTorch's caching allocator: what ``max_memory_reserved`` shows for a peak of ``allocated``.

    reserved = allocated · (1 + f) + one large segment, with f =
    ``allocator_fragmentation_fraction`` (cached free blocks that the allocation pattern leaves
    split; ``allocator_fragmentation_fraction_expandable`` with ``expandable_segments:True``, which
    grows one segment instead of caching many) and the segment = ``allocator_large_segment_bytes``
    (c10/cuda/CUDACachingAllocator.cpp: requests above 1 MiB come from 20 MiB segments
    (kLargeBuffer) or are rounded up to 2 MiB (kRoundLarge); the last segment is partly empty).
    """
    f = a["allocator_fragmentation_fraction_expandable"] if a["allocator_expandable_segments"] \
        else a["allocator_fragmentation_fraction"]
    return allocated * (1 + f) + a["allocator_large_segment_bytes"]



def _assumptions(assumptions: Assumptions | dict | None) -> Assumptions:
    return Assumptions.of(assumptions)


@dataclass(frozen=True)
class FinetuneMemory:
    """Per-GPU memory of a fine-tuning step at its peak (bytes).

    weights + gradients + optimizer + activations + buffers = allocated;
    allocated + fragmentation = reserved; reserved + overhead + paged_optimizer = total.
    """

    weights: float
    gradients: float
    optimizer: float
    activations: float
    buffers: float            # ZeRO-3 gathered parameters, QLoRA dequantization workspace
    overhead: float           # CUDA context + NCCL (device level only)
    allocated: float          # like torch.cuda.max_memory_allocated
    reserved: float           # like torch.cuda.max_memory_reserved
    total: float              # device level (nvidia-smi)
    gpu_memory_bytes: int
    fits: bool
    reason: str
    host_ram_bytes: float     # host RAM for offloaded/paged states, all processes of one node
    fragmentation: float = 0.0
    paged_optimizer: float = 0.0   # paged optimizer states resident on the GPU (outside PyTorch's allocator)
    phase: str = ""                # which moment of the step is the peak (PHASES)
    stage: int = 0                 # pipeline stage that peaks
    phases: dict = field(default_factory=dict)   # allocated bytes of each phase on that stage
    activation_parts: dict = field(default_factory=dict)
    notes: tuple = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


def finetune_memory(spec: ModelSpec, setup: FinetuneSetup, gpu: GpuSpec,
                    assumptions: Assumptions | dict | None = None) -> FinetuneMemory:
    """Peak per-GPU memory of one training step of ``setup`` on ``gpu`` (worst pipeline stage).

    Phases (module docstring): loss, layer_backward, backward_end, optimizer_step; allocated =
    weights + persistent gradients + optimizer + buffers + the phase's activations or transient
    gradients. reserved = allocated · (1 + allocator_fragmentation_fraction); total = reserved +
    cuda_context_bytes + nccl_buffer_bytes (more than one GPU) + paged optimizer states that fit.
    Does not raise for a layout that does not fit: ``fits`` is False and ``reason`` says why.
    """
    a = _assumptions(assumptions)
    check_layout(spec, setup)
    best = None
    for stage in range(setup.pp):
        ms = model_states(spec, setup, stage, a)
        acts = stage_activation_bytes(spec, setup, stage, a)
        # the dequantized 4-bit weight lives only inside a Linear4bit forward/backward (whole-step
        # measurement): in the recomputed layer's backward, never at the loss
        dequant = dequant_workspace_bytes(spec, setup, a)
        buffers = zero3_gather_bytes(spec, setup, stage, a)
        base = ms.weights + ms.grads_persistent + ms.optimizer + buffers
        step_temp = ms.step_temp
        n_layers = max(1, len(stage_layers(spec, setup, stage)))
        layers_here = stage_layers(spec, setup, stage)
        moe_layers = set(spec.moe_layers)
        # SelectBackward copies only while an MoE layer back-propagates (the first and last layer ends)
        moe_last = ms.moe_backward if layers_here and max(layers_here) in moe_layers else 0.0
        moe_first = ms.moe_backward if layers_here and min(layers_here) in moe_layers else 0.0
        last_layer = base + acts["backward_phase"] + ms.head_grad + moe_last + dequant
        # the first layer's backward: its own saved tensors (or input) only, every later gradient built
        first_layer = base + (acts["layers"] + acts["lora"]) / n_layers + acts["recompute_peak"] \
            + ms.built_grads + moe_first + dequant
        # a validation step with whole logits (framework profile) peaks like the loss, without gradients
        evaluation = eval_full_logits_bytes(spec.vocab_size / setup.tp, setup.tokens_per_gpu,
                                            ACT_BYTES[setup.precision]) if setup.terms.eval_full_logits \
            and stage == setup.pp - 1 else 0.0
        phases = {
            "loss": base + max(acts["loss_phase"], evaluation),
            "layer_backward": max(last_layer, first_layer),
            "backward_end": base + ms.grads_transient,
            "optimizer_step": base + ms.grads_transient + step_temp,
        }
        layer_grads = ms.head_grad + moe_last if last_layer >= first_layer else ms.built_grads + moe_first
        phase = max(PHASES, key=lambda p: phases[p])
        if best is None or phases[phase] > best[0]:
            best = (phases[phase], stage, phase, phases, ms, acts, buffers, step_temp, layer_grads, dequant)
    allocated, stage, phase, phases, ms, acts, buffers, step_temp, layer_grads, dequant = best
    buffers += dequant if phase == "layer_backward" else 0.0
    in_backward = phase in ("backward_end", "optimizer_step")
    gradients = ms.grads_persistent + (ms.grads_transient if in_backward else 0.0)
    gradients += layer_grads if phase == "layer_backward" else 0.0
    optimizer = ms.optimizer + (step_temp if phase == "optimizer_step" else 0.0)
    activations = 0.0 if in_backward else allocated - (ms.weights + ms.optimizer + buffers + gradients)
    reserved = reserved_bytes(allocated, a)
    fragmentation = reserved - allocated
    overhead = a["cuda_context_bytes"] + (a["nccl_buffer_bytes"] if setup.gpus > 1 else 0)
    free = max(0.0, gpu.memory_bytes - reserved - overhead)
    paged_resident = min(ms.optimizer_paged, free) if a["paged_states_resident"] else 0.0
    total = reserved + overhead + paged_resident
    fits = reserved + overhead <= gpu.memory_bytes
    notes = []
    if ms.optimizer_paged > paged_resident:
        notes.append(f"paged optimizer: {ms.optimizer_paged - paged_resident:.0f} B of states page to host memory")
    reason = "" if fits else (
        f"needs {(reserved + overhead) / 2**30:.1f} GiB per GPU ({phase} phase, stage {stage}) but {gpu.name} has "
        f"{gpu.memory_bytes / 2**30:.1f} GiB")
    procs = min(setup.gpus, gpu.node_gpus_max or setup.gpus)
    pinned = 1 + a["cpu_offload_pinned_buffer_fraction"]
    host = (ms.optimizer_host + ms.grads_host + ms.params_host + acts["offloaded"]) * pinned \
        + (ms.optimizer_paged - paged_resident)
    return FinetuneMemory(
        weights=ms.weights, gradients=gradients, optimizer=optimizer, activations=activations, buffers=buffers,
        overhead=overhead, allocated=allocated, reserved=reserved, total=total,
        gpu_memory_bytes=gpu.memory_bytes, fits=fits, reason=reason, host_ram_bytes=host * procs,
        fragmentation=fragmentation, paged_optimizer=paged_resident, phase=phase, stage=stage,
        phases=phases, activation_parts={k: acts[k] for k in ("layers", "lora", "head", "logits", "recompute_peak")},
        notes=tuple(notes),
    )

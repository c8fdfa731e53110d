"""Training compute: FLOP per token, utilisation, throughput and GPU-hours of a fine-tuning run.

Two FLOP counts, because the published cases quote two different things:

``model_flop_per_token`` — the work the algorithm needs, no recomputation. MFU is quoted against
it (Chowdhery et al. 2022 App. B, as used by Llama 3 Table 4; LLM Foundry's benchmark README;
Korthikanti et al. 2022 §6).

- full fine-tuning: ``6·N + 3·A`` — forward 2N, input gradients 2N, weight gradients 2N;
- LoRA / QLoRA: ``4·N + 6·N_adapter + 3·A`` — frozen weights get no weight gradients, but the
  input gradients still flow through every frozen layer down to the lowest adapter.

``train_flop_per_token`` — what the hardware executes: model FLOP plus the recompute forward of
gradient checkpointing (``2·N_layers + A + 2·N_adapter``: Hugging Face / FSDP checkpoint each
decoder layer; the head and loss are not recomputed) plus the attention kernel's own recompute of
QKᵀ in its backward pass (flash / sdpa: ``+0.5·A``, LLM Foundry README "the attention multiplier
would be 5 instead of 4"). Megatron's "achieved TFLOP/s" (arXiv:2104.04473, ``96·B·s·l·h²(1 + s/6h +
V/16lh)``) counts the checkpoint recompute the same way.

N is ``matmul_params_active`` (active linear weights plus the output head; the embedding lookup is
no matmul). A is ``attention_flop_per_token(spec, seq_len)``: QKᵀ and AV over the full s×s square,
which is how Megatron (the s/6h term), PaLM/Llama 3 (12·L·H·Q·T) and LLM Foundry
(``4·n_layers·d·s²`` per sequence) count it although causal kernels skip about half the blocks.
The MFU assumptions are calibrated under the same convention, so times stay consistent.

Time of one micro-step of one model replica (``R = tp·pp·cp`` GPUs, ``T = micro_batch·seq_len``
tokens)::

    t_compute = T · (model_flop + ρ·(train_flop − model_flop)) / (R · MFU · peak)
    t_host    = (L / pp) · host_overhead_s_per_layer            # kernel-launch bound at small T
    t_dequant = passes · quantized_weights / R · qlora_dequant_bytes_per_param / HBM bandwidth
    t_step    = max(t_compute, t_host) + t_dequant               # passes = 2, 3 with checkpointing

MFU is named per method × GPU class (``assumptions/training_compute.py``); ρ
(``recompute_time_fraction``) says how much of the recompute FLOP shows up as time. Peak FLOP/s
is the GPU's dense tensor peak for the compute precision (bf16 for mixed-bf16 and bf16, fp16 on
cards without bf16, fp32 for fp32). Data-parallel communication, pipeline bubbles and ZeRO
traffic are the planner's business, not this module's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from llmsizing.architecture import attention_flop_per_token, matmul_params_active, model_modules, mtp_modules
from llmsizing.assumptions import Assumptions
from llmsizing.catalog import load_precision
from llmsizing.choices import METHODS
from llmsizing.errors import ScenarioError
from llmsizing.lora import lora_params_active
from llmsizing.specs import GpuSpec, ModelSpec
from llmsizing.weights import is_quantized_module

GPU_CLASSES = ("hopper", "ampere", "ada", "blackwell", "other")
# Attention kernels that recompute QKᵀ (and the softmax) in their backward pass.
_RECOMPUTING_KERNELS = ("flash", "sdpa")


def _assumptions(assumptions: Assumptions | dict | None) -> Assumptions:
    return Assumptions.of(assumptions)


def _method(setup: Any) -> str:
    method = getattr(setup, "method", None)
    if method not in METHODS:
        raise ScenarioError(f"fine-tuning method {method!r} is not one of {', '.join(METHODS)}")
    return method


# ----------------------------------------------------------------------------- GPU class and precision


def gpu_class(gpu: GpuSpec) -> str:
    """hopper | ampere | ada | blackwell | other, from the catalog's ``arch`` text.

    "Hopper (export variant)" (H800, H20) is hopper; "Ampere GA102" (A10G) is ampere; AMD, Intel
    Gaudi, Huawei and pre-Ampere NVIDIA parts are "other".
    """
    arch = (gpu.arch or "").lower()
    if gpu.vendor and gpu.vendor.strip().lower() not in ("nvidia", ""):
        return "other"
    for cls in GPU_CLASSES[:-1]:
        if re.search(rf"\b{cls}\b", arch):
            return cls
    return "other"


def compute_precision(gpu: GpuSpec, setup: Any) -> str:
    """The tensor path the matmuls run on: bf16, fp16 (cards without bf16) or fp32."""
    precision = getattr(setup, "precision", "mixed-bf16")
    if precision == "fp32":
        if not gpu.flop_per_s.get("fp32"):
            raise ScenarioError(f"GPU {gpu.slug} has no fp32 peak in the catalog; use precision mixed-bf16 or bf16")
        return "fp32"
    if gpu.flop_per_s.get("bf16"):
        return "bf16"
    if gpu.flop_per_s.get("fp16"):
        return "fp16"  # T4/V100-class cards: mixed fp16 with loss scaling
    raise ScenarioError(f"GPU {gpu.slug} has neither a bf16 nor an fp16 peak in the catalog")


# ----------------------------------------------------------------------------- parameter counts


def _layer_matmul_params(spec: ModelSpec) -> float:
    """Active linear weight elements inside the decoder layers (what checkpointing recomputes)."""
    return float(sum(m.active_count * m.weight_params for m in model_modules(spec)
                     if m.kind == "linear" and m.layer >= 0))


def _mtp_matmul_params(spec: ModelSpec) -> float:
    """Active matmul weights of the MTP modules, their shared output head included."""
    if not spec.mtp_layers:
        return 0.0
    n = sum(m.active_count * m.weight_params for m in mtp_modules(spec) if m.kind == "linear")
    return float(n + spec.mtp_layers * spec.hidden_size * spec.vocab_size)


def adapter_params_active(spec: ModelSpec, setup: Any) -> float:
    """LoRA adapter weight elements one token multiplies: Σ active_count · r · (in + out).

    ``lora.lora_params_active``: routed-expert adapters count top-k of E copies, like the experts
    they adapt. 0 for full fine-tuning. All adapters sit inside the decoder layers, so checkpointing
    recomputes all of them.
    """
    if _method(setup) == "full":
        return 0.0
    return float(lora_params_active(spec, setup.lora_targets, setup.lora_rank))


def quantized_weight_params(spec: ModelSpec, setup: Any) -> float:
    """Weight elements QLoRA stores in 4 bits and dequantizes for every pass (0 unless qlora).

    The linear layers that bitsandbytes quantizes (not lm_head, routers or eh_proj), every copy:
    a micro-step of a few thousand tokens touches nearly every routed expert.
    """
    if _method(setup) != "qlora":
        return 0.0
    precision = load_precision(getattr(setup, "qlora_quant", "nf4-dq"))
    return float(sum(m.count * m.weight_params for m in model_modules(spec) if is_quantized_module(m, precision)))


# ----------------------------------------------------------------------------- FLOP per token


@dataclass(frozen=True)
class FlopBreakdown:
    """FLOP per trained token by part (one token of a sequence of ``seq_len``)."""

    forward: float              # 2·N (+ adapters) — matmuls of the forward pass
    input_gradients: float      # 2·N (+ adapters)
    weight_gradients: float     # 2·N full; 2·N_adapter LoRA/QLoRA
    attention: float            # 3·A: forward, and twice that backward
    checkpoint_recompute: float  # 2·N_layers + A + 2·N_adapter with gradient checkpointing, else 0
    attention_recompute: float  # 0.5·A for flash/sdpa kernels, else 0
    model: float                # what MFU is quoted against
    train: float                # what the hardware executes

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def flop_breakdown_per_token(spec: ModelSpec, setup: Any, include_mtp: bool = False) -> FlopBreakdown:
    """Every FLOP term of one trained token; ``include_mtp`` adds DeepSeek's MTP module(s) (pre-training)."""
    method = _method(setup)
    s = setup.seq_len
    if not isinstance(s, int) or s < 1:
        raise ScenarioError(f"seq_len must be a positive integer, got {s!r}")
    n = matmul_params_active(spec)
    n_layers = _layer_matmul_params(spec)
    attn = attention_flop_per_token(spec, s)
    if include_mtp and spec.mtp_layers:
        n += _mtp_matmul_params(spec)
        n_layers += _mtp_matmul_params(spec) - spec.mtp_layers * spec.hidden_size * spec.vocab_size
        attn += attention_flop_per_token(spec, s) / spec.num_layers * spec.mtp_layers
    n_ad = adapter_params_active(spec, setup)

    forward = 2.0 * (n + n_ad)
    input_grad = 2.0 * (n + n_ad)
    weight_grad = 2.0 * (n if method == "full" else n_ad)
    attention = 3.0 * attn
    recompute = (2.0 * (n_layers + n_ad) + attn) if setup.gradient_checkpointing else 0.0
    kernel = getattr(setup, "attention_kernel", "flash")
    attn_recompute = 0.5 * attn if kernel in _RECOMPUTING_KERNELS else 0.0
    model = forward + input_grad + weight_grad + attention
    return FlopBreakdown(forward, input_grad, weight_grad, attention, recompute, attn_recompute,
                         model, model + recompute + attn_recompute)


def model_flop_per_token(spec: ModelSpec, setup: Any, include_mtp: bool = False) -> float:
    """FLOP per token that MFU is quoted against: 6N + 3A full; 4N + 6N_adapter + 3A LoRA/QLoRA."""
    return flop_breakdown_per_token(spec, setup, include_mtp).model


def train_flop_per_token(spec: ModelSpec, setup: Any, include_mtp: bool = False) -> float:
    """Hardware FLOP per token: model FLOP + checkpoint recompute + attention-kernel recompute."""
    return flop_breakdown_per_token(spec, setup, include_mtp).train


def train_flop(spec: ModelSpec, setup: Any, tokens: float, include_mtp: bool = False) -> float:
    """Hardware FLOP to train on ``tokens`` tokens (= tokens · train_flop_per_token)."""
    if tokens < 0:
        raise ScenarioError(f"tokens must be >= 0, got {tokens}")
    return tokens * train_flop_per_token(spec, setup, include_mtp)


# ----------------------------------------------------------------------------- utilisation and time


def mfu(gpu: GpuSpec, setup: Any, assumptions: Assumptions | dict | None = None) -> float:
    """Named model-FLOP utilisation for the setup's method on this GPU class (large micro-batches).

    Reads ``mfu_<method>_<class>`` (e.g. ``mfu_lora_hopper``).
    """
    a = _assumptions(assumptions)
    return float(a[f"mfu_{_method(setup)}_{gpu_class(gpu)}"])


@dataclass(frozen=True)
class StepTime:
    """Time of one micro-step of one model replica (tp·pp·cp GPUs), in seconds, and what bounds it."""

    tokens: int                 # micro_batch · seq_len
    compute_s: float
    host_s: float
    dequant_s: float
    step_s: float
    bound: str                  # compute | host
    tokens_per_s_per_gpu: float
    mfu: float                  # the named MFU used
    effective_mfu: float        # model FLOP/s achieved ÷ peak, all overheads included

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class StepParts(NamedTuple):
    """The three terms of one micro-step (seconds): compute, host launch overhead, QLoRA dequantization."""

    compute_s: float
    host_s: float
    dequant_s: float


def step_time_parts(spec: ModelSpec, setup: Any, gpu: GpuSpec, a: Assumptions, fb: FlopBreakdown,
                    quantized_params: float, include_mtp: bool = False) -> StepParts:
    """compute_s, host_s and dequant_s of one micro-step of one replica (``R = tp·pp·cp`` GPUs)::

        compute = T · (model + ρ · (train − model)) / (R · MFU · peak)
        host    = (L / pp) · host_overhead_s_per_layer
        dequant = passes · quantized_weights / R · qlora_dequant_bytes_per_param / HBM bandwidth   (QLoRA)

    ``fb`` is the setup's ``flop_breakdown_per_token`` and ``quantized_params`` its
    ``quantized_weight_params`` (passed in so that callers that cache them, like the planner, reuse them).
    Peak is ``GpuSpec.tensor_flop_per_s`` at ``compute_precision``.
    """
    rho = float(a["recompute_time_fraction"])
    u = mfu(gpu, setup, a)
    if u <= 0:
        raise ScenarioError(f"MFU for {setup.method} on {gpu.slug} must be > 0, got {u}")
    peak = gpu.tensor_flop_per_s(compute_precision(gpu, setup))
    tp, pp, cp = (int(getattr(setup, k, 1)) for k in ("tp", "pp", "cp"))
    replica = tp * pp * cp
    tokens = int(setup.micro_batch) * int(setup.seq_len)
    time_flop = fb.model + rho * (fb.train - fb.model)
    compute_s = tokens * time_flop / (replica * u * peak)
    layers = spec.num_layers + (spec.mtp_layers if include_mtp else 0)
    host_s = layers / pp * float(a["host_overhead_s_per_layer"])
    dequant_s = 0.0
    if setup.method == "qlora":
        passes = 3 if setup.gradient_checkpointing else 2
        dequant_s = (passes * quantized_params / replica
                     * float(a["qlora_dequant_bytes_per_param"]) / gpu.mem_bw_bytes_per_s)
    return StepParts(compute_s, host_s, dequant_s)


def step_time(spec: ModelSpec, setup: Any, gpu: GpuSpec, assumptions: Assumptions | dict | None = None,
              include_mtp: bool = False) -> StepTime:
    """Seconds per micro-step: max(compute, host launch overhead) + QLoRA dequantization."""
    a = _assumptions(assumptions)
    fb = flop_breakdown_per_token(spec, setup, include_mtp)
    compute_s, host_s, dequant_s = step_time_parts(spec, setup, gpu, a, fb, quantized_weight_params(spec, setup),
                                                   include_mtp)
    u = mfu(gpu, setup, a)
    peak = gpu.tensor_flop_per_s(compute_precision(gpu, setup))
    tokens = int(setup.micro_batch) * int(setup.seq_len)
    replica = int(getattr(setup, "tp", 1)) * int(getattr(setup, "pp", 1)) * int(getattr(setup, "cp", 1))
    step_s = max(compute_s, host_s) + dequant_s
    per_gpu = tokens / step_s / replica
    return StepTime(tokens, compute_s, host_s, dequant_s, step_s, "compute" if compute_s >= host_s else "host",
                    per_gpu, u, per_gpu * fb.model / peak)


def tokens_per_s_per_gpu(spec: ModelSpec, setup: Any, gpu: GpuSpec,
                         assumptions: Assumptions | dict | None = None, include_mtp: bool = False) -> float:
    """Trained tokens per second per GPU (no scale-out communication)."""
    return step_time(spec, setup, gpu, assumptions, include_mtp).tokens_per_s_per_gpu


def achieved_flop_per_s_per_gpu(spec: ModelSpec, setup: Any, gpu: GpuSpec,
                                assumptions: Assumptions | dict | None = None, include_mtp: bool = False) -> float:
    """Model FLOP/s one GPU delivers (= effective MFU · peak; recompute not counted as useful work)."""
    return tokens_per_s_per_gpu(spec, setup, gpu, assumptions, include_mtp) * model_flop_per_token(
        spec, setup, include_mtp)


def hardware_flop_per_s_per_gpu(spec: ModelSpec, setup: Any, gpu: GpuSpec,
                                assumptions: Assumptions | dict | None = None, include_mtp: bool = False) -> float:
    """Hardware FLOP/s one GPU executes (recompute included: Megatron's "achieved TFLOP/s")."""
    return tokens_per_s_per_gpu(spec, setup, gpu, assumptions, include_mtp) * train_flop_per_token(
        spec, setup, include_mtp)


def compute_hours(spec: ModelSpec, setup: Any, gpu: GpuSpec, gpus: int, tokens: float,
                  assumptions: Assumptions | dict | None = None, include_mtp: bool = False) -> float:
    """Wall-clock hours to train ``tokens`` tokens on ``gpus`` GPUs (no scale-out communication).

    Per-GPU throughput comes from ``step_time`` with the setup's tp, pp and cp; ``gpus`` multiplies it.
    """
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 1:
        raise ScenarioError(f"gpus must be a positive integer, got {gpus!r}")
    if tokens < 0:
        raise ScenarioError(f"tokens must be >= 0, got {tokens}")
    return tokens / (gpus * tokens_per_s_per_gpu(spec, setup, gpu, assumptions, include_mtp)) / 3600.0


def gpu_hours(spec: ModelSpec, setup: Any, gpu: GpuSpec, tokens: float,
              assumptions: Assumptions | dict | None = None, include_mtp: bool = False) -> float:
    """GPU-hours to train ``tokens`` tokens (independent of the GPU count, no scale-out communication)."""
    return compute_hours(spec, setup, gpu, 1, tokens, assumptions, include_mtp)

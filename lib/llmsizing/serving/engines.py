"""Memory of one GPU as each serving engine allocates it, and of every pipeline stage of a layout.

The estimator follows what the serving engines actually do at start-up:

* **vLLM** profiles one forward pass at ``max_num_batched_tokens`` plus a dummy sampler run, then sets
  ``KV pool = total × gpu_memory_utilization − (weights + activation peak + non-torch memory)``
  (github.com/vllm-project/vllm, ``vllm/v1/worker/gpu_worker.py determine_available_memory``) and cuts
  the pool into paged blocks. The CUDA context and the CUDA-graph pool live in the remaining
  ``1 − utilization``.
* **SGLang** sets ``KV pool = free_after_weights − free_at_start × (1 − mem_fraction_static)``
  (github.com/sgl-project/sglang, ``model_runner.profile_max_num_token``), i.e.
  ``mem_fraction_static × free_at_start − weights``.
* **transformers** allocates nothing up front: weights + exact KV + prefill activations must fit.
* **llama.cpp** allocates a KV cache for ``n_ctx`` (users × context, padded) plus a compute buffer.

What each GPU holds (weights, its share of the KV cache) comes from ``sharding.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from llmsizing.architecture import stage_layer_counts
from llmsizing.serving.plan import Plan
from llmsizing.serving.sharding import (Layout, kv_elems_per_token_per_layer_per_gpu, kv_heads_per_rank,
                                        pipeline_stages, stage_weight_bytes, stage_weight_bytes_attention_dp,
                                        weight_table)
from llmsizing.specs import ModelSpec


# ----------------------------------------------------------------------------- per-token sizes


def kv_tokens_held(context_tokens: int, block_size: int, window: int = 0) -> int:
    """Tokens one sequence occupies in one layer's paged cache: ceil(ctx / block) · block, capped at the
    window (plus one block) for sliding-window layers."""
    held = -(-context_tokens // block_size) * block_size
    if window:
        held = min(held, (-(-window // block_size) + 1) * block_size)
    return held


def activation_elems_per_token(spec: ModelSpec, tp: int) -> float:
    """Peak live activation elements per prefill token on one TP rank (one layer at a time).

    Dense MLP: residual, normed input and output (3·h) + gate_up (2·I/tp) + activation (I/tp).
    MoE (fused experts): 3·h + router logits (2·E, fp32) + top-k · (3·I_moe/tp + h) + shared experts
    (3·I_shared/tp). Attention: 3·h + q,k,v/tp + output/tp (MLA: the latents and decompressed K/V).
    Calibrated on vLLM PR 4454's A6000 block counts (tests/test_serving_calibration.py).
    """
    h = spec.hidden_size
    if spec.is_mla:
        n = spec.num_heads / tp
        attn = (3 * h + spec.q_lora_rank + spec.kv_lora_rank + spec.qk_rope_head_dim
                + n * (spec.qk_nope_head_dim + spec.qk_rope_head_dim)
                + n * (spec.qk_nope_head_dim + spec.v_head_dim) + n * spec.v_head_dim)
    else:
        attn = 3 * h + (spec.num_heads / tp + 2 * kv_heads_per_rank(spec, tp)) * spec.head_dim \
            + spec.num_heads / tp * spec.head_dim
    peak = attn
    if len(spec.moe_layers) < spec.num_layers:
        inter = spec.intermediate_size / tp
        peak = max(peak, 3 * h + 3 * inter)
    if spec.is_moe:
        moe = (3 * h + 2 * spec.num_experts
               + spec.experts_per_token * (3 * spec.moe_intermediate_size / tp + h)
               + 3 * spec.moe_intermediate_size * spec.num_shared_experts / tp)
        peak = max(peak, moe)
    return peak


# ----------------------------------------------------------------------------- memory of one layout


@dataclass(frozen=True)
class StageMemory:
    """Memory of one GPU of one pipeline stage."""

    start: int
    stop: int
    weights: float
    kv_per_token: float        # all layers of the stage at full attention, bytes per token
    kv_per_user: float         # one user at the scenario context, block-rounded, window-aware
    activations: float
    overhead: float
    kv_pool: float             # what the engine allocates for KV on this GPU
    headroom_short: float      # > 0: memory outside the engine's budget that does not fit


@dataclass(frozen=True)
class LayoutMemory:
    """Memory of every stage of one layout, and what the engine can hold."""

    layout: Layout
    stages: tuple[StageMemory, ...]
    fraction: float
    usable: float
    block: int = 1
    min_capacity_tokens: int = 0   # vLLM/SGLang refuse to start unless one max_model_len sequence fits

    def capacity_tokens(self, block: int | None = None) -> int:
        """Tokens of KV the engine allocates: min over stages of floor(pool / (block · bytes/token)) · block."""
        block = block or self.block
        best = None
        for s in self.stages:
            blocks = math.floor(max(0.0, s.kv_pool) / (block * s.kv_per_token)) if s.kv_per_token else 0
            tokens = blocks * block
            best = tokens if best is None else min(best, tokens)
        return int(best or 0) * self.layout.kv_replicas

    def max_users(self) -> int:
        """Users at the scenario context the pool holds: min over stages of floor(pool / per-user KV)."""
        return int(min(math.floor(max(0.0, s.kv_pool) / s.kv_per_user) if s.kv_per_user else 0
                       for s in self.stages)) * self.layout.kv_replicas

    def fits(self, users: int) -> bool:
        """Every stage holds ``users`` sequences, the engine's start-up check passes, the headroom suffices."""
        per_pool = -(-users // self.layout.kv_replicas)
        return (all(s.kv_pool >= per_pool * s.kv_per_user and s.kv_pool > 0 and s.headroom_short <= 0
                    for s in self.stages)
                and self.capacity_tokens() >= self.min_capacity_tokens)

    def worst_stage(self, users: int) -> StageMemory:
        """The stage with the least slack (pool minus what the users need)."""
        per_pool = -(-users // self.layout.kv_replicas)
        return min(self.stages, key=lambda s: (s.kv_pool - per_pool * s.kv_per_user, -s.weights))


def sglang_memory_fraction(tp: int, a: Mapping[str, Any]) -> float:
    """SGLang's default mem_fraction_static by TP size (server_args.py)."""
    if tp >= 16:
        return a["sglang_mem_fraction_static_tp16"]
    if tp >= 8:
        return a["sglang_mem_fraction_static_tp8"]
    if tp >= 4:
        return a["sglang_mem_fraction_static_tp4"]
    if tp >= 2:
        return a["sglang_mem_fraction_static_tp2"]
    return a["sglang_mem_fraction_static_tp1"]


@dataclass(frozen=True)
class EngineMemory:
    """What an engine sets aside on one GPU besides the weights, and the KV pool it allocates (bytes)."""

    activations: float
    overhead: float
    kv_pool: float
    headroom_short: float
    usable: float


def _non_torch_bytes(a: Mapping[str, Any], multi_gpu: bool) -> float:
    """Non-torch memory of a vLLM/SGLang worker: cuBLAS workspaces etc., plus NCCL and custom all-reduce
    buffers when the model spans GPUs."""
    return a["vllm_non_torch_bytes"] + (a["vllm_tp_comm_bytes"] if multi_gpu else 0)


def vllm_profile_for_version(version: str | None) -> str | None:
    """The ``vllm_memory_profile`` generation of a vLLM version string (None: not recognised, keep the default).

    V0 engine releases up to 0.7 -> ``v0``; 0.8-0.10 and 'v1 (mid-2025)' -> ``v1-mid-2025``; 0.11 and later
    -> ``v0.19`` (the profile run with a separate dummy sampler)."""
    import re

    text = str(version or "").strip().lower()
    if "mid-2025" in text:
        return "v1-mid-2025"
    m = re.match(r"v?0\.(\d+)", text)
    if not m:
        return None
    minor = int(m.group(1))
    return "v0" if minor <= 7 else "v1-mid-2025" if minor <= 10 else "v0.19"


def vllm_activation_peak_bytes(forward: float, sampler: float, profile: str) -> float:
    """Torch activation peak of vLLM's profile run (bytes), by engine generation.

    v0.19 (``vllm/v1/worker/gpu/model_runner.py profile_run``): ``_dummy_run(max_num_tokens)`` then
    ``_dummy_sampler_run`` one after the other, so the peak is max(forward, sampler). Mid-2025 V1 and V0
    (``vllm/worker/worker.py determine_num_available_blocks``) ran the sampler inside the forward's lifetime:
    forward + sampler. github.com/vllm-project/vllm.
    """
    return max(forward, sampler) if profile == "v0.19" else forward + sampler


def vllm_sampler_bytes_per_logit(profile: str, a: Mapping[str, Any]) -> float:
    """Bytes the dummy sampler holds per (sequence × vocabulary) logit for a vLLM generation."""
    return {"v0.19": a["vllm_sampler_bytes_per_logit"], "v1-mid-2025": a["vllm_sampler_bytes_per_logit_v1_2025"],
            "v0": a["vllm_sampler_bytes_per_logit_v0"]}[profile]


def vllm_stage_memory(weights: float, act_per_token: float, last: bool, plan: Plan, runtime: float,
                      frac: float, multi_gpu: bool) -> EngineMemory:
    """vLLM V1 ``determine_available_memory``:

    pool = frac · runtime − (weights + activation peak + non-torch), where the activation peak is the
    profile run at ``max_num_batched_tokens`` and the dummy sampler (max_num_seqs × vocab × bytes per
    logit, last pipeline stage only), combined as ``vllm_activation_peak_bytes`` says for the engine
    generation (assumption ``vllm_memory_profile``). The CUDA context and CUDA graphs live in (1 − frac) · runtime.
    """
    a, spec = plan.a, plan.spec
    profile = a["vllm_memory_profile"]
    forward = plan.chunk_tokens * act_per_token * a["activation_bytes_per_elem"]
    sampler = plan.sampler_seqs * spec.vocab_size * vllm_sampler_bytes_per_logit(profile, a) if last else 0.0
    act = vllm_activation_peak_bytes(forward, sampler, profile)
    non_torch = _non_torch_bytes(a, multi_gpu)
    graphs = a["vllm_cuda_graph_bytes"] if plan.cuda_graphs else 0
    outside = a["cuda_context_bytes"] + graphs
    return EngineMemory(activations=act, overhead=outside + non_torch,
                        kv_pool=frac * runtime - (weights + act + non_torch),
                        headroom_short=outside - (1 - frac) * runtime, usable=frac * runtime)


def trtllm_stage_memory(weights: float, act_per_token: float, last: bool, plan: Plan, runtime: float,
                        frac: float, multi_gpu: bool) -> EngineMemory:
    """TensorRT-LLM (PyTorch backend) ``KvCacheCreator._cal_max_tokens``: the KV pool is a fraction of the
    memory left *after* the profiling peak (weights + activations + non-torch + CUDA context):
    pool = kv_cache_free_gpu_mem_fraction · (runtime − peak). github.com/NVIDIA/TensorRT-LLM,
    ``tensorrt_llm/_torch/pyexecutor/_util.py``. CUDA graphs come out of the remaining (1 − fraction)."""
    a = plan.a
    # the profiling requests are context (prefill) requests of max_num_tokens in all; their logits are one
    # row per request, negligible next to the forward workspace
    act = plan.chunk_tokens * act_per_token * a["activation_bytes_per_elem"]
    non_torch = _non_torch_bytes(a, multi_gpu)
    graphs = a["vllm_cuda_graph_bytes"] if plan.cuda_graphs else 0
    peak = weights + act + non_torch + a["cuda_context_bytes"]
    free = runtime - peak
    return EngineMemory(activations=act, overhead=a["cuda_context_bytes"] + non_torch + graphs,
                        kv_pool=frac * free, headroom_short=graphs - (1 - frac) * max(free, 0.0),
                        usable=runtime)


def sglang_stage_memory(weights: float, act_per_token: float, last: bool, plan: Plan, runtime: float,
                        frac: float, multi_gpu: bool) -> EngineMemory:
    """SGLang ``profile_max_num_token``: pool = free_after_weights − free_at_start · (1 − mfs)
    = mfs · free_at_start − weights, with free_at_start = runtime − CUDA context − non-torch memory. The
    chunked-prefill workspace and CUDA graphs must fit in (1 − mfs) · free_at_start."""
    a = plan.a
    act = plan.chunk_tokens * act_per_token * a["activation_bytes_per_elem"]
    non_torch = _non_torch_bytes(a, multi_gpu)
    graphs = a["vllm_cuda_graph_bytes"] if plan.cuda_graphs else 0
    free0 = runtime - a["cuda_context_bytes"] - non_torch
    return EngineMemory(activations=act, overhead=a["cuda_context_bytes"] + non_torch + graphs,
                        kv_pool=frac * free0 - weights, headroom_short=(act + graphs) - (1 - frac) * free0,
                        usable=frac * free0)


def transformers_stage_memory(weights: float, act_per_token: float, last: bool, plan: Plan, runtime: float,
                              frac: float, multi_gpu: bool) -> EngineMemory:
    """transformers ``generate``: nothing pre-allocated; room for KV = frac · runtime − (weights + prefill of
    users × prompt tokens at once + fp32 last-token logits + CUDA context)."""
    a, spec = plan.a, plan.spec
    act = plan.chunk_tokens * act_per_token * a["activation_bytes_per_elem"]
    if last:
        act += plan.users * spec.vocab_size * 4 * a["transformers_logit_copies"]
    overhead = a["cuda_context_bytes"]
    return EngineMemory(activations=act, overhead=overhead, kv_pool=frac * runtime - (weights + act + overhead),
                        headroom_short=0.0, usable=frac * runtime)


def llamacpp_stage_memory(weights: float, act_per_token: float, last: bool, plan: Plan, runtime: float,
                          frac: float, multi_gpu: bool) -> EngineMemory:
    """llama.cpp: room for KV = frac · runtime − (weights + compute buffer + CUDA context); the compute
    buffer holds one ubatch (512 tokens) of F32 activations and, on the last GPU, its logits."""
    a, spec = plan.a, plan.spec
    ub, elem = a["llamacpp_ubatch_tokens"], a["llamacpp_compute_bytes_per_elem"]
    act = ub * act_per_token * elem + (ub * spec.vocab_size * elem if last else 0)
    overhead = a["cuda_context_bytes"]
    return EngineMemory(activations=act, overhead=overhead, kv_pool=frac * runtime - (weights + act + overhead),
                        headroom_short=0.0, usable=frac * runtime)


ENGINE_MEMORY = {"vllm": vllm_stage_memory, "sglang": sglang_stage_memory, "tensorrt-llm": trtllm_stage_memory,
                 "transformers": transformers_stage_memory, "llama.cpp": llamacpp_stage_memory}


def kv_per_user_bytes(plan: Plan, kv_layer_bytes: float, n_full: int, n_slide: int) -> float:
    """KV bytes one user holds on one GPU: per-layer bytes × (full layers × block-rounded context + sliding
    layers × window). llama.cpp allocates one cache of n_ctx = users × context padded to 256, shared out."""
    spec = plan.spec
    if plan.engine == "llama.cpp":
        # one cache of n_ctx = users × context cells padded up to the pad size; sliding-window layers
        # hold users × window cells, padded the same way and never more than the full cache
        # (llama.cpp src/llama-kv-cache.cpp, the unified and the iSWA caches)
        pad = plan.a["llamacpp_ctx_pad_tokens"]
        users = plan.users
        cells = -(-users * plan.context_tokens // pad) * pad
        slide = users * min(plan.context_tokens, spec.sliding_window or plan.context_tokens)
        cells_slide = min(cells, -(-slide // pad) * pad)
        return kv_layer_bytes * (n_full * cells + n_slide * cells_slide) / users
    held = kv_tokens_held(plan.context_tokens, plan.block_size)
    held_slide = kv_tokens_held(plan.context_tokens, plan.block_size, spec.sliding_window)
    return kv_layer_bytes * (n_full * held + n_slide * held_slide)


def evaluate_layout(plan: Plan, layout: Layout) -> LayoutMemory:
    """Memory of every pipeline stage of ``layout`` under the plan's engine (no validity checks)."""
    spec, a = plan.spec, plan.a
    tp, pp = layout.tensor_parallel, layout.pipeline_parallel
    table = weight_table(spec, plan.precision)
    runtime = plan.runtime_memory_bytes
    frac = plan.memory_fraction
    if frac is None:  # SGLang's default depends on the TP size
        frac = sglang_memory_fraction(tp, a)
    adp = layout.attention_dp
    kv_layer = kv_elems_per_token_per_layer_per_gpu(spec, 1 if adp else tp, plan.mla_mode) * plan.kv_bytes
    act_per_token = activation_elems_per_token(spec, 1 if adp else tp)
    engine_memory = ENGINE_MEMORY[plan.engine]
    stages = []
    bounds = pipeline_stages(spec.num_layers, pp)
    for i, (start, stop) in enumerate(bounds):
        first, last = i == 0, i == len(bounds) - 1
        w = (stage_weight_bytes_attention_dp(table, spec, layout.tensor_parallel, start, stop, first, last) if adp
             else stage_weight_bytes(table, spec, tp, start, stop, first, last, plan.embeddings_on_gpu))
        if last and plan.draft_weight_bytes:
            # the draft (MTP) module runs after the last layer; it is mostly routed experts, split over the
            # TP / expert-parallel group like the model's own
            w += plan.draft_weight_bytes / tp
        n_full, n_slide = stage_layer_counts(spec, start, stop, a["sliding_window_kv_bounded"])
        e = engine_memory(w, act_per_token, last, plan, runtime, frac, tp * pp > 1)
        stages.append(StageMemory(start, stop, w, (stop - start) * kv_layer,
                                  kv_per_user_bytes(plan, kv_layer, n_full, n_slide), e.activations, e.overhead,
                                  e.kv_pool, e.headroom_short))
        usable = e.usable
    paged = plan.engine in ("vllm", "sglang")  # TensorRT-LLM caps max_seq_len at the pool instead of refusing
    return LayoutMemory(layout=layout, stages=tuple(stages), fraction=frac, usable=usable, block=plan.block_size,
                        min_capacity_tokens=plan.max_model_len if paged else 0)


"""Roofline speed estimates for serving: decode tokens/s per user and time to first token.

A step takes the longer of its memory time (bytes read ÷ achievable bandwidth) and its compute time
(FLOP ÷ achievable peak), plus tensor-parallel all-reduces, pipeline hand-offs and a fixed per-step
overhead (LLM-Viewer's roofline: Yuan et al. 2024, arXiv:2402.16363, github.com/hahnyuan/LLM-Viewer,
with the efficiency factors it lacks). Every factor is a named assumption in ``assumptions/serving.py``.
These are estimates.

Decode: every user gets one token per step, so tokens/s per user = 1 / step time. Bytes per step =
the weights on the GPU (for MoE only the experts the batch touches: E·(1 − (1 − k/E)^B) of E) plus
each user's KV cache at the mean context of the answer. Prefill: the prompt's FLOP (2 per active
weight per token plus causal attention) against reading the weights once per prefill chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from llmsizing.architecture import attention_flop_per_token_per_layer, stage_layer_counts
from llmsizing.comm import ring_allreduce_s
from llmsizing.serving.engines import LayoutMemory
from llmsizing.serving.plan import Plan
from llmsizing.serving.sharding import kv_elems_per_token_per_layer_per_gpu, stage_weight_split, weight_table
from llmsizing.specs import GpuSpec, ModelSpec, Precision

# The assumptions the roofline reads (recorded as used only when a speed is estimated).
ROOFLINE_ASSUMPTIONS = (
    "decode_bandwidth_efficiency", "moe_bandwidth_efficiency", "flop_efficiency", "moe_flop_efficiency",
    "decode_step_overhead_s", "decode_layer_latency_s",
    "allreduce_latency_nvlink_s",
    "allreduce_latency_pcie_s", "internode_hop_latency_s", "internode_bytes_per_s",
    "moe_bandwidth_efficiency_vllm", "moe_bandwidth_efficiency_trtllm", "moe_bandwidth_efficiency_rocm",
    "moe_prefill_flop_efficiency_bf16",
)


def moe_flop_efficiency(compute: str, a: Mapping[str, Any]) -> float:
    """Fraction of the dense peak MoE grouped-expert GEMMs reach: ``moe_flop_efficiency`` for FP8 (block-scaled
    GEMMs, DeepSeek's H800 production figures), ``moe_prefill_flop_efficiency_bf16`` for 16-bit."""
    return a["moe_flop_efficiency"] if compute == "fp8" else a["moe_prefill_flop_efficiency_bf16"]


def moe_bandwidth_efficiency(engine: str, vendor: str, a: Mapping[str, Any]) -> float:
    """Fraction of peak bandwidth an engine's fused-MoE decode reaches on a GPU vendor.

    SGLang: ``moe_bandwidth_efficiency`` (SGLang 0.5.7 on H200); vLLM and TensorRT-LLM their own values;
    AMD GPUs (ROCm fused-MoE kernels, any engine): ``moe_bandwidth_efficiency_rocm``.
    """
    if vendor.lower() == "amd":
        return a["moe_bandwidth_efficiency_rocm"]
    return {"vllm": a["moe_bandwidth_efficiency_vllm"],
            "tensorrt-llm": a["moe_bandwidth_efficiency_trtllm"]}.get(engine, a["moe_bandwidth_efficiency"])


@dataclass(frozen=True)
class SpeedEstimate:
    """Roofline results (seconds, tokens/s); ``bound`` says which limit set the decode step."""

    decode_step_s: float
    decode_tokens_per_s_per_user: float
    decode_tokens_per_s_total: float
    ttft_s: float
    bound: str

    def to_dict(self) -> dict[str, Any]:
        return {"decode_step_s": self.decode_step_s, "decode_tokens_per_s_per_user": self.decode_tokens_per_s_per_user,
                "decode_tokens_per_s_total": self.decode_tokens_per_s_total, "ttft_s": self.ttft_s,
                "bound": self.bound}


# Activations travel between tensor-parallel ranks in 16-bit (bf16/fp16) in vLLM and SGLang,
# whatever the weight format: the all-reduce message per token is hidden_size × 2 bytes.
ACTIVATION_BYTES = 2.0


def decode_context_tokens(prompt_tokens: int, context_tokens: int) -> int:
    """Mean KV length over the answer: prompt + (context − prompt) / 2 (the answer grows linearly)."""
    return prompt_tokens + (context_tokens - prompt_tokens) // 2


def expert_hit_fraction(num_experts: int, top_k: int, tokens: float) -> float:
    """Expected fraction of routed experts a batch of ``tokens`` touches in one layer: 1 − (1 − k/E)^B.

    Uniform independent routing: each of B tokens picks k of E experts, so an expert is missed by all of
    them with probability (1 − k/E)^B; the weight bytes a decode step reads scale with the union hit.
    """
    if num_experts <= 0:
        return 1.0
    return 1.0 - (1.0 - top_k / num_experts) ** tokens


def stage_attention_flop_per_token(spec: ModelSpec, start: int, stop: int, context_tokens: float, mla_mode: str,
                                   decode: bool, window_aware: bool) -> float:
    """Attention FLOP per token over the layers [start, stop), sliding layers capped at the window.

    = per-layer FLOP at one key × (full layers · ctx + sliding layers · min(ctx, window)).
    """
    per = attention_flop_per_token_per_layer(spec, 1.0, mla_mode, decode)
    full, sliding = stage_layer_counts(spec, start, stop, window_aware)
    return per * (full * context_tokens + sliding * min(context_tokens, spec.sliding_window))


def roofline_s(bytes_moved: float, flop: float, bandwidth: float, peak_flop: float) -> tuple[float, str]:
    """max(bytes / bandwidth, FLOP / peak) and which one bound it."""
    t_mem = bytes_moved / bandwidth
    t_flop = flop / peak_flop
    return (t_mem, "memory") if t_mem >= t_flop else (t_flop, "compute")


def _links(plan: Plan, tp: int, gpus_per_node: int, a: Mapping[str, Any]) -> tuple[float, float]:
    """(bytes/s, latency) of the tensor-parallel links: NVLink/PCIe in a node, the network across nodes."""
    if tp > gpus_per_node:
        return a["internode_bytes_per_s"], 2 * (tp - 1) * a["internode_hop_latency_s"]
    lat = a["allreduce_latency_nvlink_s"] if plan.gpu.nvlink else a["allreduce_latency_pcie_s"]
    return plan.gpu.intra_node_bytes_per_s, lat


def estimate_speed(plan: Plan, mem: LayoutMemory, a: Mapping[str, Any]) -> SpeedEstimate:
    """Decode tokens/s per user at ``plan.users`` concurrent users and TTFT of one prompt, for a layout."""
    spec, gpu, lay = plan.spec, plan.gpu, mem.layout
    tp = lay.tensor_parallel
    table = weight_table(spec, plan.precision)
    bw = gpu.mem_bw_bytes_per_s * a["decode_bandwidth_efficiency"]
    bw_moe = gpu.mem_bw_bytes_per_s * moe_bandwidth_efficiency(plan.engine, gpu.vendor, a)
    peak = gpu.tensor_flop_per_s(plan.compute) * (moe_flop_efficiency(plan.compute, a) if spec.is_moe
                                                   else a["flop_efficiency"])
    link_bw, link_lat = _links(plan, tp, lay.gpus_per_node, a)
    act_bytes = ACTIVATION_BYTES
    users = plan.users
    ctx = decode_context_tokens(plan.prompt_tokens, plan.context_tokens)
    kv_layer = kv_elems_per_token_per_layer_per_gpu(spec, tp, plan.mla_mode) * plan.kv_bytes
    window_aware = plan.a["sliding_window_kv_bounded"]
    hit_decode = expert_hit_fraction(spec.num_experts, spec.experts_per_token, users)
    hit_prefill = expert_hit_fraction(spec.num_experts, spec.experts_per_token, plan.prompt_tokens)
    chunks = math.ceil(plan.prompt_tokens / max(1, plan.chunk_tokens))

    step = prefill = 0.0
    bounds = []
    n = len(mem.stages)
    for i, s in enumerate(mem.stages):
        first, last = i == 0, i == n - 1
        dense, experts, _ = stage_weight_split(table, tp, s.start, s.stop, s.weights,
                                               first and plan.embeddings_on_gpu)
        matmul = table.stage_sum("matmul_active", s.start, s.stop) / tp
        layers = s.stop - s.start
        # decode step
        n_full, n_slide = stage_layer_counts(spec, s.start, s.stop, window_aware)
        kv_read = users * kv_layer * (n_full * ctx + n_slide * min(ctx, spec.sliding_window or ctx))
        flop = users * (2.0 * (matmul + (table.lm_head_matmul / tp if last else 0.0))
                        + stage_attention_flop_per_token(spec, s.start, s.stop, ctx, plan.mla_mode, True,
                                                         window_aware) / tp)
        t, bound = roofline_s(dense + experts * hit_decode * bw / bw_moe + kv_read, flop, bw, peak)
        bounds.append(bound)
        step += (t + layers * a["decode_layer_latency_s"]
                 + 2 * layers * ring_allreduce_s(users * spec.hidden_size * act_bytes, tp, link_bw, link_lat))
        # prefill of one prompt
        p = plan.prompt_tokens
        flop_p = (p * 2.0 * matmul + (2.0 * table.lm_head_matmul / tp if last else 0.0)
                  + p * stage_attention_flop_per_token(spec, s.start, s.stop, p / 2.0, plan.mla_mode, False,
                                                       window_aware) / tp)
        t_p, _ = roofline_s(chunks * (dense + experts * hit_prefill * bw / bw_moe), flop_p, bw, peak)
        prefill += t_p + chunks * layers * a["decode_layer_latency_s"] + 2 * layers * (chunks * link_lat * (tp > 1)
                                       + ring_allreduce_s(p * spec.hidden_size * act_bytes, tp, link_bw, 0.0))
    if n > 1:
        cross = a["internode_hop_latency_s"] if lay.gpus > lay.gpus_per_node else a["allreduce_latency_nvlink_s"]
        step += (n - 1) * cross
        prefill += (n - 1) * cross * chunks
    step += a["decode_step_overhead_s"]
    prefill += a["decode_step_overhead_s"]
    bound = "memory" if bounds.count("memory") >= bounds.count("compute") else "compute"
    per_user = 1.0 / step
    return SpeedEstimate(decode_step_s=step, decode_tokens_per_s_per_user=per_user,
                         decode_tokens_per_s_total=per_user * users, ttft_s=prefill, bound=bound)


def dp_ep_decode_tokens_per_s_per_node(spec: ModelSpec, gpu: GpuSpec, precision: Precision, users_per_gpu: int,
                                       context_tokens: int, expert_parallel: int, a: Mapping[str, Any], kv_bytes: float = 2.0,
                                       gpus_per_node: int = 8, moe_bw_efficiency: float | None = None,
                                       a2a_bytes_per_s: float | None = None) -> dict[str, float]:
    """Decode throughput of a large-batch expert-parallel deployment with data-parallel attention.

    DeepSeek's production layout (B-deepseek-prod-h800-node-throughput): every GPU holds the full
    attention, dense and shared-expert weights and the KV cache of its own users; routed experts are
    spread over ``expert_parallel`` GPUs (``moe_bw_efficiency``: the engine's MoE bandwidth efficiency, default
    ``moe_bandwidth_efficiency``; ``a2a_bytes_per_s``: the dispatch/combine link, default the inter-node NIC).
    Per GPU and step: bytes = non-expert weights + local experts
    (all touched at large batch) + own KV; FLOP = own tokens × (2 × active weights + MLA attention);
    expert dispatch/combine (fp8 out, bf16 back) over the network overlaps the computation
    (two-micro-batch overlap), so step = max(roofline, all-to-all) + per-layer and per-step latency.
    """
    table = weight_table(spec, precision)
    L = spec.num_layers
    non_expert, experts, _ = stage_weight_split(table, 1, 0, L, table.total, True)
    touched = expert_hit_fraction(spec.num_experts, spec.experts_per_token, users_per_gpu * expert_parallel)
    kv = users_per_gpu * context_tokens * L * kv_elems_per_token_per_layer_per_gpu(spec, 1, "latent") * kv_bytes
    moe_eff = a["moe_bandwidth_efficiency"] if moe_bw_efficiency is None else moe_bw_efficiency
    bytes_moved = non_expert + experts / expert_parallel * touched * a["decode_bandwidth_efficiency"] \
        / moe_eff + kv
    flop = users_per_gpu * (2.0 * (table.stage_sum("matmul_active", 0, L) + table.lm_head_matmul)
                            + L * attention_flop_per_token_per_layer(spec, context_tokens, "latent", True))
    compute = precision.compute if gpu.peak_flop_per_s(precision.compute) else "bf16"
    eff = moe_flop_efficiency(compute, a) if spec.is_moe else a["flop_efficiency"]
    t, bound = roofline_s(bytes_moved, flop, gpu.mem_bw_bytes_per_s * a["decode_bandwidth_efficiency"],
                          gpu.tensor_flop_per_s(compute) * eff)
    a2a = len(spec.moe_layers) * users_per_gpu * spec.experts_per_token * spec.hidden_size * 3.0 \
        / (a["internode_bytes_per_s"] if a2a_bytes_per_s is None else a2a_bytes_per_s)
    step = max(t, a2a) + L * a["decode_layer_latency_s"] + a["decode_step_overhead_s"]
    return {"decode_step_s": step, "tokens_per_s_per_gpu": users_per_gpu / step,
            "tokens_per_s_per_node": gpus_per_node * users_per_gpu / step, "bound": bound if t >= a2a else "network",
            "bytes_per_step": bytes_moved, "flop_per_step": flop}

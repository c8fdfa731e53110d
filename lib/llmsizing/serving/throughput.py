"""Steady-state serving throughput under continuous batching with chunked prefill.

The vLLM V1 scheduler has no separate prefill phase: every step first gives each running request its
decode token, then fills the rest of the token budget with prompt chunks of waiting requests
(github.com/vllm-project/vllm, ``vllm/v1/core/sched/scheduler.py Scheduler.schedule``: "There's no
'decoding phase' nor 'prefill phase' in the scheduler"); TensorRT-LLM's in-flight batching with
chunked context and SGLang's mixed chunks do the same. In a closed loop of B users each answer of
``out`` tokens brings ``in`` prompt tokens, so on average every step also carries B·in/out prompt tokens:

    t_step(B) = decode step at B users and the mean context (roofline.estimate_speed)
              + B·(in/out)·F_prompt / (prefill_flop_efficiency_batched · peak)
    TPOT = t_step;  TTFT = floor(engine) + t_prefill · (1 + ρ/(1 − ρ))   (M/M/1 wait for the prefill)
    output tokens/s = B·out / (floor + t_prefill + (out − 1)·TPOT)

with ρ = the prefill share of a step. ``--users max`` is B = min(KV capacity in users, the engine's
batch cap). p90: the number of prompts prefilled while one answer decodes is Poisson(B) (p90 ≈ B +
1.2816·√B), and the M/M/1 waiting time's 90th percentile is ln(10ρ)/(1 − ρ) service times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

from llmsizing.serving import roofline
from llmsizing.serving.engines import LayoutMemory
from llmsizing.serving.plan import Plan
from llmsizing.serving.sharding import weight_table

THROUGHPUT_ASSUMPTIONS = ("prefill_flop_efficiency_batched", "ttft_floor_s_vllm", "ttft_floor_s_sglang",
                          "ttft_floor_s_trtllm", "speculative_draft_tokens", "speculative_acceptance_mtp",
                          "speculative_acceptance_eagle")
Z90 = 1.2816  # standard normal 90th percentile


@dataclass(frozen=True)
class Workload:
    """Steady-state serving workload: concurrent users and tokens per request."""

    users: int
    prompt_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Throughput:
    """Steady-state speeds of one workload (seconds, tokens/s)."""

    users: int
    output_tokens_per_s: float
    total_tokens_per_s: float
    tpot_s_mean: float
    tpot_s_p90: float
    ttft_s_mean: float
    ttft_s_p90: float
    decode_step_s: float
    prefill_share: float

    def to_dict(self) -> dict[str, Any]:
        return {"users": self.users, "output_tokens_per_s": self.output_tokens_per_s,
                "total_tokens_per_s": self.total_tokens_per_s,
                "tpot_s": {"mean": self.tpot_s_mean, "p90": self.tpot_s_p90},
                "ttft_s": {"mean": self.ttft_s_mean, "p90": self.ttft_s_p90},
                "decode_step_s": self.decode_step_s, "prefill_share": self.prefill_share}


def ttft_floor_s(engine: str, a: Mapping[str, Any]) -> float:
    """Fixed time to first token an engine adds to the GPU time (API server, tokenizer, scheduler, the
    running step); 0 for transformers and llama.cpp (not modelled)."""
    return {"vllm": a["ttft_floor_s_vllm"], "sglang": a["ttft_floor_s_sglang"],
            "tensorrt-llm": a["ttft_floor_s_trtllm"]}.get(engine, 0.0)


def prompt_flop_per_token_per_gpu(plan: Plan, mem: LayoutMemory, prompt_tokens: float) -> float:
    """FLOP one prompt token costs on one GPU of a replica: (2 · active matmul weights + causal attention at
    half the prompt) / TP, summed over pipeline stages (a prompt passes through each)."""
    spec, tp = plan.spec, mem.layout.tensor_parallel
    table = weight_table(spec, plan.precision)
    flop = 0.0
    for s in mem.stages:
        flop += (2.0 * table.stage_sum("matmul_active", s.start, s.stop)
                 + roofline.stage_attention_flop_per_token(spec, s.start, s.stop, prompt_tokens / 2.0,
                                                           plan.mla_mode, False,
                                                           plan.a["sliding_window_kv_bounded"])) / tp
    return flop


def batched_prefill_flop_per_s(plan: Plan, a: Mapping[str, Any]) -> float:
    """Achievable FLOP/s of prompt chunks batched into decode steps: peak of the compute dtype ×
    ``prefill_flop_efficiency_batched`` (dense) or the MoE efficiency (``moe_flop_efficiency`` for FP8
    grouped GEMMs, ``moe_prefill_flop_efficiency_bf16`` for 16-bit)."""
    peak = plan.gpu.tensor_flop_per_s(plan.compute)
    if plan.spec.is_moe:
        eff = roofline.moe_flop_efficiency(plan.compute, a)
    else:
        eff = a["prefill_flop_efficiency_batched"]
    return peak * eff


def attention_dp_step_s(plan: Plan, mem: LayoutMemory, users: int, context_tokens: int,
                        a: Mapping[str, Any]) -> float:
    """Decode step with attention data parallel + expert parallel: each GPU decodes its own users
    (``roofline.dp_ep_decode_tokens_per_s_per_node`` at users / DP per GPU, the engine's MoE bandwidth
    efficiency, dispatch/combine over NVLink inside a node, the network across nodes)."""
    lay = mem.layout
    per_gpu = max(1, -(-users // lay.tensor_parallel))
    link = plan.gpu.intra_node_bytes_per_s if lay.expert_parallel <= lay.gpus_per_node else None
    r = roofline.dp_ep_decode_tokens_per_s_per_node(
        plan.spec, plan.gpu, plan.precision, per_gpu, context_tokens, lay.expert_parallel, a, plan.kv_bytes,
        lay.gpus_per_node, roofline.moe_bandwidth_efficiency(plan.engine, plan.gpu.vendor, a), link)
    return r["decode_step_s"]


def speculative_tokens_per_step(draft_tokens: int, acceptance: float) -> float:
    """Expected tokens a verify step emits with ``draft_tokens`` chained drafts, each accepted with probability
    ``acceptance`` given the previous one: 1 + α + α² + … + α^k (Leviathan et al. 2023, arXiv:2211.17192, eq. 1)."""
    return sum(acceptance ** i for i in range(draft_tokens + 1))


def steady_state(plan: Plan, mem: LayoutMemory, w: Workload, a: Mapping[str, Any],
                 speculative: str | None = None, prefill_carried: bool = True) -> Throughput:
    """Output tokens/s, TPOT and TTFT (mean and p90) of ``w`` on the layout ``mem`` (see module docstring).

    ``speculative`` (mtp | eagle): each step verifies B·(k + 1) tokens (k = ``speculative_draft_tokens``) and
    emits ``speculative_tokens_per_step`` per user; drafting costs k × one decoder layer's share of the step.
    ``prefill_carried`` False: a decode pool of a disaggregated deployment (prompts prefilled elsewhere).
    """
    B, I, O = w.users, w.prompt_tokens, max(1, w.output_tokens)
    p = replace(plan, users=B, prompt_tokens=I, context_tokens=I + O)
    speed = roofline.estimate_speed(p, mem, a)
    decode = speed.decode_step_s
    if mem.layout.attention_dp:
        decode = attention_dp_step_s(plan, mem, B, roofline.decode_context_tokens(I, I + O), a)
    emitted = 1.0
    if speculative in ("mtp", "eagle"):
        k = a["speculative_draft_tokens"]
        alpha = a["speculative_acceptance_mtp" if speculative == "mtp" else "speculative_acceptance_eagle"]
        verify = replace(p, users=B * (k + 1))
        t_verify = (attention_dp_step_s(plan, mem, B * (k + 1), roofline.decode_context_tokens(I, I + O), a)
                    if mem.layout.attention_dp else roofline.estimate_speed(verify, mem, a).decode_step_s)
        decode = max(decode, t_verify) * (1.0 + k / plan.spec.num_layers)
        emitted = speculative_tokens_per_step(k, alpha)
    f_tok = prompt_flop_per_token_per_gpu(plan, mem, I) / (mem.layout.tensor_parallel
                                                            if mem.layout.attention_dp else 1)
    rate = batched_prefill_flop_per_s(plan, a)
    per_gpu_users = -(-B // mem.layout.kv_replicas)
    prefill_part = per_gpu_users * (I / O) * emitted * f_tok / rate if prefill_carried else 0.0
    speed = replace(speed, decode_step_s=decode)
    step = (decode + prefill_part) / emitted
    rho = prefill_part / (decode + prefill_part)
    # one prompt alone: the roofline TTFT (single-prompt efficiency) is the service time
    service = speed.ttft_s
    floor = ttft_floor_s(plan.engine, a)
    wait_mean = rho / (1.0 - rho) * service if B > 1 else 0.0
    wait_p90 = max(0.0, math.log(10.0 * rho)) / (1.0 - rho) * service if B > 1 and rho > 0 else 0.0
    ttft_mean = floor + service + wait_mean
    ttft_p90 = floor + service + wait_p90
    lam = max(B - 1, 0)
    extra = (Z90 * math.sqrt(lam) / lam) if lam else 0.0
    tpot_p90 = (speed.decode_step_s + prefill_part * (1.0 + extra)) / emitted
    # the wait for the prefill is time the GPU spends on other users' work (already in ``step``): a user's
    # cycle is its own prefill plus its answer's steps
    cycle = floor + service + (O - 1) * step
    out_tps = B * O / cycle
    return Throughput(users=B, output_tokens_per_s=out_tps, total_tokens_per_s=out_tps * (I + O) / O,
                      tpot_s_mean=step, tpot_s_p90=tpot_p90, ttft_s_mean=ttft_mean, ttft_s_p90=ttft_p90,
                      decode_step_s=speed.decode_step_s, prefill_share=rho)


def max_batch_users(plan: Plan, mem: LayoutMemory, context_tokens: int) -> int:
    """Most concurrent sequences at ``context_tokens`` each: min(what the KV pools hold, the engine's
    batch cap per engine instance: vLLM max_num_seqs, TensorRT-LLM max_batch_size; SGLang and others
    uncapped)."""
    p = replace(plan, context_tokens=context_tokens, prompt_tokens=min(plan.prompt_tokens, context_tokens - 1) or 1)
    from_kv = min(mem.max_users(), mem.capacity_tokens() // max(1, context_tokens))
    users = evaluate_layout_users(p, mem, from_kv)
    if plan.sampler_seqs:
        users = min(users, plan.sampler_seqs * mem.layout.kv_replicas)
    return int(users)


def evaluate_layout_users(plan: Plan, mem: LayoutMemory, users: int) -> int:
    """``users`` lowered until ``mem`` holds them (the per-pool rounding of attention-DP layouts)."""
    while users > 0 and not mem.fits(users):
        users -= 1
    return users


def max_running_batch(plan: Plan, mem: LayoutMemory, prompt_tokens: int, output_tokens: int) -> int:
    """Sequences a saturated engine runs at once (offline or burst load): paged KV blocks are allocated as
    tokens arrive (vLLM ``KVCacheManager.allocate_slots``, TensorRT-LLM's paged KV cache), so a full pool
    holds requests at their mean length, prompt + output/2, not at their final length; capped by the
    engine's batch size per KV pool. ``max_batch_users`` is the guaranteed (full-length) count."""
    mean_len = prompt_tokens + max(1, output_tokens) / 2.0
    users = int(mem.capacity_tokens() // max(1.0, mean_len))
    if plan.sampler_seqs:
        users = min(users, plan.sampler_seqs * mem.layout.kv_replicas)
    return users

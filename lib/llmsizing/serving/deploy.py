"""Deployment shapes beyond tensor/pipeline parallel: attention data parallel with expert parallel, and
prefill/decode disaggregation (separate prefill and decode pools, each sized).

* Attention DP + EP (SGLang ``--enable-dp-attention --ep-size``, TensorRT-LLM ``enable_attention_dp``,
  vLLM ``--data-parallel-size --enable-expert-parallel``): every GPU of the group runs the attention for
  its own requests and holds their KV cache (the MLA latent is no longer replicated), the routed experts
  are split over the EP GPUs (lmsys.org/blog/2025-05-05-large-scale-ep; DeepSeek-V3 report §3.4).
* Disaggregation (SGLang ``--disaggregation-mode prefill|decode``, NVIDIA Dynamo, DistServe arXiv:2401.09670):
  P GPUs prefill, D GPUs decode; the KV cache of each prompt crosses the network once. The sustainable
  request rate is min(prefill pool tokens/s ÷ prompt, decode pool tokens/s ÷ answer).
"""

from __future__ import annotations

from typing import Any, Mapping

from llmsizing import architecture as A
from llmsizing.errors import ScenarioError
from llmsizing.serving import throughput as T
from llmsizing.serving.engines import LayoutMemory, evaluate_layout
from llmsizing.serving.plan import Plan, layout_for_gpus
from llmsizing.serving.sharding import Layout

ATTENTION_DP_ENGINES = ("vllm", "sglang", "tensorrt-llm")


def attention_dp_layout(plan: Plan, gpus: int | None, ep: int | None) -> Layout:
    """The attention-DP × EP layout on ``gpus`` GPUs (default: one node), checked."""
    spec = plan.spec
    node = plan.gpu.node_gpus_max or plan.a["node_gpus_default"]
    if plan.engine not in ATTENTION_DP_ENGINES:
        raise ScenarioError(f"--attention-dp needs one of: {', '.join(ATTENTION_DP_ENGINES)} (got {plan.engine})")
    if not spec.is_moe:
        raise ScenarioError(f"--attention-dp with --ep is for mixture-of-experts models; {spec.slug} is dense "
                            "(use tensor parallelism or more replicas)")
    n = gpus or node
    e = ep or n
    if e > n or n % e or spec.num_experts % e:
        raise ScenarioError(f"--ep {e}: expert parallel must divide --gpus {n} and the {spec.num_experts} experts")
    return Layout(n, 1, e, node, attention_dp=True)


def parse_disaggregate(text: str) -> tuple[int, int]:
    """'P:D' -> (prefill GPUs, decode GPUs), both positive integers."""
    try:
        p, d = (int(x) for x in str(text).split(":"))
    except ValueError:
        raise ScenarioError(f"--disaggregate {text!r} is not P:D (prefill GPUs : decode GPUs), e.g. 8:16") from None
    if p <= 0 or d <= 0:
        raise ScenarioError(f"--disaggregate {text!r}: both pools need at least one GPU")
    return p, d


def prefill_pool(plan: Plan, gpus: int) -> tuple[LayoutMemory, int]:
    """The prefill pool's replica layout (TP up to one node, as layout_for_gpus picks) and replica count."""
    node = plan.gpu.node_gpus_max or plan.a["node_gpus_default"]
    lay = layout_for_gpus(plan, min(gpus, node))
    return evaluate_layout(plan, lay), max(1, gpus // lay.gpus)


def disaggregated(plan: Plan, decode_mem: LayoutMemory, prefill_gpus: int, w: T.Workload,
                  a: Mapping[str, Any], speculative: str | None = None) -> tuple[T.Throughput, dict[str, Any]]:
    """Steady state of a disaggregated deployment: the decode pool decodes only, the prefill pool's
    chunked prefill sets how many requests per second arrive (see module docstring)."""
    pre_mem, replicas = prefill_pool(plan, prefill_gpus)
    f_tok = T.prompt_flop_per_token_per_gpu(plan, pre_mem, w.prompt_tokens)
    prefill_tps = replicas * T.batched_prefill_flop_per_s(plan, a) / f_tok
    dec = T.steady_state(plan, decode_mem, w, a, speculative, prefill_carried=False)
    decode_req_rate = dec.output_tokens_per_s / max(1, w.output_tokens)
    prefill_req_rate = prefill_tps / w.prompt_tokens
    rate = min(decode_req_rate, prefill_req_rate)
    kv_bytes = A.kv_cache_bytes_per_token(plan.spec, plan.kv_bytes, plan.mla_mode) * w.prompt_tokens
    transfer = kv_bytes / a["internode_bytes_per_s"]
    out = rate * w.output_tokens
    r = T.Throughput(users=dec.users, output_tokens_per_s=out,
                     total_tokens_per_s=out * (w.prompt_tokens + w.output_tokens) / max(1, w.output_tokens),
                     tpot_s_mean=dec.tpot_s_mean, tpot_s_p90=dec.tpot_s_p90,
                     ttft_s_mean=dec.ttft_s_mean + transfer, ttft_s_p90=dec.ttft_s_p90 + transfer,
                     decode_step_s=dec.decode_step_s, prefill_share=0.0)
    info = {"prefill_gpus": prefill_gpus, "decode_gpus": decode_mem.layout.gpus,
            "prefill_replicas": replicas, "prefill_tensor_parallel": pre_mem.layout.tensor_parallel,
            "prefill_input_tokens_per_s": prefill_tps, "decode_output_tokens_per_s": dec.output_tokens_per_s,
            "requests_per_s": rate, "kv_transfer_s": transfer,
            "bottleneck": "prefill pool" if prefill_req_rate < decode_req_rate else "decode pool"}
    return r, info

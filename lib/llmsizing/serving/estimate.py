"""Serving sizing: memory per GPU, GPU count and layout, KV capacity and speed for N concurrent users.

The estimator follows what the serving engines actually do at start-up (``shared/reference/anchors.md``
§1.11):

* **vLLM** profiles one forward pass at ``max_num_batched_tokens`` plus a dummy sampler run, then sets
  ``KV pool = total × gpu_memory_utilization − (weights + activation peak + non-torch memory)``
  (``vllm/v1/worker/gpu_worker.py determine_available_memory``) and cuts the pool into paged blocks.
  The CUDA context and the CUDA-graph pool live in the remaining ``1 − utilization``.
* **SGLang** sets ``KV pool = free_after_weights − free_at_start × (1 − mem_fraction_static)``
  (``model_runner.profile_max_num_token``), i.e. ``mem_fraction_static × free_at_start − weights``.
* **transformers** allocates nothing up front: weights + exact KV + prefill activations must fit.
* **llama.cpp** allocates a KV cache for ``n_ctx`` (users × context, padded) plus a compute buffer.

Weights per GPU come from the module list (``architecture.model_modules``) sharded the way vLLM shards
them: column/row-parallel linears ÷ TP, vocabulary-parallel embedding and lm_head ÷ TP, K/V projections
split by KV head (replicated when TP > KV heads), norms, routers and the MLA down-projections
(``q_a_proj``, ``kv_a_proj_with_mqa``) replicated; pipeline stages split the layers as vLLM's
``get_pp_indices`` does. The MLA latent KV cache is replicated on every TP rank.

"Does not fit" is a result (``fits`` false with a ``reason`` and what it ``needs``), never an exception;
bad input raises ``ScenarioError``/``CatalogError`` with one line. Speeds come from ``roofline.py`` and
are estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.errors import ScenarioError
from llmsizing.specs import GpuSpec, ModelSpec, Precision
from llmsizing.units import GiB
from llmsizing.weights import module_weight_bytes

ENGINES = ("vllm", "sglang", "transformers", "llama.cpp")
MLA_MODES = A.MLA_MODES

# KV-cache element formats: bytes per cached element (llama.cpp q8_0/q4_0 include their fp16 block scale:
# ggml-common.h block_q8_0 34 B / 32, block_q4_0 18 B / 32).
KV_PRECISION_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
KV_PRECISION_ALIASES = {"auto": None, "bfloat16": "bf16", "float16": "fp16", "f16": "fp16", "half": "fp16",
                        "fp8_e4m3": "fp8", "fp8-e4m3": "fp8", "e4m3": "fp8", "int8": "fp8"}
ENGINE_KV_PRECISIONS = {
    "vllm": ("bf16", "fp16", "fp8"),
    "sglang": ("bf16", "fp16", "fp8"),
    "transformers": ("bf16", "fp16"),
    "llama.cpp": ("fp16", "bf16", "q8_0", "q4_0"),
}
# Precision names a user may type for weights; catalog slugs are accepted too.
GENERIC_PRECISIONS = ("bf16", "fp16", "fp8", "int8", "int4")
LLAMACPP_GENERIC = {"bf16": "bf16", "fp16": "fp16", "int8": "q8_0", "int4": "q4_k_m"}

# Engines that keep the DeepSeek MLA latent (kv_lora_rank + rope) in the cache by default; transformers'
# DeepseekV3Attention caches the decompressed per-head K and V.
ENGINE_DEFAULT_MLA = {"vllm": "latent", "sglang": "latent", "transformers": "decompressed", "llama.cpp": "latent"}


# ----------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class Layout:
    """How the model is spread over GPUs: tensor × pipeline parallel, experts split over ``expert_parallel``."""

    tensor_parallel: int
    pipeline_parallel: int = 1
    expert_parallel: int = 1
    gpus_per_node: int = 8

    @property
    def gpus(self) -> int:
        """GPUs in the layout = TP × PP."""
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def nodes(self) -> int:
        """Nodes needed = ceil(GPUs / GPUs per node)."""
        return -(-self.gpus // self.gpus_per_node)

    def to_dict(self) -> dict[str, int]:
        return {"gpus": self.gpus, "nodes": self.nodes, "gpus_per_node": min(self.gpus, self.gpus_per_node),
                "tensor_parallel": self.tensor_parallel, "pipeline_parallel": self.pipeline_parallel,
                "expert_parallel": self.expert_parallel}


@dataclass(frozen=True)
class MemoryPerGpu:
    """Memory of the most loaded GPU, in bytes."""

    weights: float
    kv_cache: float
    activations: float
    overhead: float

    @property
    def total(self) -> float:
        """weights + kv_cache + activations + overhead."""
        return self.weights + self.kv_cache + self.activations + self.overhead

    def to_dict(self) -> dict[str, int]:
        return {"weights": round(self.weights), "kv_cache": round(self.kv_cache),
                "activations": round(self.activations), "overhead": round(self.overhead), "total": round(self.total)}


@dataclass(frozen=True)
class ServingEstimate:
    """Everything ``llmsizing serve`` reports for one scenario. Sizes in bytes, times in seconds."""

    model: str
    gpu: str
    engine: str
    precision: str
    kv_precision: str
    mla_cache: str | None
    users: int
    context_tokens: int
    prompt_tokens: int
    max_model_len: int
    params_total: int
    params_active: int
    weights_bytes_total: float
    kv_cache_bytes_per_token: float
    kv_cache_bytes_per_token_per_gpu: float
    kv_cache_bytes_per_user: float
    layout: Layout
    memory_per_gpu: MemoryPerGpu
    gpu_memory_bytes: int
    usable_memory_bytes: float
    memory_fraction: float
    fits: bool
    reason: str
    needs: Layout | None
    kv_cache_capacity_tokens: int
    max_concurrent_users: int
    block_size: int
    max_num_batched_tokens: int
    decode_tokens_per_s_per_user: float | None
    decode_tokens_per_s_total: float | None
    ttft_s: float | None
    decode_context_tokens: int
    notes: tuple[str, ...] = ()
    assumptions: tuple[dict, ...] = field(default=(), compare=False)

    @property
    def gpus(self) -> int:
        return self.layout.gpus

    def to_dict(self) -> dict[str, Any]:
        """The ``serve --json`` object (contract keys first; sizes as integer bytes)."""
        lay = self.layout
        return {
            "model": self.model, "gpu": self.gpu, "precision": self.precision, "kv_precision": self.kv_precision,
            "users": self.users, "context_tokens": self.context_tokens,
            "params_total": self.params_total, "params_active": self.params_active,
            "kv_cache_bytes_per_token": round(self.kv_cache_bytes_per_token),
            "gpus": lay.gpus, "tensor_parallel": lay.tensor_parallel,
            "memory_per_gpu": self.memory_per_gpu.to_dict(),
            "gpu_memory_bytes": self.gpu_memory_bytes, "fits": self.fits,
            "kv_cache_capacity_tokens": self.kv_cache_capacity_tokens,
            "max_concurrent_users": self.max_concurrent_users,
            "decode_tokens_per_s_per_user": self.decode_tokens_per_s_per_user,
            "ttft_s": self.ttft_s,
            # additions
            "engine": self.engine, "pipeline_parallel": lay.pipeline_parallel,
            "expert_parallel": lay.expert_parallel, "nodes": lay.nodes,
            "gpus_per_node": min(lay.gpus, lay.gpus_per_node),
            "reason": self.reason, "needs": self.needs.to_dict() if self.needs else None,
            "prompt_tokens": self.prompt_tokens, "output_tokens": self.context_tokens - self.prompt_tokens,
            "max_model_len": self.max_model_len, "mla_cache": self.mla_cache,
            "weights_bytes_total": round(self.weights_bytes_total),
            "kv_cache_bytes_per_token_per_gpu": round(self.kv_cache_bytes_per_token_per_gpu),
            "kv_cache_bytes_per_user": round(self.kv_cache_bytes_per_user),
            "usable_memory_bytes": round(self.usable_memory_bytes), "memory_fraction": self.memory_fraction,
            "block_size": self.block_size, "max_num_batched_tokens": self.max_num_batched_tokens,
            "decode_tokens_per_s_total": self.decode_tokens_per_s_total,
            "decode_context_tokens": self.decode_context_tokens,
            "speed_note": "decode tokens/s and TTFT are roofline estimates (bandwidth and FLOP over peak, "
                          "scaled by named efficiency factors), not measurements",
            "notes": list(self.notes),
            "assumptions": [dict(a) for a in self.assumptions],
        }


# ----------------------------------------------------------------------------- weights per GPU


@dataclass(frozen=True)
class WeightTable:
    """Weight bytes of one (model, precision), split by how tensor parallelism shards them.

    Per layer: ``sharded`` (÷ TP), ``replicated`` (on every rank), ``kv`` (K/V projections: ÷ KV heads,
    × heads per rank), ``experts`` (routed experts, ÷ TP or EP), ``matmul_active`` (weight elements
    multiplied per token). Prefix sums make a pipeline stage O(1).
    """

    embed: float
    lm_head: float
    final: float
    lm_head_matmul: float
    layers: int
    sharded: tuple[float, ...]
    replicated: tuple[float, ...]
    kv: tuple[float, ...]
    experts: tuple[float, ...]
    matmul_active: tuple[float, ...]
    total: float

    def stage_sum(self, name: str, start: int, stop: int) -> float:
        prefix = getattr(self, name)
        return prefix[stop] - prefix[start]


_REPLICATED_ATTENTION = ("q_a_proj", "q_a_layernorm", "kv_a_proj_with_mqa", "kv_a_layernorm")


def shard_class(m: A.Module) -> str:
    """How vLLM/SGLang tensor parallelism places module ``m``: sharded, replicated, kv, experts, vocab.

    vLLM model code: VocabParallelEmbedding/ParallelLMHead (vocab), QKVParallelLinear (kv for K/V),
    Column/RowParallelLinear (sharded), ReplicatedLinear for routers and the DeepSeek MLA
    down-projections (replicated), RMSNorm weights replicated, FusedMoE experts.
    """
    if m.group in ("embedding", "lm_head"):
        return "vocab"
    if m.group == "experts":
        return "experts"
    if m.kind == "norm" or m.group in ("router", "position") or m.name in _REPLICATED_ATTENTION:
        return "replicated"
    if m.name in ("k_proj", "v_proj"):
        return "kv"
    return "sharded"


def _prefix(values: Iterable[float]) -> tuple[float, ...]:
    out = [0.0]
    for v in values:
        out.append(out[-1] + v)
    return tuple(out)


@lru_cache(maxsize=512)
def weight_table(spec: ModelSpec, precision: Precision) -> WeightTable:
    """Build the ``WeightTable`` of ``spec`` stored in ``precision`` (cached; MTP modules are not served)."""
    L = spec.num_layers
    per = {k: [0.0] * L for k in ("sharded", "replicated", "kv", "experts", "matmul_active")}
    embed = lm_head = final = 0.0
    for m in A.model_modules(spec):
        b = module_weight_bytes(m, precision, L, spec)
        cls = shard_class(m)
        if m.layer < 0:
            if m.group == "embedding":
                embed += b
            elif m.group == "lm_head":
                lm_head += b
            else:
                final += b
            continue
        per[cls if cls != "vocab" else "sharded"][m.layer] += b
        if m.kind == "linear":
            per["matmul_active"][m.layer] += m.active_count * m.weight_params
    lm_matmul = float(spec.hidden_size * spec.vocab_size)
    total = embed + lm_head + final + sum(sum(v) for k, v in per.items() if k != "matmul_active")
    return WeightTable(embed=embed, lm_head=lm_head, final=final, lm_head_matmul=lm_matmul, layers=L,
                       total=total, **{k: _prefix(v) for k, v in per.items()})


def kv_heads_per_rank(spec: ModelSpec, tp: int) -> int:
    """KV heads one TP rank holds: n_kv / tp, or 1 (replicated) when tp > n_kv (vLLM QKVParallelLinear)."""
    return max(1, spec.num_kv_heads // tp)


def pipeline_stages(num_layers: int, pp: int) -> list[tuple[int, int]]:
    """Layer ranges [start, stop) of each pipeline stage, as vLLM ``get_pp_indices`` splits them.

    Every stage gets L // pp layers; the L % pp extra layers go to the stages just before the last
    (vllm/distributed/utils.py).
    """
    if pp < 1 or pp > num_layers:
        raise ScenarioError(f"pipeline_parallel {pp} must be between 1 and the {num_layers} layers")
    parts = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        parts[-i] += 1
    out, start = [], 0
    for n in parts:
        out.append((start, start + n))
        start += n
    return out


def stage_weight_bytes(table: WeightTable, spec: ModelSpec, tp: int, start: int, stop: int,
                       first: bool, last: bool, embed_on_gpu: bool = True) -> float:
    """Weight bytes on one GPU of a stage holding layers [start, stop) at tensor parallel ``tp``.

    = Σ(sharded/tp + replicated + kv·h_rank/n_kv + experts/tp) + embedding/tp (first stage)
      + lm_head/tp + final norm (last stage; a tied head re-uses the embedding, loaded again when pp > 1).
    """
    kv_frac = kv_heads_per_rank(spec, tp) / spec.num_kv_heads
    b = (table.stage_sum("sharded", start, stop) / tp + table.stage_sum("replicated", start, stop)
         + table.stage_sum("kv", start, stop) * kv_frac + table.stage_sum("experts", start, stop) / tp)
    if first and embed_on_gpu:
        b += table.embed / tp
    if last:
        b += table.lm_head / tp + table.final
        if spec.tie_embeddings and not first:
            b += table.embed / tp
    return b


# ----------------------------------------------------------------------------- KV cache and activations


def kv_elems_per_token_per_layer_per_gpu(spec: ModelSpec, tp: int, mla_mode: str) -> float:
    """Cached elements per token per layer on one TP rank.

    GQA: 2 · d · (KV heads per rank). MLA latent: kv_lora_rank + rope (576), the same on every rank.
    MLA decompressed: (n_h / tp) · (nope + rope + v).
    """
    if spec.is_mla:
        if mla_mode == "latent":
            return spec.kv_lora_rank + spec.qk_rope_head_dim
        return spec.num_heads / tp * (spec.qk_nope_head_dim + spec.qk_rope_head_dim + spec.v_head_dim)
    return 2 * spec.head_dim * kv_heads_per_rank(spec, tp)


def kv_tokens_held(context_tokens: int, block_size: int, window: int = 0) -> int:
    """Tokens one sequence occupies in one layer's paged cache: ceil(ctx / block) · block, capped at the
    window (plus one block) for sliding-window layers."""
    held = -(-context_tokens // block_size) * block_size
    if window:
        held = min(held, (-(-window // block_size) + 1) * block_size)
    return held


def stage_layer_counts(spec: ModelSpec, start: int, stop: int, window_aware: bool) -> tuple[int, int]:
    """(full-attention layers, sliding-window layers) among layers [start, stop)."""
    if not (window_aware and spec.sliding_window):
        return stop - start, 0
    sliding = sum(1 for i in spec.sliding_layers if start <= i < stop)
    return stop - start - sliding, sliding


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


# ----------------------------------------------------------------------------- input resolution


@dataclass(frozen=True)
class Plan:
    """Resolved inputs of one serving scenario (everything the layout evaluation needs, as numbers)."""

    spec: ModelSpec
    gpu: GpuSpec
    engine: str
    precision: Precision
    kv_precision: str
    kv_bytes: float
    mla_mode: str
    users: int
    context_tokens: int
    prompt_tokens: int
    max_model_len: int
    block_size: int
    chunk_tokens: int
    sampler_seqs: int
    memory_fraction: float
    cuda_graphs: bool
    compute: str
    notes: tuple[str, ...]
    a: Mapping[str, Any] = field(compare=False, hash=False)

    @property
    def runtime_memory_bytes(self) -> float:
        """What the CUDA runtime reports as total: catalog (nvidia-smi) total − driver reserve."""
        return self.gpu.memory_bytes - self.a["cuda_runtime_reserved_bytes"]


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ScenarioError(f"{name} must be a positive integer, got {value}")
    return value


def resolve_precision(spec: ModelSpec, gpu: GpuSpec, engine: str, precision: str | None,
                      a: Mapping[str, Any]) -> tuple[Precision, str, list[str]]:
    """Weight format for a scenario, the tensor-core path it runs on, and notes.

    ``fp8`` means the model's own FP8 checkpoint when it has one (DeepSeek-R1: ``fp8-block128``).
    On GPUs without FP8 tensor cores (Ampere), vLLM and SGLang run FP8 checkpoints as weight-only
    W8A16 through Marlin kernels (vLLM ``fp8_marlin``): weights stay 1 byte, matmuls run in 16-bit;
    transformers refuses. GGUF formats are for llama.cpp only; llama.cpp has no FP8 type.
    """
    notes: list[str] = []
    if precision is None or str(precision).strip() == "":
        name = a["llamacpp_default_precision"] if engine == "llama.cpp" else spec.checkpoint_format
    else:
        name = str(precision).strip().lower()
    if engine == "llama.cpp":
        if name in ("fp8", "fp8-block128", "float8", "e4m3"):
            raise ScenarioError(
                f"precision '{precision}' cannot run under llama.cpp: GGUF has no FP8 type; "
                f"choose bf16, fp16, int8 (Q8_0), int4 (Q4_K_M), or a GGUF type: q8_0, q6_k, q4_k_m, q2_k")
        name = LLAMACPP_GENERIC.get(name, name)
        p = catalog.load_precision(name)
        if p.family not in ("gguf", "mx") and p.slug not in ("bf16", "fp16", "fp32"):
            raise ScenarioError(f"precision '{precision}' is not a GGUF format llama.cpp can load; "
                                "choose bf16, fp16, int8, int4, q8_0, q6_k, q4_k_m or q2_k")
    else:
        if name == "fp8" and spec.checkpoint_format == "fp8-block128":
            name = "fp8-block128"
        p = catalog.load_precision(name)
        if p.family == "gguf":
            raise ScenarioError(f"precision '{precision}' is a GGUF format; use --engine llama.cpp, or choose "
                                f"one of {', '.join(GENERIC_PRECISIONS)} for {engine}")
    compute = p.compute
    if compute == "fp8" and gpu.peak_flop_per_s("fp8") is None:
        if engine == "transformers":
            raise ScenarioError(
                f"precision '{p.slug}' needs FP8 tensor cores, which the {gpu.name} does not have, and "
                f"transformers has no weight-only FP8 path; use --engine vllm (runs FP8 as W8A16 via Marlin) "
                f"or choose bf16, int8 or int4")
        compute = "bf16" if gpu.peak_flop_per_s("bf16") else "fp16"
        notes.append(f"The {gpu.name} has no FP8 tensor cores: {engine} runs the FP8 weights as weight-only "
                     f"W8A16 (Marlin kernels): 1 byte per weight in memory, matmuls in 16-bit.")
    if compute == "int8" and gpu.peak_flop_per_s("int8") is None:
        compute = "fp16"
        notes.append(f"The {gpu.name} has no INT8 tensor cores: INT8 weights run weight-only (W8A16).")
    if compute == "bf16" and gpu.peak_flop_per_s("bf16") is None:
        compute = "fp16"
        notes.append(f"The {gpu.name} has no BF16 tensor cores: the engine runs the model in fp16.")
    if gpu.peak_flop_per_s(compute) is None and gpu.peak_flop_per_s("fp16") is None:
        raise ScenarioError(f"the {gpu.name} has no {compute} or fp16 peak in the GPU catalog; "
                            "cannot estimate speed")
    return p, compute, notes


def resolve_kv_precision(engine: str, gpu: GpuSpec, kv_precision: str | None) -> str:
    """KV-cache format: the engine default (model dtype: bf16, fp16 on GPUs without bf16; llama.cpp f16)."""
    choices = ENGINE_KV_PRECISIONS[engine]
    if kv_precision is None or str(kv_precision).strip().lower() == "auto":
        if engine == "llama.cpp":
            return "fp16"
        return "bf16" if gpu.peak_flop_per_s("bf16") else "fp16"
    key = str(kv_precision).strip().lower()
    key = KV_PRECISION_ALIASES.get(key, key) or key
    if key not in choices:
        raise ScenarioError(f"KV-cache precision '{kv_precision}' is not available in {engine}; "
                            f"choose one of: {', '.join(choices)}")
    return key


def _vllm_large_defaults(gpu: GpuSpec, runtime_bytes: float, a: Mapping[str, Any]) -> bool:
    """vLLM's larger batch defaults apply on >= 70 GiB GPUs that are not A100s."""
    return runtime_bytes >= a["vllm_large_defaults_min_memory_bytes"] and "a100" not in gpu.slug.lower()


def _resolve_assumptions(assumptions: Assumptions | Mapping[str, Any] | None) -> Assumptions:
    if isinstance(assumptions, Assumptions):
        return assumptions
    return Assumptions(assumptions or {})


def _snapshot(a: Assumptions, names: Sequence[str]) -> dict[str, Any]:
    return {n: a[n] for n in names}


_SHARED_ASSUMPTIONS = (
    "cuda_runtime_reserved_bytes", "cuda_context_bytes", "activation_bytes_per_elem", "sliding_window_kv_bounded",
    "node_gpus_default", "serving_max_nodes_search",
)
_ENGINE_ASSUMPTIONS = {
    "vllm": ("vllm_gpu_memory_utilization", "vllm_block_size", "vllm_mla_block_size",
             "vllm_max_num_batched_tokens_large", "vllm_max_num_batched_tokens_small", "vllm_max_num_seqs_large",
             "vllm_max_num_seqs_small", "vllm_large_defaults_min_memory_bytes", "vllm_sampler_bytes_per_logit",
             "vllm_non_torch_bytes", "vllm_tp_comm_bytes", "vllm_cuda_graph_bytes"),
    # SGLang's non-torch memory (NCCL, custom all-reduce, CUDA graphs) is taken to be vLLM's.
    "sglang": ("sglang_mem_fraction_static_tp1", "sglang_mem_fraction_static_tp2", "sglang_mem_fraction_static_tp4",
               "sglang_mem_fraction_static_tp8", "sglang_mem_fraction_static_tp16", "sglang_chunked_prefill_size",
               "sglang_chunked_prefill_size_small", "vllm_non_torch_bytes", "vllm_tp_comm_bytes",
               "vllm_cuda_graph_bytes"),
    "transformers": ("transformers_usable_fraction", "transformers_logit_copies"),
    "llama.cpp": ("llamacpp_default_precision", "llamacpp_ubatch_tokens", "llamacpp_ctx_pad_tokens",
                  "llamacpp_compute_bytes_per_elem", "llamacpp_embeddings_on_cpu"),
}
ROOFLINE_ASSUMPTIONS = (
    "decode_bandwidth_efficiency", "moe_bandwidth_efficiency", "flop_efficiency", "moe_flop_efficiency",
    "decode_step_overhead_s", "decode_layer_latency_s",
    "allreduce_latency_nvlink_s",
    "allreduce_latency_pcie_s", "internode_hop_latency_s", "internode_bytes_per_s",
)


def make_plan(model: str | ModelSpec, gpu: str | GpuSpec, *, engine: str = "vllm", precision: str | None = None,
              kv_precision: str | None = None, users: int | None = None, context_tokens: int | None = None,
              prompt_tokens: int | None = None, gpu_memory_utilization: float | None = None,
              gpu_memory: str | None = None, mla_cache: str | None = None, max_model_len: int | None = None,
              max_num_batched_tokens: int | None = None, max_num_seqs: int | None = None,
              enforce_eager: bool = False,
              assumptions: Assumptions | Mapping[str, Any] | None = None) -> Plan:
    """Validate and resolve a scenario into a ``Plan`` (raises ``ScenarioError`` naming the bad value)."""
    if engine not in ENGINES:
        raise ScenarioError(f"unknown engine '{engine}'; choose one of: {', '.join(ENGINES)}")
    a = _snapshot(_resolve_assumptions(assumptions), _SHARED_ASSUMPTIONS + _ENGINE_ASSUMPTIONS[engine])
    spec = model if isinstance(model, ModelSpec) else catalog.load_model(model)
    g = gpu if isinstance(gpu, GpuSpec) else catalog.load_gpu(gpu, gpu_memory)
    if isinstance(gpu, GpuSpec) and gpu_memory:
        from llmsizing.units import parse_memory_bytes
        g = replace(g, memory_bytes=parse_memory_bytes(gpu_memory))
    defaults = _resolve_assumptions(assumptions)
    users = _check_positive_int("users", defaults["serving_default_users"] if users is None else users)
    context = _check_positive_int("context", defaults["serving_default_context_tokens"] if context_tokens is None
                                  else context_tokens)
    if spec.max_context_tokens and context > spec.max_context_tokens:
        raise ScenarioError(f"context {context:,} tokens exceeds {spec.slug}'s maximum of "
                            f"{spec.max_context_tokens:,} tokens (max_position_embeddings)")
    if prompt_tokens is None:
        default_prompt = defaults["serving_default_prompt_tokens"]
        prompt = min(default_prompt, max(1, context * default_prompt // defaults["serving_default_context_tokens"]))
        prompt = min(prompt, max(1, context - 1))
    else:
        prompt = _check_positive_int("prompt tokens", prompt_tokens)
        if prompt > context:
            raise ScenarioError(f"prompt tokens ({prompt:,}) cannot exceed the context ({context:,} tokens)")
    mml = context if max_model_len is None else _check_positive_int("max_model_len", max_model_len)
    if mml < context:
        raise ScenarioError(f"max_model_len ({mml:,}) is below the context ({context:,} tokens)")
    if spec.max_context_tokens and mml > spec.max_context_tokens:
        raise ScenarioError(f"max_model_len {mml:,} exceeds {spec.slug}'s maximum of "
                            f"{spec.max_context_tokens:,} tokens")
    mla = mla_cache or ENGINE_DEFAULT_MLA[engine]
    if mla not in MLA_MODES:
        raise ScenarioError(f"MLA cache mode '{mla_cache}' is not one of: {', '.join(MLA_MODES)}")
    p, compute, notes = resolve_precision(spec, g, engine, precision, a)
    kv_name = resolve_kv_precision(engine, g, kv_precision)
    runtime = g.memory_bytes - a["cuda_runtime_reserved_bytes"]
    if runtime <= 0:
        raise ScenarioError(f"GPU memory {g.memory_bytes} bytes is too small to run anything")

    if engine == "vllm":
        large = _vllm_large_defaults(g, runtime, a)
        frac = a["vllm_gpu_memory_utilization"] if gpu_memory_utilization is None else gpu_memory_utilization
        flashmla = spec.is_mla and mla == "latent" and any(x in g.arch.lower() for x in ("hopper", "blackwell"))
        block = a["vllm_mla_block_size"] if flashmla else a["vllm_block_size"]
        chunk = a["vllm_max_num_batched_tokens_large" if large else "vllm_max_num_batched_tokens_small"]
        seqs = a["vllm_max_num_seqs_large" if large else "vllm_max_num_seqs_small"]
    elif engine == "sglang":
        frac = gpu_memory_utilization  # None: by TP size at evaluation time
        block = 1
        chunk = a["sglang_chunked_prefill_size" if g.memory_bytes >= 25e9 else "sglang_chunked_prefill_size_small"]
        seqs = 0
    elif engine == "transformers":
        frac = a["transformers_usable_fraction"] if gpu_memory_utilization is None else gpu_memory_utilization
        block, chunk, seqs = 1, users * prompt, 0
    else:
        frac = 1.0 if gpu_memory_utilization is None else gpu_memory_utilization
        block, chunk, seqs = 1, a["llamacpp_ubatch_tokens"], 0
    if frac is not None and (isinstance(frac, bool) or not isinstance(frac, (int, float))
                             or not 0 < frac <= 1):
        raise ScenarioError(f"GPU memory utilization must be a fraction in (0, 1], got {frac!r}")
    if max_num_batched_tokens is not None:
        chunk = _check_positive_int("max_num_batched_tokens", max_num_batched_tokens)
    if max_num_seqs is not None:
        seqs = _check_positive_int("max_num_seqs", max_num_seqs)
    if spec.is_mla and mla == "decompressed" and engine in ("vllm", "sglang"):
        notes.append("MLA cache decompressed: per-head K/V for all heads (about 71x the latent cache); "
                     "vLLM and SGLang cache the 576-value latent by default.")
    return Plan(spec=spec, gpu=g, engine=engine, precision=p, kv_precision=kv_name,
                kv_bytes=KV_PRECISION_BYTES[kv_name], mla_mode=mla, users=users, context_tokens=context,
                prompt_tokens=prompt, max_model_len=mml, block_size=int(block), chunk_tokens=int(chunk),
                sampler_seqs=int(seqs), memory_fraction=frac, cuda_graphs=not enforce_eager, compute=compute,
                notes=tuple(notes), a=a)


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
        return int(best or 0)

    def max_users(self) -> int:
        """Users at the scenario context the pool holds: min over stages of floor(pool / per-user KV)."""
        return int(min(math.floor(max(0.0, s.kv_pool) / s.kv_per_user) if s.kv_per_user else 0
                       for s in self.stages))

    def fits(self, users: int) -> bool:
        """Every stage holds ``users`` sequences, the engine's start-up check passes, the headroom suffices."""
        return (all(s.kv_pool >= users * s.kv_per_user and s.kv_pool > 0 and s.headroom_short <= 0
                    for s in self.stages)
                and self.capacity_tokens() >= self.min_capacity_tokens)

    def worst_stage(self, users: int) -> StageMemory:
        """The stage with the least slack (pool minus what the users need)."""
        return min(self.stages, key=lambda s: (s.kv_pool - users * s.kv_per_user, -s.weights))


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


def vllm_stage_memory(weights: float, act_per_token: float, last: bool, plan: Plan, runtime: float,
                      frac: float, multi_gpu: bool) -> EngineMemory:
    """vLLM V1 ``determine_available_memory``:

    pool = frac · runtime − (weights + activation peak + non-torch), where the activation peak is the
    profile run at ``max_num_batched_tokens`` plus the dummy sampler (max_num_seqs × vocab × bytes per
    logit, last pipeline stage only). The CUDA context and CUDA graphs live in (1 − frac) · runtime.
    """
    a, spec = plan.a, plan.spec
    act = plan.chunk_tokens * act_per_token * a["activation_bytes_per_elem"]
    if last:
        act += plan.sampler_seqs * spec.vocab_size * a["vllm_sampler_bytes_per_logit"]
    non_torch = _non_torch_bytes(a, multi_gpu)
    graphs = a["vllm_cuda_graph_bytes"] if plan.cuda_graphs else 0
    outside = a["cuda_context_bytes"] + graphs
    return EngineMemory(activations=act, overhead=outside + non_torch,
                        kv_pool=frac * runtime - (weights + act + non_torch),
                        headroom_short=outside - (1 - frac) * runtime, usable=frac * runtime)


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


ENGINE_MEMORY = {"vllm": vllm_stage_memory, "sglang": sglang_stage_memory,
                 "transformers": transformers_stage_memory, "llama.cpp": llamacpp_stage_memory}


def kv_per_user_bytes(plan: Plan, kv_layer_bytes: float, n_full: int, n_slide: int) -> float:
    """KV bytes one user holds on one GPU: per-layer bytes × (full layers × block-rounded context + sliding
    layers × window). llama.cpp allocates one cache of n_ctx = users × context padded to 256, shared out."""
    spec = plan.spec
    held = kv_tokens_held(plan.context_tokens, plan.block_size)
    held_slide = kv_tokens_held(plan.context_tokens, plan.block_size, spec.sliding_window)
    per_user = kv_layer_bytes * (n_full * held + n_slide * held_slide)
    if plan.engine == "llama.cpp":
        pad = plan.a["llamacpp_ctx_pad_tokens"]
        total = plan.users * plan.context_tokens
        per_user *= (-(-total // pad) * pad) / total
    return per_user


def evaluate_layout(plan: Plan, layout: Layout) -> LayoutMemory:
    """Memory of every pipeline stage of ``layout`` under the plan's engine (no validity checks)."""
    spec, a = plan.spec, plan.a
    tp, pp = layout.tensor_parallel, layout.pipeline_parallel
    table = weight_table(spec, plan.precision)
    runtime = plan.runtime_memory_bytes
    frac = plan.memory_fraction
    if frac is None:  # SGLang's default depends on the TP size
        frac = sglang_memory_fraction(tp, a)
    kv_layer = kv_elems_per_token_per_layer_per_gpu(spec, tp, plan.mla_mode) * plan.kv_bytes
    act_per_token = activation_elems_per_token(spec, tp)
    embed_on_gpu = not (plan.engine == "llama.cpp" and a["llamacpp_embeddings_on_cpu"])
    engine_memory = ENGINE_MEMORY[plan.engine]
    stages = []
    bounds = pipeline_stages(spec.num_layers, pp)
    for i, (start, stop) in enumerate(bounds):
        first, last = i == 0, i == len(bounds) - 1
        w = stage_weight_bytes(table, spec, tp, start, stop, first, last, embed_on_gpu)
        n_full, n_slide = stage_layer_counts(spec, start, stop, a["sliding_window_kv_bounded"])
        e = engine_memory(w, act_per_token, last, plan, runtime, frac, tp * pp > 1)
        stages.append(StageMemory(start, stop, w, (stop - start) * kv_layer,
                                  kv_per_user_bytes(plan, kv_layer, n_full, n_slide), e.activations, e.overhead,
                                  e.kv_pool, e.headroom_short))
        usable = e.usable
    paged = plan.engine in ("vllm", "sglang")
    return LayoutMemory(layout=layout, stages=tuple(stages), fraction=frac, usable=usable, block=plan.block_size,
                        min_capacity_tokens=plan.max_model_len if paged else 0)


# ----------------------------------------------------------------------------- layouts


def layout_problem(spec: ModelSpec, precision: Precision, tp: int, engine: str) -> str | None:
    """Why tensor-parallel size ``tp`` cannot shard ``spec`` (None when it can).

    vLLM/SGLang require: attention heads % tp == 0; KV heads % tp == 0 or tp % KV heads == 0; the
    (dense and expert) intermediate sizes divisible by tp; for group-quantized weights (int4 g128,
    FP8 128×128 blocks) every sharded input/output dimension a multiple of the group.
    """
    if tp == 1:
        return None
    if engine in ("transformers", "llama.cpp"):
        return f"{engine} splits layers across GPUs (no tensor parallelism)"
    if spec.num_heads % tp:
        return f"tensor-parallel size {tp} does not divide the {spec.num_heads} attention heads"
    if not spec.is_mla and spec.num_kv_heads % tp and tp % spec.num_kv_heads:
        return f"tensor-parallel size {tp} and the {spec.num_kv_heads} KV heads do not divide one another"
    dims = []
    if len(spec.moe_layers) < spec.num_layers:
        dims.append(("intermediate size", spec.intermediate_size))
    if spec.is_moe:
        dims.append(("expert intermediate size", spec.moe_intermediate_size))
    for label, d in dims:
        if d % tp:
            return f"tensor-parallel size {tp} does not divide the {label} {d}"
    group = 128 if precision.slug in ("int4", "fp8-block128") else 0
    if group:
        for label, d in dims:
            if (d // tp) % group:
                return (f"{precision.slug} groups of {group} do not fit the per-GPU {label} "
                        f"{d // tp} at tensor-parallel size {tp}")
    return None


def candidate_layouts(plan: Plan) -> list[Layout]:
    """Layouts to try, smallest GPU count first.

    vLLM: TP 1..node (valid sizes), then TP = largest valid ≤ node × PP = 2, 3, ... (one stage per
    node or less). SGLang: TP within a node, then TP across nodes (TP16, TP32 as its DeepSeek
    multi-node guide), PP only when no TP size is valid. transformers and llama.cpp: layer split over
    1..node GPUs of one node.
    """
    spec, gpu, a = plan.spec, plan.gpu, plan.a
    node = gpu.node_gpus_max or a["node_gpus_default"]
    max_gpus = node * a["serving_max_nodes_search"]
    if plan.engine in ("transformers", "llama.cpp"):
        return [Layout(1, pp, 1, node) for pp in range(1, min(node, spec.num_layers) + 1)]
    single = [tp for tp in range(1, node + 1) if layout_problem(spec, plan.precision, tp, plan.engine) is None]
    out = [Layout(tp, 1, 1, node) for tp in single]
    tp_max = max(single)
    moe_ep = lambda tp: tp if spec.is_moe else 1  # noqa: E731 - experts split over the TP group (EP)
    if plan.engine == "sglang":
        multi = [Layout(tp, 1, moe_ep(tp), node) for tp in range(node + 1, max_gpus + 1)
                 if tp % node == 0 and layout_problem(spec, plan.precision, tp, plan.engine) is None]
        if multi:
            return out + multi
    for pp in range(2, min(spec.num_layers, max_gpus // tp_max) + 1):
        out.append(Layout(tp_max, pp, moe_ep(tp_max), node))
    return out


def layout_for_gpus(plan: Plan, gpus: int) -> Layout:
    """The layout ``--gpus N`` means: TP = N within a node; beyond a node TP = node × PP (vLLM) or TP = N
    (SGLang); layer split for transformers/llama.cpp. Raises ``ScenarioError`` for an impossible N."""
    spec, gpu, a = plan.spec, plan.gpu, plan.a
    gpus = _check_positive_int("--gpus", gpus)
    node = gpu.node_gpus_max or a["node_gpus_default"]
    valid = sorted({lay.gpus for lay in candidate_layouts(plan)})[:12]
    if plan.engine in ("transformers", "llama.cpp"):
        if gpus > node or gpus > spec.num_layers:
            raise ScenarioError(f"--gpus {gpus}: {plan.engine} splits layers over the GPUs of one node "
                                f"(at most {min(node, spec.num_layers)} {gpu.slug} GPUs)")
        return Layout(1, gpus, 1, node)
    if gpus <= node:
        problem = layout_problem(spec, plan.precision, gpus, plan.engine)
        if problem:
            raise ScenarioError(f"--gpus {gpus}: {problem} of {spec.slug}; valid GPU counts: "
                                f"{', '.join(map(str, valid))}, ...")
        return Layout(gpus, 1, 1, node)
    if plan.engine == "sglang" and gpus % node == 0 and layout_problem(spec, plan.precision, gpus, "sglang") is None:
        return Layout(gpus, 1, gpus if spec.is_moe else 1, node)
    tp = node
    while tp > 1 and (gpus % tp or layout_problem(spec, plan.precision, tp, plan.engine)):
        tp -= 1
    pp = gpus // tp
    if gpus % tp or layout_problem(spec, plan.precision, tp, plan.engine) or pp > spec.num_layers:
        raise ScenarioError(f"--gpus {gpus}: cannot be split into tensor-parallel groups of one node "
                            f"({node} {gpu.slug}) times pipeline stages for {spec.slug}; valid GPU counts: "
                            f"{', '.join(map(str, valid))}, ...")
    return Layout(tp, pp, tp if spec.is_moe else 1, node)


def smallest_fitting_layout(plan: Plan) -> tuple[LayoutMemory | None, LayoutMemory]:
    """(first layout that fits or None, the last layout tried)."""
    last = None
    for lay in candidate_layouts(plan):
        mem = evaluate_layout(plan, lay)
        last = mem
        if mem.fits(plan.users):
            return mem, mem
    assert last is not None
    return None, last


# ----------------------------------------------------------------------------- public API


def _reason(plan: Plan, mem: LayoutMemory, fits: bool, needs: Layout | None) -> str:
    """One sentence: why the layout fits or not, and what it needs instead."""
    lay = mem.layout
    s = mem.worst_stage(plan.users)
    where = (f"{lay.gpus} x {plan.gpu.slug} (tp {lay.tensor_parallel}"
             + (f" x pp {lay.pipeline_parallel}" if lay.pipeline_parallel > 1 else "") + ")")
    need_kv = plan.users * s.kv_per_user
    if fits:
        return (f"fits on {where}: KV cache for {plan.users} users x {plan.context_tokens:,} tokens needs "
                f"{need_kv / GiB:,.1f} GiB per GPU of the {max(0.0, s.kv_pool) / GiB:,.1f} GiB the engine "
                f"allocates (room for {mem.max_users()} users at this context)")
    if s.headroom_short > 0:
        text = (f"on {where} the memory outside the engine's budget (CUDA context, CUDA graphs, activations) "
                f"is {s.headroom_short / GiB:,.1f} GiB short; lower the memory fraction or use --enforce-eager")
    elif s.kv_pool <= 0:
        text = (f"on {where} the weights ({s.weights / GiB:,.1f} GiB per GPU) plus activations and runtime "
                f"memory exceed the {mem.usable / GiB:,.1f} GiB the engine may use per GPU "
                f"({mem.fraction:.2f} x {plan.runtime_memory_bytes / GiB:,.1f} GiB)")
    elif mem.capacity_tokens() < mem.min_capacity_tokens:
        text = (f"on {where} the engine's KV cache ({mem.capacity_tokens():,} tokens) cannot hold one "
                f"max_model_len sequence of {mem.min_capacity_tokens:,} tokens, so it refuses to start")
    else:
        text = (f"on {where} the KV cache for {plan.users} users x {plan.context_tokens:,} tokens needs "
                f"{need_kv / GiB:,.1f} GiB per GPU but only {s.kv_pool / GiB:,.1f} GiB is left after weights "
                f"and runtime memory (room for {mem.max_users()} users at this context)")
    if needs is not None:
        text += (f"; needs {needs.gpus} GPUs ({needs.nodes} node{'s' if needs.nodes > 1 else ''}, "
                 f"tp {needs.tensor_parallel} x pp {needs.pipeline_parallel})")
    else:
        node = plan.gpu.node_gpus_max or plan.a["node_gpus_default"]
        limit = (f"one node ({node} GPUs; {plan.engine} does not span nodes)"
                 if plan.engine in ("transformers", "llama.cpp")
                 else f"{plan.a['serving_max_nodes_search']} nodes x {node} GPUs")
        text += f"; does not fit on any layout up to {limit}"
    return text


def serve(model: str | ModelSpec, gpu: str | GpuSpec, *, gpus: int | None = None, precision: str | None = None,
          kv_precision: str | None = None, users: int | None = None, context_tokens: int | None = None,
          prompt_tokens: int | None = None, engine: str = "vllm", gpu_memory_utilization: float | None = None,
          gpu_memory: str | None = None, mla_cache: str | None = None, max_model_len: int | None = None,
          max_num_batched_tokens: int | None = None, max_num_seqs: int | None = None,
          enforce_eager: bool = False, speed: bool = True,
          assumptions: Assumptions | Mapping[str, Any] | None = None) -> ServingEstimate:
    """Size serving ``model`` on ``gpu`` for ``users`` concurrent users at ``context_tokens`` each.

    Without ``gpus`` the smallest layout that fits is chosen (TP within a node, then PP or TP across
    nodes); with ``gpus`` that layout is evaluated and ``needs`` says what would fit instead.
    """
    a = _resolve_assumptions(assumptions)
    plan = make_plan(model, gpu, engine=engine, precision=precision, kv_precision=kv_precision, users=users,
                     context_tokens=context_tokens, prompt_tokens=prompt_tokens,
                     gpu_memory_utilization=gpu_memory_utilization, gpu_memory=gpu_memory, mla_cache=mla_cache,
                     max_model_len=max_model_len, max_num_batched_tokens=max_num_batched_tokens,
                     max_num_seqs=max_num_seqs, enforce_eager=enforce_eager, assumptions=a)
    return estimate_plan(plan, gpus=gpus, speed=speed, assumptions=a)


def estimate_plan(plan: Plan, *, gpus: int | None = None, speed: bool = True,
                  assumptions: Assumptions | None = None) -> ServingEstimate:
    """Evaluate a resolved plan: choose or check the layout, then memory, capacity and speed."""
    from llmsizing.serving import roofline

    if assumptions is None:
        assumptions = Assumptions()
    needs = None
    if gpus is None:
        found, last = smallest_fitting_layout(plan)
        mem = found or last
        fits = found is not None
    else:
        mem = evaluate_layout(plan, layout_for_gpus(plan, gpus))
        fits = mem.fits(plan.users)
        if not fits:
            found, _ = smallest_fitting_layout(plan)
            needs = found.layout if found else None
    spec = plan.spec
    s = mem.worst_stage(plan.users)
    lay = mem.layout
    memory = MemoryPerGpu(weights=s.weights, kv_cache=plan.users * s.kv_per_user, activations=s.activations,
                          overhead=s.overhead)
    decode = total = ttft = None
    decode_ctx = roofline.decode_context_tokens(plan.prompt_tokens, plan.context_tokens)
    if speed and fits:
        r = roofline.estimate_speed(plan, mem, _snapshot(assumptions, ROOFLINE_ASSUMPTIONS))
        decode, total, ttft = r.decode_tokens_per_s_per_user, r.decode_tokens_per_s_total, r.ttft_s
    kv_full = A.kv_cache_bytes_per_token(spec, plan.kv_bytes, plan.mla_mode)
    table = weight_table(spec, plan.precision)
    notes = list(plan.notes)
    if spec.mtp_layers:
        notes.append("Multi-token-prediction (MTP) weights are not loaded: engines load them only for "
                     "speculative decoding.")
    if lay.expert_parallel > 1:
        notes.append(f"Experts are split over the {lay.expert_parallel} GPUs of each tensor-parallel group "
                     "(--enable-expert-parallel); memory is the same as tensor-parallel experts.")
    if plan.engine == "llama.cpp" and plan.a["llamacpp_embeddings_on_cpu"]:
        notes.append("llama.cpp keeps the token-embedding matrix in host memory.")
    used = assumptions.table()
    return ServingEstimate(
        model=spec.slug, gpu=plan.gpu.slug, engine=plan.engine, precision=plan.precision.slug,
        kv_precision=plan.kv_precision, mla_cache=plan.mla_mode if spec.is_mla else None, users=plan.users,
        context_tokens=plan.context_tokens, prompt_tokens=plan.prompt_tokens, max_model_len=plan.max_model_len,
        params_total=A.params_total(spec), params_active=A.params_active(spec), weights_bytes_total=table.total,
        kv_cache_bytes_per_token=kv_full, kv_cache_bytes_per_token_per_gpu=s.kv_per_token,
        kv_cache_bytes_per_user=s.kv_per_user, layout=lay, memory_per_gpu=memory,
        gpu_memory_bytes=int(plan.gpu.memory_bytes), usable_memory_bytes=mem.usable, memory_fraction=mem.fraction,
        fits=fits, reason=_reason(plan, mem, fits, needs), needs=needs,
        kv_cache_capacity_tokens=mem.capacity_tokens(plan.block_size), max_concurrent_users=mem.max_users(),
        block_size=plan.block_size, max_num_batched_tokens=plan.chunk_tokens,
        decode_tokens_per_s_per_user=decode, decode_tokens_per_s_total=total, ttft_s=ttft,
        decode_context_tokens=decode_ctx, notes=tuple(notes),
        assumptions=tuple({"name": r["name"], "value": r["value"], "unit": r["unit"], "source": r["source"]}
                          for r in used),
    )


def users_memory_comparison(model: str | ModelSpec, *, users: int = 3, context_tokens: int | None = None,
                            precision: str | None = None, kv_precision: str = "bf16",
                            mla_cache: str = "latent") -> dict[str, Any]:
    """Why "N users ≈ N × the weights" is wrong: weights are shared, only the KV cache grows per user.

    Returns whole-model bytes: weights (once), KV per user at the context, total for N users
    (= weights + N · KV), the naive guess N · weights, and their ratio, plus a row per user count.
    """
    a = Assumptions()
    spec = model if isinstance(model, ModelSpec) else catalog.load_model(model)
    users = _check_positive_int("users", users)
    context = _check_positive_int("context", context_tokens or a["serving_default_context_tokens"])
    name = precision or spec.checkpoint_format
    if name == "fp8" and spec.checkpoint_format == "fp8-block128":
        name = "fp8-block128"
    p = catalog.load_precision(name)
    if kv_precision not in KV_PRECISION_BYTES:
        raise ScenarioError(f"KV-cache precision '{kv_precision}' unknown; choose one of: "
                            f"{', '.join(KV_PRECISION_BYTES)}")
    w = weight_table(spec, p).total
    kv_user = A.kv_cache_bytes(spec, context, KV_PRECISION_BYTES[kv_precision], mla_cache)
    rows = [{"users": n, "weights_bytes": round(w), "kv_cache_bytes": round(n * kv_user),
             "total_bytes": round(w + n * kv_user), "naive_bytes": round(n * w)} for n in range(1, users + 1)]
    return {
        "model": spec.slug, "precision": p.slug, "kv_precision": kv_precision, "context_tokens": context,
        "users": users, "weights_bytes": round(w), "kv_cache_bytes_per_user": round(kv_user),
        "kv_cache_bytes_total": round(users * kv_user), "total_bytes": round(w + users * kv_user),
        "naive_guess_bytes": round(users * w), "naive_over_actual": (users * w) / (w + users * kv_user),
        "rows": rows,
        "explanation": (f"The {w / GiB:,.1f} GiB of weights are loaded once and shared by every user; each "
                        f"user adds only its KV cache ({kv_user / GiB:,.2f} GiB at {context:,} tokens), so "
                        f"{users} users need {(w + users * kv_user) / GiB:,.1f} GiB, not {users} x the weights "
                        f"({users * w / GiB:,.1f} GiB)."),
    }


DEEPSEEK_R1_FAMILY = (
    "deepseek-r1", "deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-7b", "deepseek-r1-distill-llama-8b",
    "deepseek-r1-distill-qwen-14b", "deepseek-r1-distill-qwen-32b", "deepseek-r1-distill-llama-70b",
)
SWEEP_PRECISIONS = ("bf16", "fp8", "int8", "int4")
SWEEP_GPUS = ("h100-80gb", "a100-80gb", "l40s", "rtx-4090", "a10g", "h200")


def serve_sweep(models: Sequence[str] = DEEPSEEK_R1_FAMILY, precisions: Sequence[str] = SWEEP_PRECISIONS,
                gpus: Sequence[str] = SWEEP_GPUS, *, users: int | None = None, context_tokens: int | None = None,
                engine: str = "vllm", speed: bool = True,
                assumptions: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per (model, precision, GPU): the smallest layout that fits, or why nothing does.

    Rows: model, precision, gpu, fits, gpus, nodes, tensor_parallel, pipeline_parallel, memory per GPU
    (bytes), kv capacity, max users, decode tokens/s per user, TTFT, reason. A combination the engine
    cannot run at all (e.g. FP8 under transformers on an A100) gives fits false with the error as reason.
    """
    from llmsizing.errors import SizingError

    rows = []
    for m in models:
        spec = catalog.load_model(m)
        for p in precisions:
            for g in gpus:
                row: dict[str, Any] = {"model": spec.slug, "precision": p, "gpu": g}
                try:
                    est = serve(spec, g, precision=p, users=users, context_tokens=context_tokens, engine=engine,
                                speed=speed, assumptions=assumptions)
                except SizingError as exc:
                    row.update(weight_format=None, fits=False, gpus=None, nodes=None, tensor_parallel=None,
                               pipeline_parallel=None,
                               memory_per_gpu_total=None, weights_per_gpu=None, kv_cache_per_gpu=None,
                               kv_cache_capacity_tokens=None, max_concurrent_users=None,
                               decode_tokens_per_s_per_user=None, ttft_s=None, reason=str(exc))
                    rows.append(row)
                    continue
                row.update(weight_format=est.precision, fits=est.fits, gpus=est.layout.gpus if est.fits else None,
                           nodes=est.layout.nodes if est.fits else None,
                           tensor_parallel=est.layout.tensor_parallel if est.fits else None,
                           pipeline_parallel=est.layout.pipeline_parallel if est.fits else None,
                           memory_per_gpu_total=round(est.memory_per_gpu.total),
                           weights_per_gpu=round(est.memory_per_gpu.weights),
                           kv_cache_per_gpu=round(est.memory_per_gpu.kv_cache),
                           kv_cache_capacity_tokens=est.kv_cache_capacity_tokens,
                           max_concurrent_users=est.max_concurrent_users,
                           decode_tokens_per_s_per_user=est.decode_tokens_per_s_per_user, ttft_s=est.ttft_s,
                           reason=est.reason)
                rows.append(row)
    return rows

"""A serving request resolved into numbers (``Plan``), and the tensor/pipeline layouts it may run on.

``make_plan`` validates a scenario (model, GPU, engine, weight and KV formats, users, context) and
fills in each engine's defaults (vLLM block size, ``max_num_batched_tokens``, ``max_num_seqs``,
``gpu_memory_utilization``; SGLang chunked prefill; llama.cpp ubatch). ``candidate_layouts`` lists the
layouts to try, smallest GPU count first, and ``layout_problem`` says why a TP size cannot shard a model.
Bad input raises ``ScenarioError`` with one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.choices import ENGINES, KV_PRECISIONS, MLA_MODES
from llmsizing.errors import ScenarioError
from llmsizing.serving.sharding import Layout
from llmsizing.specs import GpuSpec, ModelSpec, Precision
from llmsizing.units import GPU_MEMORY_RANGE_BYTES, parse_memory_bytes

# KV-cache element formats (the vocabulary: choices.KV_PRECISIONS): bytes per cached element (llama.cpp
# q8_0/q4_0 include their fp16 block scale: ggml/src/ggml-common.h block_q8_0 34 B / 32, block_q4_0 18 B / 32).
_KV_ELEM_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
KV_PRECISION_BYTES = {k: _KV_ELEM_BYTES[k] for k in KV_PRECISIONS if k != "auto"}
KV_PRECISION_ALIASES = {"auto": None, "bfloat16": "bf16", "float16": "fp16", "f16": "fp16", "half": "fp16",
                        "fp8_e4m3": "fp8", "fp8-e4m3": "fp8", "e4m3": "fp8", "int8": "fp8"}
ENGINE_KV_PRECISIONS = {
    "vllm": ("bf16", "fp16", "fp8"),
    "sglang": ("bf16", "fp16", "fp8"),
    "tensorrt-llm": ("bf16", "fp16", "fp8"),
    "transformers": ("bf16", "fp16"),
    "llama.cpp": ("fp16", "bf16", "q8_0", "q4_0"),
}
# Precision names a user may type for weights; catalog slugs are accepted too.
GENERIC_PRECISIONS = ("bf16", "fp16", "fp8", "int8", "int4")
LLAMACPP_GENERIC = {"bf16": "bf16", "fp16": "fp16", "int8": "q8_0", "int4": "q4_k_m"}

# Engines that keep the DeepSeek MLA latent (kv_lora_rank + rope) in the cache by default; transformers'
# DeepseekV3Attention caches the decompressed per-head K and V.
VLLM_PROFILES = ("v0.19", "v1-mid-2025", "v0")  # vLLM memory-profiling generations (engines.py)

ENGINE_DEFAULT_MLA = {"vllm": "latent", "sglang": "latent", "tensorrt-llm": "latent", "transformers": "decompressed", "llama.cpp": "latent"}


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
    draft_weight_bytes: float = 0.0   # speculative-decoding draft weights (DeepSeek MTP module), whole model

    @property
    def runtime_memory_bytes(self) -> float:
        """What the CUDA runtime reports as total: catalog (nvidia-smi) total − driver reserve."""
        return self.gpu.memory_bytes - self.a["cuda_runtime_reserved_bytes"]

    @property
    def embeddings_on_gpu(self) -> bool:
        """False when llama.cpp keeps the token-embedding matrix in host memory."""
        return not (self.engine == "llama.cpp" and self.a["llamacpp_embeddings_on_cpu"])


def check_positive_int(name: str, value: Any) -> int:
    """``value`` if it is a positive int (bools refused), else ``ScenarioError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ScenarioError(f"{name} must be a positive integer, got {value}")
    return value


def checkpoint_precision_name(spec: ModelSpec, name: str) -> str:
    """``fp8`` means the model's own FP8 checkpoint when it has one (DeepSeek-R1: ``fp8-block128``)."""
    return "fp8-block128" if name == "fp8" and spec.checkpoint_format == "fp8-block128" else name


def resolve_precision(spec: ModelSpec, gpu: GpuSpec, engine: str, precision: str | None,
                      a: Mapping[str, Any]) -> tuple[Precision, str, list[str]]:
    """Weight format for a scenario, the tensor-core path it runs on, and notes.

    ``None`` or ``native`` means the checkpoint's own format. ``fp8`` means the model's own FP8 checkpoint when it has one (DeepSeek-R1: ``fp8-block128``).
    On GPUs without FP8 tensor cores (Ampere), vLLM and SGLang run FP8 checkpoints as weight-only
    W8A16 through Marlin kernels (vLLM ``fp8_marlin``): weights stay 1 byte, matmuls run in 16-bit;
    transformers refuses. GGUF formats are for llama.cpp only; llama.cpp has no FP8 type.
    """
    notes: list[str] = []
    if precision is None or str(precision).strip().lower() in ("", "native"):
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
        p = catalog.load_precision(checkpoint_precision_name(spec, name))
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


def resolve_assumptions(assumptions: Assumptions | Mapping[str, Any] | None) -> Assumptions:
    """The ``Assumptions`` to read: as given, or built from an overrides mapping (None: the defaults)."""
    return Assumptions.of(assumptions)


def snapshot(a: Assumptions, names: Sequence[str]) -> dict[str, Any]:
    """The values of ``names`` (reading them marks them used in the report's assumptions table)."""
    return {n: a[n] for n in names}


_SHARED_ASSUMPTIONS = (
    "cuda_runtime_reserved_bytes", "cuda_context_bytes", "activation_bytes_per_elem", "sliding_window_kv_bounded",
    "node_gpus_default", "serving_max_nodes_search",
)
_ENGINE_ASSUMPTIONS = {
    "vllm": ("vllm_gpu_memory_utilization", "vllm_block_size", "vllm_mla_block_size",
             "vllm_max_num_batched_tokens_large", "vllm_max_num_batched_tokens_small", "vllm_max_num_seqs_large",
             "vllm_max_num_seqs_small", "vllm_large_defaults_min_memory_bytes", "vllm_sampler_bytes_per_logit",
             "vllm_non_torch_bytes", "vllm_tp_comm_bytes", "vllm_cuda_graph_bytes", "vllm_memory_profile",
             "vllm_sampler_bytes_per_logit_v1_2025", "vllm_sampler_bytes_per_logit_v0"),
    "tensorrt-llm": ("trtllm_kv_cache_free_gpu_mem_fraction", "trtllm_tokens_per_block", "trtllm_max_num_tokens",
                     "trtllm_max_batch_size", "vllm_non_torch_bytes", "vllm_tp_comm_bytes", "vllm_cuda_graph_bytes"),
    # SGLang's non-torch memory (NCCL, custom all-reduce, CUDA graphs) is taken to be vLLM's.
    "sglang": ("sglang_mem_fraction_static_tp1", "sglang_mem_fraction_static_tp2", "sglang_mem_fraction_static_tp4",
               "sglang_mem_fraction_static_tp8", "sglang_mem_fraction_static_tp16", "sglang_chunked_prefill_size",
               "sglang_chunked_prefill_size_small", "vllm_non_torch_bytes", "vllm_tp_comm_bytes",
               "vllm_cuda_graph_bytes"),
    "transformers": ("transformers_usable_fraction", "transformers_logit_copies"),
    "llama.cpp": ("llamacpp_default_precision", "llamacpp_ubatch_tokens", "llamacpp_ctx_pad_tokens",
                  "llamacpp_compute_bytes_per_elem", "llamacpp_embeddings_on_cpu"),
}


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
    defaults = resolve_assumptions(assumptions)
    a = snapshot(defaults, _SHARED_ASSUMPTIONS + _ENGINE_ASSUMPTIONS[engine])
    spec = model if isinstance(model, ModelSpec) else catalog.load_model(model)
    g = gpu if isinstance(gpu, GpuSpec) else catalog.load_gpu(gpu, gpu_memory)
    if isinstance(gpu, GpuSpec) and gpu_memory:
        g = replace(g, memory_bytes=parse_memory_bytes(gpu_memory, bounds=GPU_MEMORY_RANGE_BYTES))
    users = check_positive_int("users", defaults["serving_default_users"] if users is None else users)
    context = check_positive_int("context", defaults["serving_default_context_tokens"] if context_tokens is None
                                  else context_tokens)
    if spec.max_context_tokens and context > spec.max_context_tokens:
        raise ScenarioError(f"context {context:,} tokens exceeds {spec.slug}'s maximum of "
                            f"{spec.max_context_tokens:,} tokens (max_position_embeddings)")
    if prompt_tokens is None:
        default_prompt = defaults["serving_default_prompt_tokens"]
        prompt = min(default_prompt, max(1, context * default_prompt // defaults["serving_default_context_tokens"]))
        prompt = min(prompt, max(1, context - 1))
    else:
        prompt = check_positive_int("prompt tokens", prompt_tokens)
        if prompt > context:
            raise ScenarioError(f"prompt tokens ({prompt:,}) cannot exceed the context ({context:,} tokens)")
    mml = context if max_model_len is None else check_positive_int("max_model_len", max_model_len)
    if mml < context:
        raise ScenarioError(f"max_model_len ({mml:,}) is below the context ({context:,} tokens)")
    if spec.max_context_tokens and mml > spec.max_context_tokens:
        raise ScenarioError(f"max_model_len {mml:,} exceeds {spec.slug}'s maximum of "
                            f"{spec.max_context_tokens:,} tokens")
    mla = mla_cache or ENGINE_DEFAULT_MLA[engine]
    if mla not in MLA_MODES:
        raise ScenarioError(f"MLA cache mode '{mla_cache}' is not one of: {', '.join(MLA_MODES)}")
    if mla_cache is not None and not spec.is_mla:
        raise ScenarioError(f"MLA cache mode '{mla_cache}': {spec.slug} has no multi-head latent attention (MLA); "
                            f"the MLA cache option applies to MLA models only (e.g. DeepSeek-V3/R1); drop it")
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
        if a["vllm_memory_profile"] not in VLLM_PROFILES:
            raise ScenarioError(f"assumption vllm_memory_profile {a['vllm_memory_profile']!r} is not one of: "
                                f"{', '.join(VLLM_PROFILES)}")
    elif engine == "tensorrt-llm":
        frac = a["trtllm_kv_cache_free_gpu_mem_fraction"] if gpu_memory_utilization is None \
            else gpu_memory_utilization
        block, chunk, seqs = a["trtllm_tokens_per_block"], a["trtllm_max_num_tokens"], a["trtllm_max_batch_size"]
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
        chunk = check_positive_int("max_num_batched_tokens", max_num_batched_tokens)
    if max_num_seqs is not None:
        seqs = check_positive_int("max_num_seqs", max_num_seqs)
    if spec.is_mla and mla == "decompressed" and engine in ("vllm", "sglang"):
        notes.append("MLA cache decompressed: per-head K/V for all heads (about 71x the latent cache); "
                     "vLLM and SGLang cache the 576-value latent by default.")
    return Plan(spec=spec, gpu=g, engine=engine, precision=p, kv_precision=kv_name,
                kv_bytes=KV_PRECISION_BYTES[kv_name], mla_mode=mla, users=users, context_tokens=context,
                prompt_tokens=prompt, max_model_len=mml, block_size=int(block), chunk_tokens=int(chunk),
                sampler_seqs=int(seqs), memory_fraction=frac, cuda_graphs=not enforce_eager, compute=compute,
                notes=tuple(notes), a=a)


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
    gpus = check_positive_int("--gpus", gpus)
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


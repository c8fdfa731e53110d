"""Serving assumptions: engine defaults, runtime overheads and roofline efficiencies.

Every constant the serving estimator (``llmsizing.serving``, ``llmsizing.roofline``) uses lives here
with its source. Values calibrated on a published case name the case (its id in the validation set,
``lib/llmsizing/validation/cases.yaml``, or the public log it comes from) in ``source``.
"""

from llmsizing.assumptions import Assumption

GiB = 2**30
MiB = 2**20

ASSUMPTIONS = (
    # ------------------------------------------------------------------ scenario defaults
    Assumption(
        "serving_default_users", 3, "users",
        "The customer's question: 'what does it take to serve each DeepSeek-R1 family model to 3 concurrent users?'",
        "Concurrent users (sequences decoding at the same time) when none is given.",
        "serving-scenario",
    ),
    Assumption(
        "serving_default_context_tokens", 32768, "tokens",
        "DeepSeek-R1 README (deepseek-ai/DeepSeek-R1, 'Evaluation'): 'For all our models, the maximum generation "
        "length is set to 32,768 tokens'; reasoning answers are long, so a realistic request is a 4,096-token "
        "prompt plus a 28,672-token answer = 32,768 tokens",
        "Tokens each user holds in the KV cache at the end of a request (prompt + answer).",
        "serving-scenario",
    ),
    Assumption(
        "serving_default_prompt_tokens", 4096, "tokens",
        "Default split of the 32,768-token context: 4,096 prompt + 28,672 answer (reasoning trace). For a shorter "
        "context the prompt is context/8 (the same 1:7 split)",
        "Prompt tokens per request (prefill, time to first token) when none is given.",
        "serving-scenario",
    ),
    Assumption(
        "serving_max_nodes_search", 16, "nodes",
        "Planning limit: the layout search stops at 16 nodes (128 GPUs of an 8-GPU node); beyond that the "
        "result says it does not fit",
        "Largest number of nodes the smallest-layout search tries.",
        "serving-layout",
    ),
    # ------------------------------------------------------------------ device memory
    Assumption(
        "cuda_runtime_reserved_bytes", 450 * MiB, "bytes",
        "nvidia-smi total minus cudaMemGetInfo total: H100 80GB 81,559 MiB vs vLLM 'total_gpu_memory (79.22GiB)' "
        "(vllm-project/vllm PR 10511 / 12126 logs) = 438 MiB; RTX A6000 49,140 MiB vs PyTorch '47.54 GiB total "
        "capacity' OOM messages = 459 MiB",
        "Device memory the driver keeps out of what the CUDA runtime reports as total (catalog totals are nvidia-smi).",
        "runtime",
    ),
    Assumption(
        "activation_bytes_per_elem", 2, "bytes",
        "Activations run in the model dtype (bf16/fp16) in vLLM, SGLang and transformers",
        "Bytes per activation element in the prefill-chunk workspace estimate.",
        "runtime",
    ),
    Assumption(
        "sliding_window_kv_bounded", True, "bool",
        "vLLM V1 hybrid KV-cache manager (v0.10+), SGLang SWA pools, transformers HybridCache and llama.cpp's "
        "SWA cache keep only the window for sliding-window layers (Gemma-2, gpt-oss)",
        "Whether sliding-window layers hold at most the window in the KV cache.",
        "runtime",
    ),
    # ------------------------------------------------------------------ vLLM
    Assumption(
        "vllm_gpu_memory_utilization", 0.9, "fraction",
        "vLLM CacheConfig.gpu_memory_utilization default 0.9 (vllm/config.py; 'the current vLLM instance can use "
        "total_gpu_memory x gpu_memory_utilization' in vLLM's profiling log)",
        "Fraction of the device memory vLLM may use for weights, activations, non-torch memory and KV cache.",
        "serving-vllm",
    ),
    Assumption(
        "vllm_block_size", 16, "tokens",
        "vLLM CacheConfig.block_size default 16 on CUDA",
        "Tokens per paged KV-cache block; each sequence is rounded up to whole blocks.",
        "serving-vllm",
    ),
    Assumption(
        "vllm_mla_block_size", 64, "tokens",
        "vLLM forces block_size 64 for the FlashMLA backend used for DeepSeek MLA on Hopper and newer "
        "(vllm/platforms/cuda.py check_and_update_config: 'Forcing kv cache block size to 64 for FlashMLA backend')",
        "KV block size for MLA models on GPUs with FlashMLA (compute capability 9.0+).",
        "serving-vllm",
    ),
    Assumption(
        "vllm_max_num_batched_tokens_large", 8192, "tokens",
        "vLLM EngineArgs.get_batch_defaults: OPENAI_API_SERVER 8192 when device memory >= 70 GiB and not an A100 "
        "(H100, H200, MI300X); vllm/engine/arg_utils.py",
        "Prefill chunk (max_num_batched_tokens) vLLM profiles and schedules on large-memory GPUs.",
        "serving-vllm",
    ),
    Assumption(
        "vllm_max_num_batched_tokens_small", 2048, "tokens",
        "vLLM EngineArgs.get_batch_defaults: OPENAI_API_SERVER 2048 on other GPUs (A100, L40S, RTX, A10G)",
        "Prefill chunk (max_num_batched_tokens) on GPUs under 70 GiB and on A100s.",
        "serving-vllm",
    ),
    Assumption(
        "vllm_max_num_seqs_large", 1024, "sequences",
        "vLLM EngineArgs.get_batch_defaults: max_num_seqs 1024 (OPENAI_API_SERVER) on >= 70 GiB non-A100 GPUs",
        "Sequences the profile run samples at once (sampler workspace) on large-memory GPUs.",
        "serving-vllm",
    ),
    Assumption(
        "vllm_max_num_seqs_small", 256, "sequences",
        "vLLM EngineArgs.get_batch_defaults: max_num_seqs 256 on other GPUs",
        "Sequences the profile run samples at once on other GPUs.",
        "serving-vllm",
    ),
    Assumption(
        "vllm_large_defaults_min_memory_bytes", 70 * GiB, "bytes",
        "vLLM EngineArgs.get_batch_defaults: 'if device_memory >= 70 * GiB_bytes and \"a100\" not in device_name'",
        "Runtime-reported memory from which vLLM uses its larger batch defaults.",
        "serving-vllm",
    ),
    Assumption(
        "vllm_memory_profile", "v0.19", "vLLM generation",
        "vllm-project/vllm: v0.19 vllm/v1/worker/gpu/model_runner.py profile_run runs _dummy_run(max_num_tokens) then "
        "_dummy_sampler_run, so the torch peak is max(forward, sampler); mid-2025 V1 (PR 21429 debug log) and V0 "
        "(vllm/worker/worker.py determine_num_available_blocks) counted forward + sampler. Choices: v0.19, "
        "v1-mid-2025, v0",
        "Which vLLM memory-profiling generation the KV pool follows (how the sampler and forward peaks combine and "
        "how many bytes per logit the sampler holds).",
        "serving-vllm",
    ),
    Assumption(
        "vllm_sampler_bytes_per_logit", 15.0, "bytes",
        "vLLM v0.19.0 start-up logs (github.com/llm-d-incubation/llm-d-planner PR 205, accuracy/results/v0.19.0/"
        "logs), CALIBRATION SUBSET serving-oos-cal-kv: gemma-2-9b-it 'peak activation 3.65 GiB' at 1,024 x 256,000 "
        "logits = 14.95 B and Llama-3.1-8B TP1 1.89 GiB at 1,024 x 128,256 = 15.45 B -> 15 B per logit (fp32 "
        "logits, probabilities and the sampler's sort buffers)",
        "Bytes the v0.19 profile run's dummy sampler holds per (sequence x vocabulary) logit.",
        "serving-vllm",
    ),
    Assumption(
        "vllm_sampler_bytes_per_logit_v1_2025", 33.0, "bytes",
        "Calibrated on vLLM PR 21429's debug log for Qwen3-235B-A22B-FP8 TP4 (V1, mid-2025): torch peak increase "
        "5.62 GiB = forward workspace at 8,192 tokens (0.79 GiB by our formula) + sampler over 1,024 x 151,936 "
        "logits -> 33 B per logit (fp32 logits, sorted copy, int64 indices, softmax and cumsum of top-k/top-p)",
        "Bytes per logit of the dummy sampler in mid-2025 vLLM V1 (vllm_memory_profile v1-mid-2025).",
        "serving-vllm",
    ),
    Assumption(
        "vllm_sampler_bytes_per_logit_v0", 5.0, "bytes",
        "vllm-project/vllm issue 13061 (v0.7 V0, 2x RTX 4090, Qwen 14B): 'PyTorch activation peak memory takes "
        "0.19GiB' with 256 sequences x 152,064 logits -> ~5 B per logit (one fp32 logit row plus indices)",
        "Bytes per logit of the dummy sampler in vLLM V0 (vllm_memory_profile v0).",
        "serving-vllm",
    ),
    Assumption(
        "vllm_non_torch_bytes", int(0.16 * GiB), "bytes",
        "vLLM PR 12126 profiling log (H100, TP1): 'non_torch_memory takes 0.16GiB'",
        "Memory vLLM allocates outside PyTorch during profiling on one GPU (cuBLAS workspaces, kernels).",
        "serving-vllm",
    ),
    Assumption(
        "vllm_tp_comm_bytes", int(1.88 * GiB), "bytes",
        "vLLM PR 21429 debug log (Qwen3-235B-A22B-FP8, TP4, H200): 'non-torch forward increase memory: 2.04GiB' "
        "minus the 0.16 GiB of one GPU -> NCCL (incl. NVLS) and custom all-reduce buffers",
        "Extra non-torch memory per GPU when tensor or pipeline parallel (NCCL and custom all-reduce buffers).",
        "serving-vllm",
    ),
    Assumption(
        "vllm_cuda_graph_bytes", int(0.71 * GiB), "bytes",
        "vLLM startup log 'CUDA graph pool memory: 0.71 GiB (actual)' (public deployment notes, 2025-2026); "
        "vLLM V1 captures graphs after allocating the KV cache, so they live in the (1 - utilization) headroom",
        "CUDA-graph pool memory (zero with enforce_eager).",
        "serving-vllm",
    ),
    # ------------------------------------------------------------------ SGLang
    Assumption(
        "sglang_mem_fraction_static_tp1", 0.88, "fraction",
        "sgl-project/sglang python/sglang/srt/server_args.py __post_init__: mem_fraction_static 0.88 for tp 1",
        "SGLang static memory fraction (weights + KV pool) of the free memory at start, TP 1.",
        "serving-sglang",
    ),
    Assumption(
        "sglang_mem_fraction_static_tp2", 0.87, "fraction",
        "sgl-project/sglang server_args.py: 0.87 for tp >= 2", "SGLang mem_fraction_static, TP 2-3.", "serving-sglang",
    ),
    Assumption(
        "sglang_mem_fraction_static_tp4", 0.85, "fraction",
        "sgl-project/sglang server_args.py: 0.85 for tp >= 4", "SGLang mem_fraction_static, TP 4-7.", "serving-sglang",
    ),
    Assumption(
        "sglang_mem_fraction_static_tp8", 0.81, "fraction",
        "sgl-project/sglang server_args.py: 0.81 for tp >= 8 (0.83 in 2024 releases)",
        "SGLang mem_fraction_static, TP 8-15.", "serving-sglang",
    ),
    Assumption(
        "sglang_mem_fraction_static_tp16", 0.79, "fraction",
        "sgl-project/sglang server_args.py: 0.79 for tp >= 16", "SGLang mem_fraction_static, TP 16+.",
        "serving-sglang",
    ),
    Assumption(
        "sglang_chunked_prefill_size", 8192, "tokens",
        "sgl-project/sglang server_args.py: chunked_prefill_size 8192 (2048 when GPU memory < 25,000 MB)",
        "Prefill chunk SGLang runs at once on GPUs with 25 GB or more.",
        "serving-sglang",
    ),
    Assumption(
        "sglang_chunked_prefill_size_small", 2048, "tokens",
        "sgl-project/sglang server_args.py: chunked_prefill_size 2048 when gpu_mem < 25_000 MB",
        "Prefill chunk on GPUs under 25 GB.", "serving-sglang",
    ),
    # ------------------------------------------------------------------ TensorRT-LLM
    Assumption(
        "trtllm_kv_cache_free_gpu_mem_fraction", 0.9, "fraction",
        "NVIDIA/TensorRT-LLM tensorrt_llm/_torch/pyexecutor/_util.py KvCacheCreator._get_free_gpu_memory_fraction: "
        "KvCacheConfig.free_gpu_memory_fraction default 0.9 of the memory free after the profiling peak; "
        "TensorRT-LLM issue 1400: 'Allocate 69524783104 bytes for k/v cache' = 0.9 x the ~72 GiB left on an A100",
        "Fraction of the memory left after weights, activations and runtime that TensorRT-LLM gives the KV cache.",
        "serving-trtllm",
    ),
    Assumption(
        "trtllm_tokens_per_block", 32, "tokens",
        "NVIDIA/TensorRT-LLM KvCacheConfig / BuildConfig tokens_per_block default 32",
        "Tokens per paged KV block in TensorRT-LLM.", "serving-trtllm",
    ),
    Assumption(
        "trtllm_max_num_tokens", 8192, "tokens",
        "NVIDIA/TensorRT-LLM trtllm-serve --max_num_tokens default 8192 (docs: 'trtllm-serve' command reference)",
        "Tokens per scheduled batch (prefill chunk budget) TensorRT-LLM profiles and schedules.", "serving-trtllm",
    ),
    Assumption(
        "trtllm_max_batch_size", 2048, "sequences",
        "NVIDIA/TensorRT-LLM trtllm-serve --max_batch_size default 2048 (docs: 'trtllm-serve' command reference)",
        "Most sequences TensorRT-LLM runs in one batch.", "serving-trtllm",
    ),
    # ------------------------------------------------------------------ transformers
    Assumption(
        "transformers_usable_fraction", 0.95, "fraction",
        "PyTorch caching allocator fragmentation: reserved exceeds allocated by a few percent "
        "(PyTorch 'CUDA semantics: memory management'); transformers pre-allocates nothing",
        "Fraction of runtime memory transformers generate() can fill before fragmentation causes OOM.",
        "serving-transformers",
    ),
    Assumption(
        "transformers_logit_copies", 2, "copies",
        "transformers generate(): last-token logits upcast to fp32, plus the processed scores / probabilities",
        "fp32 copies of the (users x vocabulary) logits alive during sampling.",
        "serving-transformers",
    ),
    # ------------------------------------------------------------------ llama.cpp
    Assumption(
        "llamacpp_default_precision", "q4_k_m", "GGUF type",
        "Q4_K_M is the most downloaded GGUF quantization and the llama.cpp README's recommended size/quality "
        "trade-off (tools/quantize/README.md)",
        "Weight format for --engine llama.cpp when no precision is given.",
        "serving-llamacpp",
    ),
    Assumption(
        "llamacpp_ubatch_tokens", 512, "tokens",
        "llama.cpp common/common.h: n_ubatch = 512 (physical batch)",
        "Tokens llama.cpp processes per compute-graph evaluation (sizes the compute buffer).",
        "serving-llamacpp",
    ),
    Assumption(
        "llamacpp_ctx_pad_tokens", 256, "tokens",
        "llama.cpp pads the KV-cache size (n_ctx) to a multiple of 256 (llama_kv_cache::get_padding)",
        "Granularity of the llama.cpp KV cache size.",
        "serving-llamacpp",
    ),
    Assumption(
        "llamacpp_compute_bytes_per_elem", 4, "bytes",
        "ggml CUDA compute graphs keep intermediate activations and logits in F32",
        "Bytes per element of the llama.cpp compute buffer.",
        "serving-llamacpp",
    ),
    Assumption(
        "llamacpp_embeddings_on_cpu", True, "bool",
        "llama.cpp keeps token_embd (the input layer) in host memory; only the repeating layers and the output "
        "layer are offloaded ('offloaded 33/33 layers to GPU')",
        "Whether the token-embedding matrix is excluded from GPU memory under llama.cpp.",
        "serving-llamacpp",
    ),
    # ------------------------------------------------------------------ roofline
    Assumption(
        "decode_bandwidth_efficiency", 0.85, "fraction",
        "Calibrated on lmdeploy#210 (InternLM/lmdeploy issue 210): Llama-2-7B fp16, batch 1 on one A10 "
        "(600 GB/s) decodes at 27 ms/token with TurboMind; with the per-layer and per-step times below, 0.85 of "
        "peak gives 28.5 ms. LLM-Viewer#4 (github.com/hahnyuan/LLM-Viewer issue 4): a pure roofline is 1.44-1.91x faster than TRT-LLM, "
        "which these factors absorb",
        "Fraction of peak HBM/GDDR bandwidth reached when reading dense weights and the KV cache in decode.",
        "serving-roofline",
    ),
    Assumption(
        "moe_bandwidth_efficiency", 0.55, "fraction",
        "Calibrated with decode_layer_latency_s on InferenceX#870 (SemiAnalysisAI/InferenceX issue 870): "
        "DeepSeek-R1-0528 FP8, SGLang 0.5.7 TP8 on 8x H200, 1k/1k tokens, mean TPOT 12.8 / 17.2 / 25.6 / 34.6 ms "
        "at 8 / 16 / 32 / 64 concurrent requests (fit within 7%)",
        "Fraction of peak bandwidth reached when reading routed-expert weights (fused MoE kernels, few tokens per "
        "expert).",
        "serving-roofline",
    ),
    Assumption(
        "moe_bandwidth_efficiency_vllm", 0.15, "fraction",
        "CALIBRATION SUBSET serving-oos-cal-r1: GPUStack performance lab (gpustack/gpustack docs/performance-lab), "
        "DeepSeek-R1-0528 FP8 on 8x H200, vLLM 0.11 TP8, ShareGPT at concurrency 4: mean TPOT 19.36 ms -> 0.146 "
        "of peak bandwidth for the routed experts (with decode_layer_latency_s and decode_step_overhead_s); vLLM's "
        "MLA + fused-MoE decode at TP8 is 2-4x slower than SGLang 0.5.7's (InferenceX#870)",
        "Fraction of peak bandwidth vLLM's fused-MoE decode reaches when reading routed-expert weights.",
        "serving-roofline",
    ),
    Assumption(
        "moe_bandwidth_efficiency_trtllm", 0.22, "fraction",
        "CALIBRATION SUBSET serving-oos-cal-trtllm-moe: TensorRT-LLM DeepSeek-R1 best-practice blog "
        "(NVIDIA/TensorRT-LLM docs/source/blogs, max-throughput on 8x H200, FP8, attention DP 8 + EP 8, 1,024 "
        "concurrent 1K/2K requests): 11,489 output tokens/s -> 0.22 of peak bandwidth for the routed experts in "
        "the attention-DP step (the routed-expert GEMMs at ~32 tokens per expert, with all-to-all over NVLink)",
        "Fraction of peak bandwidth TensorRT-LLM's MoE decode reaches when reading routed-expert weights.",
        "serving-roofline",
    ),
    Assumption(
        "moe_bandwidth_efficiency_rocm", 0.07, "fraction",
        "CALIBRATION SUBSET serving-oos-cal-rocm: dstack benchmark (dstackai/benchmarks, DeepSeek-R1 on 8x MI300X, "
        "raw CSV), SGLang 0.4.2.post4 on ROCm 6.3, TP8, 3,200 in / 800 out at concurrency 4: mean TPOT 34.9 ms -> "
        "0.069 of peak bandwidth for the routed experts (early-2025 ROCm fused-MoE and MLA kernels)",
        "Fraction of peak bandwidth MoE decode reaches on AMD Instinct GPUs (ROCm kernels), any engine.",
        "serving-roofline",
    ),
    Assumption(
        "flop_efficiency", 0.5, "fraction",
        "Typical model FLOP utilization of large dense prefill GEMMs with FlashAttention on A100/H100 "
        "(40-60%); not calibrated on a measured TTFT",
        "Fraction of the dense tensor-core peak a dense model reaches in prefill and compute-bound decode.",
        "serving-roofline",
    ),
    Assumption(
        "moe_flop_efficiency", 0.18, "fraction",
        "Calibrated on B-deepseek-prod-h800-node-throughput: 73.7k input tokens/s per H800 node with 56.3% "
        "KV-cache hits = 32.2k computed tokens/s x ~87.5 GFLOP/token (2 x 37.5B active + MLA attention at "
        "~2.5k tokens) = 2.8 PFLOP/s per node = 18% of 8 x 1,979 TFLOP/s FP8",
        "Fraction of the dense tensor-core peak an MoE model (grouped expert GEMMs, routing) reaches.",
        "serving-roofline",
    ),
    Assumption(
        "prefill_flop_efficiency_batched", 0.70, "fraction",
        "CALIBRATION SUBSET serving-oos-cal-nim (NVIDIA NIM 1.8 benchmark table, Llama-3.3-70B FP8 TP2 on 2x H100, "
        "5,000 in / 500 out): with the decode step fixed by c=1 (ITL 18.58 ms), the mean ITL at c=25 (38.75 ms) "
        "needs prompt chunks batched into decode steps at 0.70 of the FP8 dense peak (0.45 for one prompt alone)",
        "Fraction of the dense tensor-core peak that prompt chunks batched into decode steps reach "
        "(continuous batching with chunked prefill).",
        "serving-roofline",
    ),
    Assumption(
        "moe_prefill_flop_efficiency_bf16", 0.27, "fraction",
        "CALIBRATION SUBSET serving-oos-cal-moe-prefill: GPUStack performance lab, Qwen3-235B-A22B-2507 BF16 on "
        "8x H100, vLLM 0.11 TP8, 100 random 32,000-token prompts: 22,658 total tokens/s = 0.265 of the BF16 dense "
        "peak counting 2 x 22B active weights and causal attention per token (FP8 MoE keeps moe_flop_efficiency)",
        "Fraction of the BF16 dense peak MoE prefill (grouped expert GEMMs in 16-bit) reaches.",
        "serving-roofline",
    ),
    Assumption(
        "ttft_floor_s_vllm", 0.055, "s",
        "CALIBRATION SUBSET serving-oos-cal-ttft: GPUStack performance lab (gpustack/gpustack docs/performance-lab), "
        "Qwen3-8B on one H100, vLLM 0.11, ShareGPT at concurrency 4: mean TTFT 64 ms against ~9 ms of GPU time -> "
        "55 ms of API server, tokenizer, scheduling and waiting for the running step",
        "Fixed time vLLM's OpenAI server adds to a request's time to first token.",
        "serving-roofline",
    ),
    Assumption(
        "ttft_floor_s_sglang", 0.019, "s",
        "GPUStack performance lab (same page as ttft_floor_s_vllm, not a scored case): Qwen3-8B on one H100, "
        "SGLang 0.5.3, ShareGPT c=4: mean TTFT 28 ms against ~9 ms of GPU time",
        "Fixed time SGLang's server adds to a request's time to first token.",
        "serving-roofline",
    ),
    Assumption(
        "ttft_floor_s_trtllm", 0.043, "s",
        "GPUStack performance lab (same page, not a scored case): Qwen3-8B on one H100, TensorRT-LLM 1.2.0rc1 "
        "(trtllm-serve), ShareGPT c=4: mean TTFT 52 ms against ~9 ms of GPU time",
        "Fixed time trtllm-serve adds to a request's time to first token.",
        "serving-roofline",
    ),
    Assumption(
        "speculative_draft_tokens", 1, "tokens",
        "DeepSeek-V3 Technical Report (arXiv:2412.19437) §2.2 and §5.4.3: one MTP module predicts one additional "
        "token; vLLM --speculative-config num_speculative_tokens and SGLang --speculative-num-steps default to it",
        "Draft tokens proposed per step with --speculative mtp|eagle.",
        "serving-speculative",
    ),
    Assumption(
        "speculative_acceptance_mtp", 0.85, "fraction",
        "DeepSeek-V3 Technical Report (arXiv:2412.19437) §5.4.3: 'the acceptance rate of the second token "
        "prediction ranges between 85% and 90%' (lower end taken)",
        "Probability a DeepSeek MTP draft token is accepted (given the previous one was).",
        "serving-speculative",
    ),
    Assumption(
        "speculative_acceptance_eagle", 0.7, "fraction",
        "EAGLE (Li et al. 2024, arXiv:2401.15077) Table 'acceptance rate': 0-alpha about 0.7-0.8 for chain drafts on "
        "MT-bench (lower end taken: general chat traffic, draft heads trained on other data)",
        "Probability an EAGLE draft token is accepted (given the previous one was).",
        "serving-speculative",
    ),
    Assumption(
        "decode_step_overhead_s", 0.0015, "s",
        "Per-step scheduler, sampling and CUDA-graph launch time of vLLM V1 / SGLang (about 1-2 ms per step at "
        "small batch); GPU time only: the API server, tokenizer and network add more to a measured TTFT",
        "Fixed time added to every decode step and to the prefill.",
        "serving-roofline",
    ),
    Assumption(
        "decode_layer_latency_s", 3.0e-5, "s",
        "Calibrated with moe_bandwidth_efficiency on InferenceX#870 (DeepSeek-R1 FP8, 8x H200, see above); "
        "about 30 us of kernel launches and latency-bound small kernels per decoder layer per step",
        "Fixed time per decoder layer per step (kernel launches and small, latency-bound kernels).",
        "serving-roofline",
    ),
    Assumption(
        "allreduce_latency_nvlink_s", 1.0e-5, "s",
        "NCCL / vLLM custom all-reduce small-message latency on NVLink/NVSwitch: about 5-15 us (nccl-tests)",
        "Latency of one tensor-parallel all-reduce over NVLink.",
        "serving-roofline",
    ),
    Assumption(
        "allreduce_latency_pcie_s", 3.0e-5, "s",
        "NCCL all-reduce small-message latency over PCIe without NVLink: tens of microseconds (nccl-tests)",
        "Latency of one tensor-parallel all-reduce over PCIe.",
        "serving-roofline",
    ),
    Assumption(
        "internode_hop_latency_s", 5.0e-6, "s",
        "Calibrated on tt-inference-server#356 (tenstorrent/tt-inference-server issue 356): DeepSeek-R1-0528 "
        "on 16x H100 (SGLang TP16 over InfiniBand), concurrency 1, TPOT 23.1 ms; a ring all-reduce across "
        "nodes takes 2(n-1) hops of a few microseconds each (NCCL ring algorithm)",
        "Latency of one hop of an inter-node ring all-reduce (and of one pipeline send across nodes).",
        "serving-roofline",
    ),
    Assumption(
        "internode_bytes_per_s", 50e9, "bytes/s",
        "One 400 Gb/s NIC per GPU (DGX/HGX H100, AWS p5) = 50 GB/s per GPU per direction",
        "Inter-node bandwidth per GPU for tensor-parallel collectives that cross nodes.",
        "serving-roofline",
    ),
)

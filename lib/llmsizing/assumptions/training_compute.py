"""Assumptions of the training-compute model (``training_compute.py``): utilisation and overheads.

MFU here is model-FLOP utilisation at large micro-batches: model FLOP per token (6N + 3A full,
4N + 6N_adapter + 3A LoRA/QLoRA; attention over the full s×s square) × tokens/s ÷ dense peak of
the compute precision. Slowdowns that do not scale with FLOP are separate assumptions: the
recompute forward of gradient checkpointing (``recompute_time_fraction``), host/kernel-launch
overhead at small micro-batches (``host_overhead_s_per_layer``) and QLoRA's dequantization
(``qlora_dequant_bytes_per_param``).

Calibration (tests/test_training_throughput.py reproduces every case within 20%):
- hopper full: LLM Foundry MPT 1B-70B on H100 (C-llmfoundry-*), Llama 3 405B on 8K-16K H100
  (C-llama3-405b-*), DeepSeek-V3 on 2048 H800 (C-deepseek-v3-*);
- ampere full: Megatron-LM weak-scaling table and GPT-3 175B rows on A100 (C-megatron-*);
- ampere lora / qlora: Qwen (v1) README "Profiling of Memory and Speed", Qwen-1.8B/7B/14B LoRA and
  Q-LoRA on one A100-SXM4-80G (github.com/QwenLM/Qwen README.md);
- other classes: engineering estimates relative to the calibrated ones (stated per entry).
"""

from llmsizing.assumptions import Assumption

_FOUNDRY = ("C-llmfoundry-mpt1b-h100-8gpu-2k, C-llmfoundry-mpt7b-h100-8gpu-2k, C-llmfoundry-mpt7b-h100-8gpu-8k, "
            "C-llmfoundry-mpt13b-h100-8gpu-2k, C-llmfoundry-mpt30b-h100-8gpu-2k, C-llmfoundry-mpt70b-h100-64gpu-2k "
            "(github.com/mosaicml/llm-foundry scripts/train/benchmarking/README.md: MFU 38-46%)")
_LLAMA3 = ("C-llama3-405b-8k-gpus, C-llama3-405b-16k-gpus, C-llama3-405b-16k-gpus-128k-ctx (arXiv:2407.21783 "
           "Table 4: BF16 MFU 43%, 41%, 38%)")
_DSV3 = ("C-deepseek-v3-per-trillion-tokens, C-deepseek-v3-total-gpu-hours (arXiv:2412.19437: 180K H800 hours per "
         "trillion tokens; ~44% of the BF16 peak in model FLOP with MTP, although trained in FP8)")
_MEGATRON = ("C-megatron-1.7b ... C-megatron-1008b and C-megatron-gpt3-175b-* (arXiv:2104.04473 Tables 1-2: "
             "135-163 achieved TFLOP/s of 312 with full recompute, i.e. 33-39% MFU)")
_QWEN = ("Qwen (v1) README 'Profiling of Memory and Speed' (github.com/QwenLM/Qwen): Qwen-1.8B/7B/14B LoRA r=64 on "
         "all linear layers and Q-LoRA (GPTQ int4), one A100-SXM4-80G, bf16, flash-attention 2, gradient "
         "checkpointing, batch 1 × 8 accumulation, 256-8192 tokens")

# Large-micro-batch MFU per method and GPU class.
_MFU = {
    ("full", "hopper"): (0.44, _FOUNDRY + "; " + _LLAMA3 + "; " + _DSV3 + ". Tuned stacks (Composer/FSDP, Meta's "
                         "4D parallelism, HAI-LLM); a plain Hugging Face Trainer reaches less"),
    ("full", "ampere"): (0.43, _MEGATRON + " and C-korthikanti-e2e-22b/175b/530b/1t (arXiv:2205.05198 Table 5, "
                         "the 2022 Megatron stack, ~10-20% faster): 0.43 keeps every one of these A100 cases within "
                         "20% (with recompute_time_fraction 0.5 the 2021 table alone implies 0.38-0.45)"),
    ("full", "ada"): (0.30, "engineering estimate: no published training MFU found for L4/L40S/RTX 4090; Ada "
                      "cards are power- and bandwidth-limited (L40S 864 GB/s for 362 TFLOP/s bf16), so below "
                      "Ampere/Hopper data-centre parts"),
    ("full", "blackwell"): (0.40, "engineering estimate: no published B200 training MFU in the reference set; "
                            "slightly below Hopper while kernels mature"),
    ("full", "other"): (0.30, "engineering estimate for AMD MI300X, Gaudi, Ascend and pre-Ampere NVIDIA: public "
                        "training MFU reports for these are below H100 with the same frameworks"),
}
# LoRA / QLoRA relative to full. Two effects pull in opposite directions: each adapted layer adds
# rank-r GEMMs, dropout and elementwise adds that are memory-bound (~12% of a 7B LoRA step on
# A100 by their HBM traffic), while the full-fine-tuning calibration comes from multi-node runs
# whose end-to-end throughput also pays communication and pipeline bubbles, and the LoRA one from
# single-GPU runs that pay none. Qwen's single-A100 LoRA rows (7B and 14B, 512-4096 tokens) give
# 0.43 with recompute_time_fraction 0.5, i.e. 1.0 × mfu_full_ampere (which the 2021 and 2022 Megatron
# A100 runs put at 0.43 as well): the two effects cancel.
_LORA_FACTOR = 1.0


def _entries():
    out = []
    for (method, cls), (value, source) in _MFU.items():
        out.append(Assumption(
            f"mfu_{method}_{cls}", value, "fraction", source,
            f"Model-FLOP utilisation of {method} fine-tuning on {cls} GPUs at large micro-batches "
            "(model FLOP per token × tokens/s ÷ dense peak).", "training-compute"))
    for method in ("lora", "qlora"):
        for cls in ("hopper", "ampere", "ada", "blackwell", "other"):
            base = _MFU[("full", cls)][0]
            value = round(base * _LORA_FACTOR, 2)
            what = ("QLoRA dequantization is modelled separately (qlora_dequant_bytes_per_param), so the GEMM "
                    "utilisation equals LoRA's. " if method == "qlora" else "")
            out.append(Assumption(
                f"mfu_{method}_{cls}", value, "fraction",
                f"{what}mfu_full_{cls} × {_LORA_FACTOR}: fitted on {_QWEN} (LoRA 7B/14B, 512-4096 tokens); the "
                "adapters' own memory-bound kernels (~12% of a step) are offset by the absence of the "
                "communication that the multi-node full-fine-tuning calibration runs paid",
                f"Model-FLOP utilisation of {method} fine-tuning on {cls} GPUs at large micro-batches.",
                "training-compute"))
    return out


ASSUMPTIONS = tuple(_entries()) + (
    Assumption(
        "recompute_time_fraction", 0.5, "fraction",
        "between Korthikanti et al. 2022 (arXiv:2205.05198) Table 4, where full recompute costs 39% more time "
        "for 33% more FLOP at a fixed micro-batch (C-korthikanti-22b-layer-times, ≈1.2), and LLM Foundry, "
        "where checkpointed runs keep MFU within ~10% of the others because bigger micro-batches fit "
        "(C-llmfoundry-*, ≈0.3)",
        "Share of the gradient-checkpointing recompute FLOP (and of flash attention's backward recompute) "
        "that shows up as extra time.", "training-compute"),
    Assumption(
        "host_overhead_s_per_layer", 0.005, "s",
        _QWEN + ": at 256-512 tokens per micro-step the time per step stops falling (1.8B: 1.0 s per 8 "
        "micro-steps at both lengths), i.e. ~5 ms per decoder layer per micro-step (1.8B 5.2, 7B 4.7, "
        "14B 5.0 ms) of Python and kernel-launch time in eager PyTorch",
        "Host time per decoder layer per micro-step (forward, recompute and backward launches); a micro-step "
        "takes at least this × layers, however few tokens it holds.", "training-compute"),
    Assumption(
        "qlora_dequant_bytes_per_param", 10.0, "bytes",
        "bitsandbytes dequantizes each 4-bit weight to bf16 before every GEMM (forward, input-gradient and "
        "recompute passes): ideal traffic is 0.5 B read + 2 B written per weight, ~4× that in practice; "
        "calibrated on bitsandbytes issue #465 (NF4 LoRA on an RTX A5000: '20-100% drop for 7B model "
        "depending on batch size' vs 16-bit LoRA). Qwen's Q-LoRA uses auto-gptq kernels, ~2× slower still",
        "Effective HBM bytes moved per quantized weight element per pass when QLoRA dequantizes it.",
        "training-compute"),
)

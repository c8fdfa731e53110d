"""Fine-tuning memory against published measurements (shared/reference/calibration.yaml, category
A-finetune-memory, and C-zero-figure1-model-states-7.5b).

Each case compares the figure the source measured: ``reserved`` (torch.cuda.max_memory_reserved,
torchtune's memory stats), ``total`` (device level: nvidia-smi / W&B system metrics, as the PEFT
docs' screenshots and numbers are) or ``model_states`` (ZeRO's analytical Figure 1). The test
prints every case's error and asserts the issue's bars: median |error| <= 10 %, max <= 25 %.

Configurations, and where each comes from:

- torchtune Llama 3.1 8B (README "Memory and training speed", ~Sept 2024): batch 2, packed to
  2048 tokens, torch.compile, bf16 (pure: torchtune keeps weights, gradients, AdamW moments and
  LoRA adapters in bf16), chunked cross-entropy (``CEWithChunkedOutputLoss``, 8 chunks), recipes
  from the stored configs: full = bitsandbytes ``PagedAdamW8bit`` stepped inside backward
  (``optimizer_in_bwd``); LoRA/QLoRA = rank 8, alpha 16, q/k/v/output_proj + MLP, dropout 0,
  fused AdamW. Two settings the table does not restate are inferred from its own numbers:
  (1) the RTX 4090 rows run activation checkpointing *with activation offloading* — 16.2 GiB for
  LoRA is less than the bf16 weights (14.96 GiB) + checkpointed layer inputs (32 × 4096 × 4096 ×
  2 B = 1 GiB) + bf16 logits chunks (4096 × 128,256 × 2 B = 0.98 GiB) that any non-offloading run
  holds at once; (2) the RTX A6000 rows run *without* activation checkpointing — the same recipe
  takes 14 GiB more on the A6000 and runs 1.5× faster on a card with no more bf16 throughput than
  the 4090 (165 vs 155 TFLOP/s), which is the recompute forward (4N + 2N → 4N) disappearing.
  bitsandbytes' paged states live in CUDA managed memory, which max_memory_reserved does not see.
- PEFT Llama-2-70B (huggingface/peft docs/source/accelerate/deepspeed.md and fsdp.md, launch
  commands quoted there): ultrachat packed to 2048 tokens, flash-attention 2, LoRA r 8, alpha 16,
  dropout 0.1, all-linear, TrainingArguments bf16 (autocast), gradient checkpointing. DeepSpeed
  ZeRO-3 converts the fp32-loaded model to bf16; FSDP keeps the fp32-loaded frozen weights as fp32
  shards and gathers bf16 copies (``base_weights="fp32"``). QLoRA: NF4 with double quantization,
  bf16 quant storage.
- ZeRO Figure 1: Ψ = 7.5 B, Nd = 64, K = 12 (mixed-precision Adam); the model-state bytes per
  parameter of any model times 7.5e9 (the accounting is linear in Ψ).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing.training.memory import FinetuneSetup, finetune_memory, model_state_bytes

pytestmark = pytest.mark.published

GiB, GB = 2**30, 10**9
CONFIGS = Path(__file__).parent / "data" / "configs"
MEDIAN_BAR, MAX_BAR = 0.10, 0.25

TORCHTUNE = dict(precision="bf16", seq_len=2048, micro_batch=2, compiled=True, chunked_cross_entropy=True)
TT_FULL = dict(method="full", optimizer="paged-adamw-8bit", optimizer_in_backward=True, **TORCHTUNE)
TT_LORA = dict(method="lora", lora_rank=8, lora_alpha=16, lora_targets="all-linear", optimizer="adamw", **TORCHTUNE)
PEFT = dict(method="lora", precision="mixed-bf16", seq_len=2048, lora_rank=8, lora_alpha=16, lora_dropout=0.1,
            lora_targets="all-linear", gradient_checkpointing=True, attention_kernel="flash", zero=3)

# (calibration id, model, setup, gpu, what was measured, measured bytes)
CASES = [
    ("A-torchtune-llama31-8b-full-4090", "llama-3.1-8b",
     dict(gradient_checkpointing=True, activation_offload=True, **TT_FULL), "rtx-4090", "reserved", 18.9 * GiB),
    ("A-torchtune-llama31-8b-full-a6000", "llama-3.1-8b",
     dict(gradient_checkpointing=False, **TT_FULL), "rtx-a6000", "reserved", 37.4 * GiB),
    ("A-torchtune-llama31-8b-lora-4090", "llama-3.1-8b",
     dict(gradient_checkpointing=True, activation_offload=True, **TT_LORA), "rtx-4090", "reserved", 16.2 * GiB),
    ("A-torchtune-llama31-8b-lora-a6000", "llama-3.1-8b",
     dict(gradient_checkpointing=False, **TT_LORA), "rtx-a6000", "reserved", 30.3 * GiB),
    ("A-torchtune-llama31-8b-qlora-4090", "llama-3.1-8b",
     dict(gradient_checkpointing=True, activation_offload=True, **{**TT_LORA, "method": "qlora"}), "rtx-4090",
     "reserved", 7.4 * GiB),
    # "64 GB (80%)" of an H100 80GB in a W&B GPU-memory screenshot: 80 % of the device.
    ("A-peft-llama2-70b-lora-zero3-8xh100", "llama-2-70b",
     dict(micro_batch=8, dp=8, zero_backend="deepspeed", grad_accumulation=4, **PEFT), "h100-80gb", "total",
     0.80 * 81559 * 2**20),
    ("A-peft-llama2-70b-qlora-zero3-2gpu", "llama-2-70b",
     dict(micro_batch=2, dp=2, zero_backend="deepspeed", grad_accumulation=2, **{**PEFT, "method": "qlora"}),
     "a100-40gb", "total", 36.6 * GB),
    # "72-80 GB (90-98%)": the middle of the range (the top end includes a FULL_STATE_DICT save).
    ("A-peft-llama2-70b-lora-fsdp-8xh100", "llama-2-70b",
     dict(micro_batch=8, dp=8, zero_backend="fsdp", grad_accumulation=4, base_weights="fp32", **PEFT),
     "h100-80gb", "total", 76 * GB),
    ("A-peft-llama2-70b-qlora-fsdp-nooffload-2gpu", "llama-2-70b",
     dict(micro_batch=2, dp=2, zero_backend="fsdp", grad_accumulation=2, **{**PEFT, "method": "qlora"}),
     "h100-80gb", "total", 35.6 * GB),
]

# ZeRO Figure 1 (GB = 1e9 B per GPU): baseline DP, P_os, P_os+g, P_os+g+p.
ZERO_FIGURE = {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9}

# Printed for reference, not asserted (reason).
REPORTED_ONLY = [
    ("A-peft-llama2-70b-qlora-fsdp-offload-2gpu", "llama-2-70b",
     dict(micro_batch=2, dp=2, zero_backend="fsdp", grad_accumulation=2, offload="optimizer+params",
          **{**PEFT, "method": "qlora"}), "rtx-4090", "total", 19.6 * GB,
     "the source's own caveat: 'GPU Memory saving when using CPU Offloading is untested at present'"),
]

SKIPPED = {
    "A-peft-t0_3b-full / -lora / -lora-ds-offload, A-peft-readme-ds-zero3-offload-log":
        "T5 encoder-decoder: not a supported family",
    "A-peft-mt0xxl-lora / -lora-ds-offload / -full-oom": "mT5 encoder-decoder: not a supported family",
    "A-peft-bloomz7b1-lora / -lora-ds-offload / -full-oom": "BLOOM: not a supported family",
    "A-torchtune-llama2-7b-* (5 rows)": "configs not pinned: unpacked alpaca batches padded per batch (length "
                                        "varies), recipe defaults changed between the linked config versions",
    "A-torchtune-llama31-70b-full-8xa100, -70b-lora-8xa100, -405b-qlora-8xa100":
        "medium confidence: FSDP wrapping, CPU offload and LoRA targets at measurement time not restated",
    "A-unsloth-vram-requirements-guidance, A-llamafactory-hardware-estimates": "guidance tables, not measurements",
}


def _model(name: str):
    path = CONFIGS / name / "config.json"
    return catalog.load_model(str(path) if path.exists() else name)


def _estimate(model, setup_kwargs, gpu, metric):
    m = finetune_memory(_model(model), FinetuneSetup(**setup_kwargs), catalog.load_gpu(gpu))
    return getattr(m, metric), m


def calibration_table() -> list[dict]:
    rows = []
    for cid, model, kw, gpu, metric, measured in CASES:
        est, m = _estimate(model, kw, gpu, metric)
        rows.append(dict(id=cid, metric=metric, measured=measured, estimate=est, error=est / measured - 1,
                         fits=m.fits, phase=m.phase))
    spec = _model("llama-2-7b")
    P = A.params_transformers(spec)
    for zero, value in ZERO_FIGURE.items():
        states = model_state_bytes(spec, FinetuneSetup(method="full", precision="mixed-bf16", zero=zero, dp=64))
        est = states["total"] / P * 7.5e9
        rows.append(dict(id=f"C-zero-figure1-model-states-7.5b (stage {zero})", metric="model_states",
                         measured=value * GB, estimate=est, error=est / (value * GB) - 1, fits=True, phase="-"))
    return rows


def _print(rows, extra=()):
    print(f"\n{'case':52s} {'measured as':12s} {'measured':>10s} {'estimate':>10s} {'error':>8s}")
    for r in list(rows) + list(extra):
        print(f"{r['id']:52s} {r['metric']:12s} {r['measured'] / GB:8.2f}GB {r['estimate'] / GB:8.2f}GB "
              f"{r['error']:+8.1%}{'  (not asserted)' if r.get('reported_only') else ''}")


def test_published_finetune_memory_within_bars():
    rows = calibration_table()
    extra = []
    for cid, model, kw, gpu, metric, measured, _why in REPORTED_ONLY:
        est, _ = _estimate(model, kw, gpu, metric)
        extra.append(dict(id=cid, metric=metric, measured=measured, estimate=est, error=est / measured - 1,
                          reported_only=True))
    _print(rows, extra)
    errors = [abs(r["error"]) for r in rows]
    median, worst = statistics.median(errors), max(errors)
    print(f"median |error| {median:.1%}, max {worst:.1%} over {len(rows)} cases")
    for name, why in SKIPPED.items():
        print(f"skipped {name}: {why}")
    assert median <= MEDIAN_BAR, f"median |error| {median:.1%} > {MEDIAN_BAR:.0%}"
    assert worst <= MAX_BAR, f"max |error| {worst:.1%} > {MAX_BAR:.0%}: " + ", ".join(
        f"{r['id']} {r['error']:+.1%}" for r in rows if abs(r["error"]) > MAX_BAR)


def test_measured_runs_fit_their_gpus():
    for r in calibration_table():
        assert r["fits"], r["id"]


def test_qlora_paper_65b_fits_one_48gb_gpu():
    """A-qlora-paper-65b-single-48gb: NF4 + double quantization + paged AdamW, LoRA on all linear
    layers (r 64, alpha 16, dropout 0.05), gradient checkpointing; qlora repo scripts: batch 1,
    512 target tokens."""
    s = FinetuneSetup(method="qlora", qlora_quant="nf4-dq", precision="mixed-bf16", optimizer="paged-adamw",
                      seq_len=512, micro_batch=1, lora_rank=64, lora_alpha=16, lora_dropout=0.05)
    m = finetune_memory(_model("llama-65b"), s, catalog.load_gpu("rtx-a6000"))
    assert m.fits
    assert m.reserved + m.overhead < 48 * GB


def test_qlora_paper_65b_full_16bit_needs_over_780gb():
    """A-qlora-paper-65b-full16bit: > 780 GB for 16-bit full fine-tuning of LLaMA-65B."""
    spec = _model("llama-65b")
    s = FinetuneSetup(method="full", precision="mixed-bf16", seq_len=512)
    assert model_state_bytes(spec, s)["total"] > 780 * GB
    assert not finetune_memory(spec, s, catalog.load_gpu("h100-80gb")).fits

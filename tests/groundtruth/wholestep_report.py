"""The whole-step comparison: measured peak (``wholestep.measure_whole_step``) against
``llmsizing.training.finetune_memory(...).allocated`` for the tiny configs, and the table of
/work/data/wholestep_findings.md.

    PYTHONPATH=lib python -m tests.groundtruth.wholestep_report > table.md
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .wholestep import measure_whole_step

CONFIG_DIR = Path(__file__).parent / "configs"
FAMILIES = ("tiny-llama", "tiny-qwen2", "tiny-qwen3-moe", "tiny-deepseek-v3")
METHODS = ("full", "lora", "qlora")
ATTENTION = ("sdpa", "eager")
# as test_torch_groundtruth.py: PEFT's "all-linear" on transformers 5 MoE models adapts fused experts
LORA_TARGETS = {"tiny-llama": "all-linear", "tiny-qwen2": "all-linear", "tiny-qwen3-moe": "attention",
                "tiny-deepseek-v3": "attention"}
# pure bf16 (weights, gradients, AdamW states), adapters bf16, fused AdamW, micro-batch 2 x 64 tokens, r = 8;
# QLoRA through the bitsandbytes emulation, so the numbers do not depend on bitsandbytes being installed
BASE = dict(precision="bf16", seq_len=64, micro_batch=2, lora_rank=8, lora_alpha=16, optimizer_impl="fused",
            qlora_backend="emulated")
CASES = [(f, m, c, a) for f in FAMILIES for m in METHODS for c in (False, True) for a in ATTENTION]


def config(family: str) -> dict:
    return json.loads((CONFIG_DIR / f"{family}.json").read_text())


def case_setup(family: str, method: str, ckpt: bool, attention: str, **extra) -> dict:
    s = dict(BASE, method=method, gradient_checkpointing=ckpt, attention_kernel=attention, **extra)
    if method != "full":
        s.setdefault("lora_targets", LORA_TARGETS[family])
    return s


@lru_cache(maxsize=None)
def _measure(family: str, items: tuple):
    return measure_whole_step(config(family), dict(items))


def measure(family: str, setup: dict):
    return _measure(family, tuple(sorted(setup.items())))


def estimate(family: str, setup: dict):
    """finetune_memory for the same tiny config and setup (GPU: h100-80gb; allocated does not depend on it)."""
    from llmsizing import catalog
    from llmsizing.specs import model_spec_from_config
    from llmsizing.training.memory import FinetuneSetup, finetune_memory

    spec = model_spec_from_config(config(family), slug=family, where=str(CONFIG_DIR / f"{family}.json"))
    kw = dict(method=setup["method"], precision=setup["precision"], optimizer="adamw", seq_len=setup["seq_len"],
              micro_batch=setup["micro_batch"], gradient_checkpointing=setup["gradient_checkpointing"],
              lora_rank=setup["lora_rank"], lora_alpha=setup["lora_alpha"],
              attention_kernel=setup["attention_kernel"])
    if setup["method"] != "full":
        kw["lora_targets"] = setup["lora_targets"]
    if setup["method"] == "qlora":
        kw["qlora_quant"] = "nf4-dq"
    # the harness's variants map onto the framework-profile overrides
    kw["optimizer_impl"] = setup.get("optimizer_impl", "fused")
    kw["adapter_dtype"] = "fp32" if setup.get("adapter_dtype") == "fp32" else "working"
    kw["kbit_prep"] = bool(setup.get("kbit_prep", False))
    return finetune_memory(spec, FinetuneSetup(**kw), catalog.load_gpu("h100-80gb"))


def error(measured: float, estimated: float) -> float:
    return (estimated - measured) / measured


def row(case) -> dict:
    family, method, ckpt, attention = case
    s = case_setup(family, method, ckpt, attention)
    r = measure(family, s)
    e = estimate(family, s)
    return {"family": family, "method": method, "ckpt": ckpt, "attention": attention, "measured": r.peak_bytes,
            "measured_phase": r.peak_phase, "peak_op": r.peak_op, "estimated": e.allocated, "estimated_phase": e.phase,
            "error": error(r.peak_bytes, e.allocated), "breakdown": r.breakdown, "result": r, "estimate": e}


def markdown(rows) -> str:
    out = ["| family | method | ckpt | attention | measured B | phase (op) | estimated B | est. phase | error |",
           "|---|---|---|---|---:|---|---:|---|---:|"]
    for r in rows:
        out.append(f"| {r['family']} | {r['method']} | {'yes' if r['ckpt'] else 'no'} | {r['attention']} | "
                   f"{r['measured']:,} | {r['measured_phase']} ({r['peak_op']}) | {r['estimated']:,.0f} | "
                   f"{r['estimated_phase']} | {r['error']:+.1%} |")
    return "\n".join(out)


def summary(rows) -> str:
    import statistics

    out = ["| method | cases | median abs(error) | max abs(error) | worst case |", "|---|---:|---:|---:|---|"]
    for m in METHODS:
        rs = [r for r in rows if r["method"] == m]
        worst = max(rs, key=lambda r: abs(r["error"]))
        out.append(f"| {m} | {len(rs)} | {statistics.median(abs(r['error']) for r in rs):.1%} | "
                   f"{abs(worst['error']):.1%} | {worst['family']} {'ckpt' if worst['ckpt'] else 'no-ckpt'} "
                   f"{worst['attention']} ({worst['error']:+.1%}) |")
    return "\n".join(out)


def main() -> None:
    rows = [row(c) for c in CASES]
    print(summary(rows))
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()

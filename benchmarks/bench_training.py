"""Training-compute sweep: 7 DeepSeek-R1 family models x {full, lora, qlora} x {checkpointing on, off}
x 6 GPUs x 3 sequence lengths (issue #4).

Bar: the whole sweep (756 estimates of train FLOP, step time and GPU-hours for 1B tokens) runs in
under 1 s, catalog loading included. Prints cold (empty caches) and warm times, and a few figures.

    python benchmarks/bench_training.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "lib") not in sys.path:
    sys.path.insert(0, str(REPO / "lib"))

BAR_S = 1.0
MODELS = ("deepseek-r1", "deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-7b", "deepseek-r1-distill-llama-8b",
          "deepseek-r1-distill-qwen-14b", "deepseek-r1-distill-qwen-32b", "deepseek-r1-distill-llama-70b")
GPUS = ("h100-80gb", "h200", "a100-80gb", "l40s", "rtx-4090", "b200")
SEQ_LENS = (2048, 4096, 8192)


def _clear_caches() -> None:
    from llmsizing import architecture, catalog

    for fn in (catalog.model_entries, catalog.gpu_catalog, catalog.precision_catalog, architecture.model_modules,
               architecture.mtp_modules):
        fn.cache_clear()


def sweep() -> list[dict]:
    from llmsizing import catalog
    from llmsizing.training import compute as TC
    from llmsizing.assumptions import Assumptions
    from llmsizing.training.memory import FinetuneSetup

    a = Assumptions()
    rows = []
    for slug in MODELS:
        spec = catalog.load_model(slug)
        for gpu_slug in GPUS:
            gpu = catalog.load_gpu(gpu_slug)
            for method in ("full", "lora", "qlora"):
                for ckpt in (True, False):
                    for s in SEQ_LENS:
                        setup = FinetuneSetup(method=method, seq_len=s, micro_batch=1, gradient_checkpointing=ckpt)
                        st = TC.step_time(spec, setup, gpu, a)
                        rows.append({"model": slug, "gpu": gpu_slug, "method": method, "ckpt": ckpt, "seq_len": s,
                                     "train_flop_1b": TC.train_flop(spec, setup, 1e9),
                                     "gpu_hours_1b": 1e9 / st.tokens_per_s_per_gpu / 3600, "bound": st.bound})
    return rows


def main() -> None:
    _clear_caches()
    t0 = time.perf_counter()
    rows = sweep()
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    sweep()
    warm = time.perf_counter() - t0
    pick = {(r["model"], r["gpu"], r["method"]): r for r in rows if r["ckpt"] and r["seq_len"] == 4096}
    print(f"   training sweep: {len(rows)} estimates")
    for key in (("deepseek-r1-distill-qwen-7b", "h100-80gb", "lora"), ("deepseek-r1-distill-llama-70b", "h100-80gb",
                                                                      "full"), ("deepseek-r1", "h200", "lora")):
        r = pick[key]
        print(f"   {key[0]} {key[2]} on {key[1]}, 4K tokens, checkpointing: {r['train_flop_1b']:.3e} FLOP and "
              f"{r['gpu_hours_1b']:,.1f} GPU-hours per 1B tokens ({r['bound']}-bound)")
    print(f"   cold {cold:.3f} s, warm {warm:.3f} s (bar {BAR_S:.1f} s): {'OK' if cold < BAR_S else 'TOO SLOW'}")


if __name__ == "__main__":
    main()

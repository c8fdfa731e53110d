"""Deadline planner matrix (issue #5): 7 DeepSeek-R1 family models × {full, lora, qlora} × 6 data sizes
(1K, 1M, 1GB, 10GB, 100GB, 1TB) × every GPU type in the catalog, 24 h deadline.

Bar: the whole matrix plans in under 5 s on a 2-core machine, caches empty (catalog loading included),
using the machine's cores (at most 2 worker processes). Prints that time, the single-process time, the
number of plans, memory-model calls, and how many plans meet the deadline.

    python benchmarks/bench_planner.py [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "lib") not in sys.path:
    sys.path.insert(0, str(REPO / "lib"))

BAR_S = 5.0
BAR_CORES = 2


def _clear_caches() -> None:
    from llmsizing import architecture, catalog, instances
    from llmsizing.planner import search as planner

    for fn in (catalog.model_entries, catalog.gpu_catalog, catalog.precision_catalog, architecture.model_modules,
               architecture.mtp_modules, instances.instance_catalog, instances.instances_for_gpu,
               planner._weight_bytes_by_group, planner._weight_bytes, planner._trainable_in_experts):
        fn.cache_clear()
    planner.clear_cache()
    planner._MODEL_SETUPS.clear()


def run(workers: int) -> tuple[float, list[dict]]:
    from llmsizing.planner.search import finetune_matrix

    _clear_caches()
    t0 = time.perf_counter()
    rows = finetune_matrix(workers=workers)
    return time.perf_counter() - t0, rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=min(BAR_CORES, os.cpu_count() or 1))
    args = ap.parse_args(argv if argv is not None else [])
    from llmsizing import catalog

    n_gpus = len(catalog.list_gpus())
    t_par, rows = run(args.workers)
    t_seq, rows_seq = run(1)
    assert [(r["model"], r["method"], r["gpu"], r["data"], r.get("gpus")) for r in rows] == \
        [(r["model"], r["method"], r["gpu"], r["data"], r.get("gpus")) for r in rows_seq]
    meets = sum(1 for r in rows if r.get("meets_deadline"))
    fits = sum(1 for r in rows if r.get("fits"))
    h100 = [r for r in rows if r["gpu"] == "h100-80gb"]
    print(f"   {len(rows)} plans = 7 models × 3 methods × 6 data sizes × {n_gpus} GPU types")
    print(f"   matrix time: {t_par:.2f} s with {args.workers} worker process(es), {t_seq:.2f} s in one process "
          f"(bar {BAR_S:.0f} s on a {BAR_CORES}-core machine; this machine has {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f})")
    print(f"   {fits} plans fit, {meets} meet the 24 h deadline; on h100-80gb {sum(r['meets_deadline'] for r in h100)}"
          f" of {len(h100)}")
    status = "PASS" if t_par < BAR_S else "OVER"
    print(f"   {status}: {t_par:.2f} s vs the {BAR_S:.0f} s bar")


if __name__ == "__main__":
    main(sys.argv[1:])

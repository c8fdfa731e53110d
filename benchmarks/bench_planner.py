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

import multiprocessing  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from typing import Any, Iterable, Mapping  # noqa: E402

from llmsizing import architecture, catalog, instances  # noqa: E402
from llmsizing.assumptions import Assumptions  # noqa: E402
from llmsizing.choices import CUSTOMER_DATA_SIZES, DEEPSEEK_R1_FAMILY, METHODS  # noqa: E402
from llmsizing.errors import ScenarioError  # noqa: E402
from llmsizing.planner import context as planner_context  # noqa: E402
from llmsizing.planner.plans import plan_finetune  # noqa: E402

BAR_S = 5.0
BAR_CORES = 2


def _clear_caches() -> None:
    for fn in (catalog.model_entries, catalog.gpu_catalog, catalog.precision_catalog, architecture.model_modules,
               architecture.mtp_modules, instances.instance_catalog, instances.instances_for_gpu):
        fn.cache_clear()
    planner_context.clear_cache()     # contexts, model setups, memory results, weight and LoRA counts


def finetune_matrix(
    models: Iterable[str] = DEEPSEEK_R1_FAMILY,
    methods: Iterable[str] = METHODS,
    gpus: Iterable[str] | None = None,
    data_sizes: Iterable[str] = CUSTOMER_DATA_SIZES,
    *,
    deadline: str | float = "24h",
    assumptions: Assumptions | Mapping | None = None,
    workers: int = 1,
    **kwargs: Any,
) -> list[dict]:
    """Plan every model × method × GPU × data size (the benchmark sweep); one flat dict per plan (``FinetunePlan.row()``).

    ``gpus`` defaults to every GPU type in the catalog. Catalogs load once; no I/O in the loop.
    ``workers`` > 1 spreads the (model, method) pairs over that many processes (each keeps its own
    memory results, which are per model and method anyway); rows come back in the same order.
    """
    a = assumptions if isinstance(assumptions, Assumptions) else Assumptions(assumptions)
    gpu_slugs = [catalog.load_gpu(g).slug for g in gpus] if gpus is not None else [g.slug for g in catalog.list_gpus()]
    model_slugs = [catalog.load_model(m).slug for m in models]
    tasks = [(m, method) for m in model_slugs for method in methods]
    args = (tuple(gpu_slugs), tuple(data_sizes), deadline, a.overrides, tuple(sorted(kwargs.items())))
    if workers <= 1 or len(tasks) <= 1:
        out = [_matrix_task(t, *args) for t in tasks]
    else:
        # the largest models first, so that the pool finishes together
        order = sorted(range(len(tasks)), key=lambda i: -architecture.params_total(catalog.load_model(tasks[i][0])))
        ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
            futures = {i: pool.submit(_matrix_task, tasks[i], *args) for i in order}
            out = [futures[i].result() for i in range(len(tasks))]
    return [row for rows in out for row in rows]


def _matrix_task(task: tuple[str, str], gpu_slugs: tuple, data_sizes: tuple, deadline: Any, overrides: dict,
                 kwargs: tuple) -> list[dict]:
    """Rows of one (model, method) for every GPU and data size (run in-process or in a worker)."""
    model, method = task
    a = Assumptions(overrides)
    spec = catalog.load_model(model)
    rows = []
    for g in (catalog.load_gpu(s) for s in gpu_slugs):
        for d in data_sizes:
            try:
                p = plan_finetune(spec, method, g, d, deadline=deadline, assumptions=a, **dict(kwargs))
            except ScenarioError as exc:
                rows.append({"model": spec.slug, "method": method, "gpu": g.slug, "data": str(d), "fits": False,
                             "meets_deadline": False, "limit": str(exc)})
                continue
            rows.append(p.row())
    return rows


def run(workers: int) -> tuple[float, list[dict]]:
    _clear_caches()
    t0 = time.perf_counter()
    rows = finetune_matrix(workers=workers)
    return time.perf_counter() - t0, rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=min(BAR_CORES, os.cpu_count() or 1))
    args = ap.parse_args(argv if argv is not None else [])
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

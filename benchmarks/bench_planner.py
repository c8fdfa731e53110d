"""Deadline planner matrix (issue #5): 7 DeepSeek-R1 family models × {full, lora, qlora} × 6 data sizes
(1K, 1M, 1GB, 10GB, 100GB, 1TB) × every GPU type in the catalog, 24 h deadline.

Bars: the whole matrix plans in under 5 s on a 2-core machine, caches empty (catalog loading included),
using the machine's cores (at most 2 worker processes); issue 14 asks ≤ 1 s in one process, ≥ 10,000
layout memory evaluations/s and the default report's study ≤ 1 s. Prints those times and rates (direct
calls of the memory model, and the planner's memory oracle), and llm-analysis's layout rate when the
package is importable (``pip install llm-analysis``; or put its site directory in LLM_ANALYSIS_SITE).

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


def memory_rates(model: str, n: int = 60) -> tuple[float, float]:
    """(direct ``finetune_memory`` calls per second, planner oracle evaluations per second) on ``model``,
    full fine-tuning, over layouts tp ∈ {1,2,4,8} × dp ∈ {1..64} × ZeRO/offload × checkpointing × mb."""
    from llmsizing.planner.request import Request
    from llmsizing.training import memory as tm
    spec = catalog.load_model(model)
    gpu = catalog.load_gpu("h100-80gb")
    a = Assumptions()
    keys = [(tp, 1, dp, 1, z, o, gc, mb, 1) for tp in (1, 2, 4, 8) if spec.num_heads % tp == 0
            and (spec.is_mla or spec.num_kv_heads % tp == 0 or tp % spec.num_kv_heads == 0) for dp in (1, 2, 4, 8, 16, 32, 64)
            for z, o in ((2, "none"), (3, "none"), (3, "optimizer")) for gc in (True, False) for mb in (1, 2, 4)
            if not (dp == 1 and z)]
    direct = keys[:: max(1, len(keys) // n)][:n]
    t0 = time.perf_counter()
    for tp, pp, dp, ep, z, o, gc, mb, ga in direct:
        setup = tm.FinetuneSetup(method="full", micro_batch=mb, gradient_checkpointing=gc, zero=z, offload=o, tp=tp,
                                 pp=pp, dp=dp, ep=ep, seq_len=4096)
        tm.finetune_memory(spec, setup, gpu, a)
    direct_rate = len(direct) / (time.perf_counter() - t0)
    planner_context.clear_cache()
    ctx = planner_context.plan_context(spec, gpu, Request(method="full"), a)
    t0 = time.perf_counter()
    for k in keys:
        ctx.oracle.memory(k)
    oracle_rate = len(keys) / (time.perf_counter() - t0)
    return direct_rate, oracle_rate


def llm_analysis_rate(n: int = 200) -> float | None:
    """llm-analysis 0.2.x ``LLMAnalysis.training`` calls per second (Llama-2-7B, H100 SXM, ZeRO-3, tp and dp
    varied), or None when the package is not importable."""
    site = os.environ.get("LLM_ANALYSIS_SITE")
    if site and site not in sys.path:
        sys.path.append(site)
    try:
        import logging
        from llm_analysis import analysis as la
        from llm_analysis.config import (ParallelismConfig, get_dtype_config_by_name, get_gpu_config_by_name,
                                         get_model_config_by_name)
    except Exception:
        return None
    logging.disable(logging.CRITICAL)
    model = get_model_config_by_name("NousResearch_Llama-2-7b-hf")
    gpu = get_gpu_config_by_name("h100-sxm-80gb")
    dtype = get_dtype_config_by_name("w16a16e16")
    layouts = [(tp, dp) for tp in (1, 2, 4, 8) for dp in (2, 4, 8, 16, 32, 64)]   # layouts that fit (it asserts)
    t0 = time.perf_counter()
    done = 0
    while done < n:
        tp, dp = layouts[done % len(layouts)]
        obj = la.LLMAnalysis(model, gpu, dtype, ParallelismConfig(tp_size=tp, dp_size=dp), flops_efficiency=0.5,
                             hbm_memory_efficiency=0.9)
        obj.training(batch_size_per_gpu=1, gradient_accumulation_steps=1, seq_len=4096,
                     ds_zero=la.DSZeRO.STAGE_3, activation_recomputation=la.ActivationRecomputation.FULL)
        done += 1
    logging.disable(logging.NOTSET)
    return done / (time.perf_counter() - t0)


def study_s() -> float:
    """The default report's study (params/deepseek-r1-family.yaml), caches empty."""
    from llmsizing.report.scenario import load_scenario
    from llmsizing.report.study import run_study
    _clear_caches()
    t0 = time.perf_counter()
    run_study(load_scenario(REPO / "params" / "deepseek-r1-family.yaml"))
    return time.perf_counter() - t0


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
    print(f"   {status}: {t_par:.2f} s vs the {BAR_S:.0f} s bar; one process {t_seq:.2f} s vs the 1 s bar "
          f"({'PASS' if t_seq <= 1.0 else 'OVER'})")
    for model in ("deepseek-r1-distill-qwen-7b", "deepseek-r1"):
        direct, oracle = memory_rates(model)
        print(f"   layout memory evaluations/s, {model} full: {direct:,.0f} direct (training.finetune_memory), "
              f"{oracle:,.0f} through the planner's oracle incl. fitting (bar 10,000)")
    rate = llm_analysis_rate()
    print("   llm-analysis: " + (f"{rate:,.0f} training layouts/s (Llama-2-7B, H100, ZeRO-3), same process"
                                  if rate else "not importable here (pip install llm-analysis, or LLM_ANALYSIS_SITE)"))
    t_study = study_s()
    print(f"   default report's study (params/deepseek-r1-family.yaml): {t_study:.2f} s "
          f"({'PASS' if t_study <= 1.0 else 'OVER'} vs the 1 s bar)")


if __name__ == "__main__":
    main(sys.argv[1:])

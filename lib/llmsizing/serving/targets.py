"""Latency targets and the throughput/latency trade-off.

``cheapest_deployment`` tries every GPU type (``--gpu any``) or the given ones, each weight precision the
engine runs (the checkpoint's, FP8 where the GPU has FP8 tensor cores, INT4), and every tensor-parallel
size from the smallest that fits up to one node; it keeps the deployments whose steady-state mean TTFT and
TPOT at the load meet the targets and returns the cheapest by catalog price per hour (then fewest GPUs).

``pareto_table`` sweeps the concurrency of one deployment: tokens/s per GPU (what the operator pays for)
against tokens/s per user (what each user sees); a row is on the frontier when no other row is better in
both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.errors import ScenarioError, SizingError
from llmsizing.serving.estimate import ServingEstimate, serve

#: price of ``gpus`` GPUs of a type per hour (USD), or None when unpriced; the caller supplies it
#: (the command line uses the planner's instance choice, planner/cluster.py), so serving/ stays below planner/.
PriceFn = Callable[[str, int], "float | None"]

TARGET_PRECISIONS = ("checkpoint", "fp8", "int4")


@dataclass(frozen=True)
class Candidate:
    """One deployment tried against the targets."""

    gpu: str
    gpus: int
    precision: str
    tensor_parallel: int
    price_usd_per_hour: float | None
    ttft_s: float | None
    tpot_s: float | None
    output_tokens_per_s: float | None
    meets: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _check(est: ServingEstimate, ttft: float | None, tpot: float | None) -> tuple[bool, str]:
    if not est.fits or not est.throughput:
        return False, "does not fit"
    t, p = est.throughput["ttft_s"]["mean"], est.throughput["tpot_s"]["mean"]
    misses = []
    if ttft is not None and t > ttft:
        misses.append(f"TTFT {t:.3g} s > {ttft:.3g} s")
    if tpot is not None and p > tpot:
        misses.append(f"TPOT {p * 1e3:.3g} ms > {tpot * 1e3:.3g} ms")
    return not misses, "; ".join(misses) or "meets the targets"


def cheapest_deployment(model: str, gpus: Sequence[str] | None, *, users: int, ttft_s: float | None,
                        tpot_s: float | None, price: PriceFn, engine: str = "vllm", context_tokens: int | None = None,
                        prompt_tokens: int | None = None, precisions: Sequence[str] = TARGET_PRECISIONS,
                        assumptions: Mapping[str, Any] | None = None
                        ) -> tuple[ServingEstimate | None, list[Candidate]]:
    """The cheapest deployment meeting the TTFT/TPOT targets at ``users`` (see module docstring), and every
    candidate tried (for the report's table)."""
    a = Assumptions(assumptions or {})  # validates the overrides once, before the sweep
    names = list(gpus) if gpus else [g.slug for g in catalog.list_gpus()]
    tried: list[Candidate] = []
    best: tuple[tuple, ServingEstimate] | None = None
    for g in names:
        node = catalog.load_gpu(g).node_gpus_max or a["node_gpus_default"]
        for prec in precisions:
            try:
                base = serve(model, g, users=users, engine=engine, context_tokens=context_tokens,
                             prompt_tokens=prompt_tokens, precision=None if prec == "checkpoint" else prec,
                             speed=False, assumptions=assumptions)
            except SizingError:
                continue
            if not base.fits or base.layout.pipeline_parallel > 1:
                continue
            n = base.gpus
            while n <= node:
                try:
                    est = serve(model, g, gpus=n, users=users, engine=engine, context_tokens=context_tokens,
                                prompt_tokens=prompt_tokens, precision=None if prec == "checkpoint" else prec,
                                assumptions=assumptions)
                except ScenarioError:
                    n += 1
                    continue
                ok, why = _check(est, ttft_s, tpot_s)
                cost = price(g, n)
                thr = est.throughput or {}
                tried.append(Candidate(g, n, est.precision, est.layout.tensor_parallel, cost,
                                       thr.get("ttft_s", {}).get("mean"), thr.get("tpot_s", {}).get("mean"),
                                       thr.get("output_tokens_per_s"), ok, why))
                if ok:
                    key = (cost is None, cost or 0.0, n)
                    if best is None or key < best[0]:
                        best = (key, est)
                    break
                n *= 2
    return (best[1] if best else None), tried


def pareto_table(model: str, gpu: str, *, gpus: int | None = None, users: Sequence[int] = (1, 4, 16, 64, 256),
                 engine: str = "vllm", precision: str | None = None, context_tokens: int | None = None,
                 prompt_tokens: int | None = None,
                 assumptions: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows (users, tokens/s per GPU, tokens/s per user, TTFT, TPOT, on_frontier) over a concurrency sweep."""
    rows = []
    for u in users:
        est = serve(model, gpu, gpus=gpus, users=u, engine=engine, precision=precision,
                    context_tokens=context_tokens, prompt_tokens=prompt_tokens, assumptions=assumptions)
        if not est.fits or not est.throughput:
            continue
        t = est.throughput
        rows.append({"users": u, "gpus": est.gpus,
                     "tokens_per_s_per_gpu": t["output_tokens_per_s"] / est.gpus,
                     "tokens_per_s_per_user": 1.0 / t["tpot_s"]["mean"],
                     "ttft_s": t["ttft_s"]["mean"], "tpot_s": t["tpot_s"]["mean"]})
    for r in rows:
        r["on_frontier"] = not any(o is not r and o["tokens_per_s_per_gpu"] >= r["tokens_per_s_per_gpu"]
                                   and o["tokens_per_s_per_user"] >= r["tokens_per_s_per_user"]
                                   and (o["tokens_per_s_per_gpu"] > r["tokens_per_s_per_gpu"]
                                        or o["tokens_per_s_per_user"] > r["tokens_per_s_per_user"])
                                   for o in rows)
    return rows

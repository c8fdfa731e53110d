"""Run the estimators over a scenario's grid, once, for a report.

A report notebook calls :func:`run_study` right after validating its parameters; every table,
figure and sentence of the report then reads the :class:`Study`, and :meth:`Study.numbers`
is what results.json holds. The golden tests call the same two functions without papermill,
so the numbers they pin are the numbers the report shows.

What is computed (all through the estimator modules, with one shared
:class:`~llmsizing.assumptions.Assumptions` so the report can list the assumptions it used):

Serving (kinds ``serving`` and ``customer``), per model:

* ``serving.serve`` on every candidate GPU type for ``users`` x ``context_tokens``: the
  smallest layout that fits, memory per GPU, KV capacity, speed;
* ``cluster.serving_cluster`` for each fitting option: instances and USD per hour;
* the recommendation: the cheapest fitting option (catalog prices), else the first fitting
  GPU type in the scenario's order of preference;
* ``serving.users_memory_comparison``: weights once + KV per user, against "users x weights";
* a context-length sweep on the preferred GPU type.

Fine-tuning (kinds ``finetune`` and ``customer``), on the preferred GPU type (``gpus[0]``):

* ``planner.plan_finetune`` for every model x method x data size (the matrix);
* every GPU type for the first method at the middle data size (cost across GPU types);
* fixed GPU counts (1, 2, 4, ... up to 4x the planned count, at least 16) for the first method at
  the middle data size (time against GPU count).

"Does not fit" and "misses the deadline" are results; a combination the estimators reject
(``ScenarioError``) is recorded with its reason and shown as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.errors import NoFitError, ScenarioError
from llmsizing.planner import cluster
from llmsizing.planner import plans as planner
from llmsizing.planner.audit import AuditRow, audit_table
from llmsizing.planner.cluster import ServingCluster
from llmsizing.planner.request import FinetunePlan
from llmsizing.report import i18n
from llmsizing.report.scenario import Scenario
from llmsizing.serving import estimate as serving
from llmsizing.serving.estimate import ServingEstimate
from llmsizing.specs import ModelSpec
from llmsizing.validation.run import ValidationResult, run_validation

__all__ = ["FinetuneCell", "FinetuneStudy", "ServingModel", "ServingStudy", "Study", "results_numbers", "run_study",
           "SCALING_GPU_COUNTS"]

#: GPU counts of the time-against-GPU-count figure.
SCALING_GPU_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


# --------------------------------------------------------------------------- serving


@dataclass
class ServingModel:
    """Serving results for one model."""

    model: str
    name: str
    by_gpu: dict[str, ServingEstimate]         # gpu slug -> estimate
    cluster_by_gpu: dict[str, ServingCluster]  # gpu slug -> cloud instances (fitting options)
    recommended_gpu: str | None
    users_comparison: dict[str, Any]           # serving.users_memory_comparison(...)
    sweep: list[dict[str, Any]]                # per context: whole-model memory, GPUs on the preferred type

    @property
    def preferred(self) -> ServingEstimate:
        """The estimate on the scenario's preferred GPU type (the first listed)."""
        return next(iter(self.by_gpu.values()))

    @property
    def recommended(self) -> ServingEstimate | None:
        return self.by_gpu.get(self.recommended_gpu) if self.recommended_gpu else None


@dataclass
class ServingStudy:
    gpus: tuple[str, ...]
    users: int
    context_tokens: int
    engine: str
    models: list[ServingModel]


def _serving_study(sc: Scenario, a: Assumptions) -> ServingStudy:
    rows = []
    for m in sc.models:
        spec = catalog.load_model(m)
        by_gpu: dict[str, ServingEstimate] = {}
        clusters: dict[str, ServingCluster] = {}
        for g in sc.gpus:
            est = serving.serve(spec, g, users=sc.users, context_tokens=sc.context_tokens,
                                precision=sc.serving_precision, kv_precision=sc.serving_kv_precision,
                                engine=sc.engine, gpu_memory=sc.gpu_memory or None, assumptions=a)
            by_gpu[g] = est
            if est.fits:
                clusters[g] = cluster.serving_cluster(est.to_dict(), a)
        priced = [g for g in clusters if clusters[g].cost_usd_per_hour is not None]
        if priced:
            recommended = min(priced, key=lambda g: (clusters[g].cost_usd_per_hour, sc.gpus.index(g)))
        else:
            recommended = next((g for g in sc.gpus if by_gpu[g].fits), None)
        first = by_gpu[sc.gpus[0]]
        comparison = serving.users_memory_comparison(spec, users=sc.users, context_tokens=sc.context_tokens,
                                                     precision=first.precision, kv_precision=first.kv_precision)
        sweep = []
        for ctx in sc.context_sweep:
            if spec.max_context_tokens and ctx > spec.max_context_tokens:
                continue
            mem = serving.users_memory_comparison(spec, users=sc.users, context_tokens=ctx,
                                                  precision=first.precision, kv_precision=first.kv_precision)
            est = serving.serve(spec, sc.gpus[0], users=sc.users, context_tokens=ctx,
                                precision=sc.serving_precision, kv_precision=sc.serving_kv_precision,
                                engine=sc.engine, gpu_memory=sc.gpu_memory or None, speed=False, assumptions=a)
            sweep.append({"context_tokens": ctx, "weights_bytes": mem["weights_bytes"],
                          "kv_cache_bytes": mem["kv_cache_bytes_total"], "total_bytes": mem["total_bytes"],
                          "gpu": est.gpu, "fits": est.fits, "gpus": est.gpus if est.fits else None})
        rows.append(ServingModel(model=spec.slug, name=spec.name, by_gpu=by_gpu, cluster_by_gpu=clusters,
                                 recommended_gpu=recommended, users_comparison=comparison, sweep=sweep))
    return ServingStudy(gpus=sc.gpus, users=sc.users, context_tokens=sc.context_tokens, engine=sc.engine,
                        models=rows)


# --------------------------------------------------------------------------- fine-tuning


@dataclass
class FinetuneCell:
    """One planner call: the plan, or why the estimators rejected the combination."""

    model: str
    method: str
    gpu: str
    data: str
    plan: FinetunePlan | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.plan is not None


@dataclass
class FinetuneStudy:
    gpu: str
    methods: tuple[str, ...]
    data_sizes: tuple[str, ...]
    deadline_hours: float
    comparison_method: str
    comparison_data: str
    matrix: list[FinetuneCell]                       # model x method x data on the preferred GPU
    by_gpu: list[FinetuneCell]                       # model x gpu at (comparison_method, comparison_data)
    scaling: dict[str, list[FinetuneCell]]           # model -> fixed GPU counts
    model_names: dict[str, str] = field(default_factory=dict)
    one_gpu: list[FinetuneCell] = field(default_factory=list)  # one model, one GPU type: every size on 1 GPU

    def cell(self, model: str, method: str, data: str) -> FinetuneCell:
        for c in self.matrix:
            if (c.model, c.method, c.data) == (model, method, data):
                return c
        raise KeyError((model, method, data))


def _plan(sc: Scenario, a: Assumptions, spec: ModelSpec, method: str, gpu: str, data: str,
          gpus: int | None = None) -> FinetuneCell:
    try:
        plan = planner.plan_finetune(spec, method, gpu, data, deadline=sc.deadline, epochs=sc.epochs,
                                     language=sc.language, gpus=gpus, seq_len=sc.seq_len,
                                     precision=sc.train_precision, optimizer=sc.optimizer, framework=sc.framework,
                                     lora_rank=sc.lora_rank, gpu_memory=sc.gpu_memory or None, assumptions=a,
                                     optimize=sc.optimize)
    except (ScenarioError, NoFitError) as exc:
        return FinetuneCell(spec.slug, method, gpu, str(data), error=" ".join(str(exc).split()))
    return FinetuneCell(spec.slug, method, gpu, str(data), plan=plan)


def _finetune_study(sc: Scenario, a: Assumptions) -> FinetuneStudy:
    specs = [catalog.load_model(m) for m in sc.models]
    gpu = sc.gpus[0]
    data_sizes = tuple(str(d) for d in sc.data_sizes)
    matrix = [_plan(sc, a, spec, method, gpu, d) for spec in specs for method in sc.methods for d in data_sizes]
    comp_method = sc.methods[0]
    comp_data = data_sizes[(len(data_sizes) - 1) // 2]
    by_gpu = [_plan(sc, a, spec, comp_method, g, comp_data) for spec in specs for g in sc.gpus]
    scaling = {}
    for spec in specs:
        planned = next(c for c in matrix if (c.model, c.method, c.data) == (spec.slug, comp_method, comp_data))
        top = max(16, 4 * planned.plan.gpus) if planned.ok and planned.plan.fits else 16
        cells = (_plan(sc, a, spec, comp_method, gpu, comp_data, gpus=n) for n in SCALING_GPU_COUNTS if n <= top)
        scaling[spec.slug] = [c for c in cells if c.ok and c.plan.fits]
    one_gpu = []
    if len(specs) == 1 and len(sc.gpus) == 1:
        # "how long does 1GB take on the one card?": the single-GPU plan of every cell, deadline or not
        for c in matrix:
            if c.ok and c.plan.fits and c.plan.gpus == 1:
                one_gpu.append(c)
            elif c.ok:
                one = _plan(sc, a, specs[0], c.method, gpu, c.data, gpus=1)
                if one.ok and one.plan.fits:
                    one_gpu.append(one)
    return FinetuneStudy(gpu=gpu, methods=sc.methods, data_sizes=data_sizes, deadline_hours=sc.deadline_hours,
                         comparison_method=comp_method, comparison_data=comp_data, matrix=matrix, by_gpu=by_gpu,
                         scaling=scaling, model_names={s.slug: s.name for s in specs}, one_gpu=one_gpu)


# --------------------------------------------------------------------------- the study


@dataclass
class Study:
    """Everything a report shows, computed once from a validated scenario."""

    scenario: Scenario
    assumptions: Assumptions
    serving: ServingStudy | None = None
    finetune: FinetuneStudy | None = None
    audit: list[AuditRow] | None = None
    validation: ValidationResult | None = None    # customer reports; not in results.json
    shown_tables: list[Any] = field(default_factory=list)   # every table the report showed (tables.xlsx)

    def numbers(self) -> dict[str, Any]:
        """The ``results`` section of results.json (see :func:`results_numbers`)."""
        return results_numbers(self)


def run_study(scenario: Scenario) -> Study:
    """Compute everything the scenario's report needs (serving, fine-tuning, the audit)."""
    i18n.activate(scenario.report_language)   # the notebook kernel formats in the report's language
    a = scenario.make_assumptions()
    study = Study(scenario=scenario, assumptions=a)
    if scenario.kind in ("serving", "customer"):
        study.serving = _serving_study(scenario, a)
    if scenario.kind in ("finetune", "customer"):
        study.finetune = _finetune_study(scenario, a)
    if scenario.kind == "customer":
        if scenario.audit_table:
            study.audit = _audit(scenario, a)
        study.validation = _validation()
    return study


def _validation() -> ValidationResult:
    """Our estimates against published measurements (``llmsizing.validation``).

    Default assumptions, independent of the scenario; shown in an appendix, not in results.json
    (the validation set has its own golden file).
    """
    return run_validation()


def _audit(sc: Scenario, a: Assumptions) -> list[AuditRow]:
    """The audit of the scenario's ``audit_table`` (``llmsizing.planner.audit``: one ``AuditRow`` per row)."""
    return audit_table(sc.audit_table_path, assumptions=a)


# --------------------------------------------------------------------------- results.json


def audit_rows(audit: list[AuditRow] | None) -> list[dict[str, Any]]:
    """The audit of the customer's table for results.json: per row what it states and what we find."""
    out = []
    for a in audit or []:
        r, st, rec = a.row, a.stated, a.recommended
        out.append({
            "id": r.id, "model": r.model, "method": r.method, "data": r.data, "gpu": r.gpu, "gpus": r.gpus,
            "weights_fit_in_gpus": a.weights_bytes <= a.gpu_memory_total_bytes,
            "stated_fits": st.fits, "stated_hours": st.hours if st.fits else None,
            "stated_meets_deadline": st.meets_deadline,
            "recommended_gpus": rec.gpus if rec.fits else None, "recommended_hours": rec.hours if rec.fits else None,
            "recommended_meets_deadline": rec.meets_deadline, "recommended_cost_usd": rec.cost_usd,
        })
    return out


def _serving_numbers(study: Study) -> tuple[dict[str, Any], dict[str, Any]]:
    sv = study.serving
    head: dict[str, Any] = {}
    models = []
    for m in sv.models:
        by_gpu = {}
        for g, est in m.by_gpu.items():
            cl = m.cluster_by_gpu.get(g)
            lay = est.layout
            by_gpu[g] = {
                "fits": est.fits, "gpus": est.gpus if est.fits else None,
                "nodes": lay.nodes if est.fits else None,
                "tensor_parallel": lay.tensor_parallel, "pipeline_parallel": lay.pipeline_parallel,
                "precision": est.precision, "kv_precision": est.kv_precision,
                "memory_per_gpu": est.memory_per_gpu.to_dict(), "gpu_memory_bytes": est.gpu_memory_bytes,
                "kv_cache_capacity_tokens": est.kv_cache_capacity_tokens,
                "max_concurrent_users": est.max_concurrent_users,
                "decode_tokens_per_s_per_user": est.decode_tokens_per_s_per_user, "ttft_s": est.ttft_s,
                "instance": cl.instance if cl else None,
                "cost_usd_per_hour": cl.cost_usd_per_hour if cl else None,
                "reason": est.reason,
            }
        c = m.users_comparison
        rec = m.recommended
        rec_cl = m.cluster_by_gpu.get(m.recommended_gpu) if m.recommended_gpu else None
        models.append({
            "model": m.model,
            "by_gpu": by_gpu,
            "recommended": {"gpu": m.recommended_gpu, "gpus": rec.gpus if rec else None,
                            "cost_usd_per_hour": rec_cl.cost_usd_per_hour if rec_cl else None},
            "users_vs_weights": {k: c[k] for k in ("weights_bytes", "kv_cache_bytes_per_user", "total_bytes",
                                                   "naive_guess_bytes", "naive_over_actual", "context_tokens")},
            "context_sweep": [{k: p[k] for k in ("context_tokens", "total_bytes", "gpus")} for p in m.sweep],
        })
        pref = m.preferred
        key = f"serving.{m.model}"
        head[f"{key}.gpus"] = pref.gpus if pref.fits else None
        head[f"{key}.memory_per_gpu_bytes"] = round(pref.memory_per_gpu.total)
        head[f"{key}.recommended_gpu"] = m.recommended_gpu
        head[f"{key}.recommended_gpus"] = rec.gpus if rec else None
        head[f"{key}.recommended_usd_per_hour"] = rec_cl.cost_usd_per_hour if rec_cl else None
        head[f"{key}.users_memory_bytes"] = c["total_bytes"]
        head[f"{key}.naive_guess_bytes"] = c["naive_guess_bytes"]
    body = {"gpus": list(sv.gpus), "users": sv.users, "context_tokens": sv.context_tokens, "engine": sv.engine,
            "models": models}
    return head, body


def _cell_numbers(c: FinetuneCell) -> dict[str, Any]:
    d: dict[str, Any] = {"model": c.model, "method": c.method, "gpu": c.gpu, "data": c.data}
    if not c.ok:
        d.update(fits=False, meets_deadline=False, error=c.error)
        return d
    p = c.plan
    cl = p.cluster
    lay = p.layout
    d.update({
        "fits": p.fits, "meets_deadline": p.meets_deadline, "gpus": p.gpus if p.fits else None,
        "hours": p.hours, "gpu_hours": p.gpu_hours, "cost_usd": p.cost_usd,
        "dataset_tokens": p.dataset.text_tokens, "train_tokens": p.dataset.train_tokens, "train_flop": p.train_flop,
        "layout": lay.to_dict(),
        "memory_per_gpu_bytes": float(p.memory.total) if p.memory is not None else None,
        "nodes": cl.nodes if cl else None, "instance": cl.instance if cl else None,
        "cpu_cores": cl.cpu_cores if cl else None, "ram_bytes": cl.ram_bytes if cl else None,
        "storage_bytes": cl.storage_bytes if cl else None, "network_gbps": cl.network_gbps if cl else None,
        "rdma_needed": cl.rdma_needed if cl else None, "limit": p.limit,
    })
    return d


def _finetune_numbers(study: Study) -> tuple[dict[str, Any], dict[str, Any]]:
    ft = study.finetune
    head: dict[str, Any] = {}
    for c in ft.matrix:
        key = f"finetune.{c.model}.{c.method}.{c.data}"
        p = c.plan
        head[f"{key}.gpus"] = p.gpus if p is not None and p.fits else None
        head[f"{key}.hours"] = p.hours if p is not None and p.fits else None
        head[f"{key}.cost_usd"] = p.cost_usd if p is not None and p.fits else None
        head[f"{key}.meets_deadline"] = bool(p is not None and p.meets_deadline)
    body = {
        "gpu": ft.gpu, "deadline_hours": ft.deadline_hours, "methods": list(ft.methods),
        "data_sizes": list(ft.data_sizes),
        "matrix": [_cell_numbers(c) for c in ft.matrix],
        "by_gpu": {"method": ft.comparison_method, "data": ft.comparison_data,
                   "cells": [_cell_numbers(c) for c in ft.by_gpu]},
        "scaling": {m: [{"gpus": c.plan.gpus, "hours": c.plan.hours, "cost_usd": c.plan.cost_usd,
                         "meets_deadline": c.plan.meets_deadline} for c in cells]
                    for m, cells in ft.scaling.items()},
    }
    return head, body


def results_numbers(study: Study) -> dict[str, Any]:
    """The ``results`` section of results.json: ``headline`` (flat scalars) plus the full tables.

    Sizes are bytes, times hours (``*_hours``, ``hours``) or seconds (``*_s``), costs USD.
    ``assumptions`` maps every assumption the estimates read to the value used.
    """
    out: dict[str, Any] = {"kind": study.scenario.kind}
    head: dict[str, Any] = {}
    if study.serving is not None:
        h, out["serving"] = _serving_numbers(study)
        head.update(h)
    if study.finetune is not None:
        h, out["finetune"] = _finetune_numbers(study)
        head.update(h)
    if study.audit is not None:
        out["audit"] = audit_rows(study.audit)
    out["headline"] = head
    out["assumptions"] = {r["name"]: r["value"] for r in study.assumptions.table(only_used=True)}
    return out

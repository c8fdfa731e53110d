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

from llmsizing.assumptions import Assumptions
from llmsizing.errors import NoFitError, ScenarioError
from llmsizing.report.scenario import Scenario

__all__ = ["FinetuneCell", "FinetuneStudy", "ServingModel", "ServingStudy", "Study", "run_study",
           "SCALING_GPU_COUNTS"]

#: GPU counts of the time-against-GPU-count figure.
SCALING_GPU_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


# --------------------------------------------------------------------------- serving


@dataclass
class ServingModel:
    """Serving results for one model."""

    model: str
    name: str
    by_gpu: dict[str, Any]                     # gpu slug -> serving.ServingEstimate
    cluster_by_gpu: dict[str, Any]             # gpu slug -> cluster.ServingCluster (fitting options)
    recommended_gpu: str | None
    users_comparison: dict[str, Any]           # serving.users_memory_comparison(...)
    sweep: list[dict[str, Any]]                # per context: whole-model memory, GPUs on the preferred type

    @property
    def preferred(self) -> Any:
        """The estimate on the scenario's preferred GPU type (the first listed)."""
        return next(iter(self.by_gpu.values()))

    @property
    def recommended(self) -> Any | None:
        return self.by_gpu.get(self.recommended_gpu) if self.recommended_gpu else None


@dataclass
class ServingStudy:
    gpus: tuple[str, ...]
    users: int
    context_tokens: int
    engine: str
    models: list[ServingModel]


def _serving_study(sc: Scenario, a: Assumptions) -> ServingStudy:
    from llmsizing import catalog
    from llmsizing.planner import cluster
    from llmsizing.serving import estimate as serving

    rows = []
    for m in sc.models:
        spec = catalog.load_model(m)
        by_gpu: dict[str, Any] = {}
        clusters: dict[str, Any] = {}
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
    plan: Any | None = None          # planner.FinetunePlan
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

    def cell(self, model: str, method: str, data: str) -> FinetuneCell:
        for c in self.matrix:
            if (c.model, c.method, c.data) == (model, method, data):
                return c
        raise KeyError((model, method, data))


def _plan(sc: Scenario, a: Assumptions, spec: Any, method: str, gpu: str, data: str,
          gpus: int | None = None) -> FinetuneCell:
    from llmsizing.planner import plans as planner

    try:
        plan = planner.plan_finetune(spec, method, gpu, data, deadline=sc.deadline, epochs=sc.epochs,
                                     language=sc.language, gpus=gpus, seq_len=sc.seq_len,
                                     precision=sc.train_precision, optimizer=sc.optimizer,
                                     lora_rank=sc.lora_rank, gpu_memory=sc.gpu_memory or None, assumptions=a)
    except (ScenarioError, NoFitError) as exc:
        return FinetuneCell(spec.slug, method, gpu, str(data), error=" ".join(str(exc).split()))
    return FinetuneCell(spec.slug, method, gpu, str(data), plan=plan)


def _finetune_study(sc: Scenario, a: Assumptions) -> FinetuneStudy:
    from llmsizing import catalog

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
    return FinetuneStudy(gpu=gpu, methods=sc.methods, data_sizes=data_sizes, deadline_hours=sc.deadline_hours,
                         comparison_method=comp_method, comparison_data=comp_data, matrix=matrix, by_gpu=by_gpu,
                         scaling=scaling, model_names={s.slug: s.name for s in specs})


# --------------------------------------------------------------------------- the study


@dataclass
class Study:
    """Everything a report shows, computed once from a validated scenario."""

    scenario: Scenario
    assumptions: Assumptions
    serving: ServingStudy | None = None
    finetune: FinetuneStudy | None = None
    audit: Any | None = None
    validation: Any | None = None    # validation.run.ValidationResult (customer reports; not in results.json)

    def numbers(self) -> dict[str, Any]:
        """The ``results`` section of results.json (see :mod:`llmsizing.report` for the layout)."""
        from llmsizing.report.narrative import results_numbers

        return results_numbers(self)


def run_study(scenario: Scenario) -> Study:
    """Compute everything the scenario's report needs (serving, fine-tuning, the audit)."""
    a = scenario.make_assumptions()
    study = Study(scenario=scenario, assumptions=a)
    if scenario.kind in ("serving", "customer"):
        study.serving = _serving_study(scenario, a)
    if scenario.kind in ("finetune", "customer"):
        study.finetune = _finetune_study(scenario, a)
    if scenario.kind == "customer":
        study.audit = _audit(a)
        study.validation = _validation()
    return study


def _validation() -> Any | None:
    """Our estimates against published measurements (``llmsizing.validation``), when that package is present.

    Default assumptions, independent of the scenario; shown in an appendix, not in results.json
    (the validation set has its own golden file).
    """
    try:
        from llmsizing.validation.run import run_validation
    except ImportError:
        return None
    return run_validation()


def _audit(a: Assumptions) -> Any | None:
    """The audit of the customer's own table (``llmsizing.audit``: one ``AuditRow`` per row), when present."""
    try:
        from llmsizing.planner import audit
    except ImportError:
        return None
    return audit.audit_table(assumptions=a)

"""Scenarios: the one validation gate for params YAML, notebook parameters and tests.

A scenario is a flat mapping of primitives (str, int, float, list, dict) that says which report
to build (``kind``), for whom (``customer``, ``title``) and what to size (models, GPUs, users,
data sizes, deadline, assumption overrides). Its keys are defined once, in
:data:`llmsizing.report.parameters.PARAMETERS`. The same mapping is

* a file ``params/<scenario>.yaml`` (read by :func:`load_scenario`),
* a papermill parameters file for ``notebooks/<kind>.ipynb``
  (``papermill notebooks/serving.ipynb out.ipynb -f params/x.yaml``), and
* the ``parameters`` cell of that notebook, which the next cell turns into a Scenario with
  ``Scenario.from_namespace(globals())``.

:meth:`Scenario.from_dict` is strict: an unknown key, a key that does not belong to the
scenario's kind, a wrong type, an unknown model, GPU or precision, an unparseable data size
or deadline, or an unknown assumption raises :class:`~llmsizing.errors.ScenarioError` with
one line naming where the value came from (the file), the key, and what is allowed.
"""

from __future__ import annotations

import datetime as _dt
import difflib
from dataclasses import field, make_dataclass
from pathlib import Path
from typing import Any, Mapping

from llmsizing import __version__, catalog
from llmsizing.assumptions import Assumptions
from llmsizing.errors import ScenarioError
from llmsizing.report.parameters import (KINDS, MAX_PARAMS_FILE_BYTES, MAX_TEXT_CHARS, PARAMETERS, SLUG_RE, Ctx,
                                         Parameter, parameter, parameters_for, parse_tokens, resolve_beside,
                                         scenario_name_problem, type_name)
from llmsizing.serving import plan as serving_plan
from llmsizing.training import memory as training
from llmsizing.units import DataSize, parse_data_size, parse_duration_s

__all__ = [
    "KINDS",
    "MAX_TEXT_CHARS",
    "PARAMETERS",
    "Parameter",
    "Scenario",
    "load_scenario",
    "parameters_for",
    "parse_tokens",
]

_SERVE = ("serving", "customer")
_TUNE = ("finetune", "customer")


class _ScenarioMethods:
    """A validated scenario. Values are normalized primitives (model and GPU slugs, ...).

    One field per :data:`~llmsizing.report.parameters.PARAMETERS` entry (lists as tuples), plus
    ``where`` (the file it came from). Build it only through :meth:`from_dict`,
    :meth:`from_namespace` or :func:`load_scenario`. Parameters that do not belong to the
    scenario's kind keep their defaults and are not part of :meth:`parameters`.
    """

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "scenario") -> Scenario:
        """Validate ``data`` (a params file or a notebook's parameters) into a Scenario.

        ``kind`` is required; every other key of that kind is optional (its default is used);
        a key of another kind, or an unknown key, is an error naming ``where`` and the key.
        """
        if not isinstance(data, Mapping):
            raise ScenarioError(f"{where}: expected a mapping of parameters, got {type_name(data)}")
        for key in data:
            if not isinstance(key, str):
                raise ScenarioError(f"{where}: parameter names must be strings, got {key!r}")
        if "kind" not in data:
            raise ScenarioError(f"{where}: missing key 'kind' (one of: {', '.join(KINDS)})")
        kind = parameter("kind").validate(data["kind"], where)
        allowed_names = [p.name for p in parameters_for(kind)]
        for key in data:
            if key not in allowed_names:
                known = parameter(key)
                other = [k for k in KINDS if k in known.kinds] if known else []
                if other:
                    raise ScenarioError(f"{where}: unknown key '{key}' for kind '{kind}' (it belongs to kind "
                                        f"{' or '.join(other)}); allowed: {', '.join(allowed_names)}")
                close = difflib.get_close_matches(key, allowed_names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ScenarioError(f"{where}: unknown key '{key}'{hint}; allowed: {', '.join(allowed_names)}")
        values: dict[str, Any] = {}
        for p in PARAMETERS:
            raw = data[p.name] if p.name in data else p.default
            value = p.validate(raw, where) if p.name in allowed_names else raw
            values[p.name] = tuple(value) if isinstance(value, list) else value
        values["assumptions"] = dict(values["assumptions"])
        scenario = cls(**values, where=where)
        scenario._cross_check()
        return scenario

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any], where: str = "notebook parameters") -> Scenario:
        """Validate the parameters a notebook's ``parameters`` cell defined (``globals()``).

        Takes ``kind`` and every parameter of that kind found in ``namespace``; other names
        (imports, ``results_path``) are not scenario keys and are left alone.
        """
        kind = namespace.get("kind")
        names = [p.name for p in parameters_for(kind)] if kind in KINDS else ["kind"]
        return cls.from_dict({n: namespace[n] for n in names if n in namespace}, where=where)

    def _cross_check(self) -> None:
        """Checks that involve several keys (each estimator validates its own combination)."""
        if self.kind in _SERVE:
            self._check_serving()
        if self.kind in _TUNE:
            self._check_finetune()

    def _check_serving(self) -> None:
        gpus = [catalog.load_gpu(g, self.gpu_memory or None) for g in self.gpus]
        for g in gpus:
            try:
                serving_plan.resolve_kv_precision(self.engine, g, None if self.kv_precision == "auto" else self.kv_precision)
            except ScenarioError as exc:
                raise Ctx(self.where, "kv_precision").fail(str(exc)) from None
        for m in self.models:
            spec = catalog.load_model(m)
            if spec.max_context_tokens and self.context_tokens > spec.max_context_tokens:
                raise Ctx(self.where, "context_tokens").fail(
                    f"{self.context_tokens:,} tokens exceeds {spec.slug}'s maximum of {spec.max_context_tokens:,}")
            for g in gpus:
                try:
                    serving_plan.make_plan(spec, g, engine=self.engine, precision=self.serving_precision,
                                      kv_precision=self.serving_kv_precision, users=self.users,
                                      context_tokens=self.context_tokens, assumptions=self.make_assumptions())
                except ScenarioError as exc:
                    raise Ctx(self.where, "precision").fail(f"{spec.slug} on {g.slug}: {exc}") from None

    def _check_finetune(self) -> None:
        for method in self.methods:
            try:
                training.FinetuneSetup(method=method, precision=self.train_precision, optimizer=self.optimizer,
                                       seq_len=self.seq_len, lora_rank=self.lora_rank, framework=self.framework)
            except ScenarioError as exc:
                raise Ctx(self.where, "methods").fail(f"{method}: {exc}") from None

    @property
    def serving_precision(self) -> str | None:
        """Weight precision for the serving estimator (None: the checkpoint's own format)."""
        return self.precision

    @property
    def serving_kv_precision(self) -> str | None:
        """KV-cache precision for the serving estimator (None: the engine's default)."""
        return None if self.kv_precision == "auto" else self.kv_precision

    # ----------------------------------------------------------------- views

    def parameters(self) -> dict[str, Any]:
        """The validated primitives for this kind's notebook (papermill's ``parameters``)."""
        out: dict[str, Any] = {}
        for p in parameters_for(self.kind):
            v = getattr(self, p.name)
            out[p.name] = list(v) if isinstance(v, tuple) else (dict(v) if isinstance(v, Mapping) else v)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Same as :meth:`parameters` (JSON-ready)."""
        return self.parameters()

    @property
    def notebook(self) -> str:
        """File name of the notebook that renders this scenario (under ``notebooks/``)."""
        return f"{self.kind}.ipynb"

    @property
    def deadline_s(self) -> float:
        return parse_duration_s(self.deadline)

    @property
    def deadline_hours(self) -> float:
        return self.deadline_s / 3600.0

    def data(self) -> list[DataSize]:
        """Parsed data sizes (:class:`llmsizing.units.DataSize`), in the scenario's order."""
        return [parse_data_size(d) for d in self.data_sizes]

    @property
    def audit_table_path(self) -> Path | None:
        """The table to audit, resolved beside the params file (None: no audit)."""
        return resolve_beside(self.audit_table, self.where) if self.audit_table else None

    def make_assumptions(self) -> Assumptions:
        """A fresh :class:`~llmsizing.assumptions.Assumptions` with this scenario's overrides."""
        return Assumptions(dict(self.assumptions))

    def report_date(self, today: _dt.date | None = None) -> str:
        """The cover date: ``date`` if set, otherwise today (ISO)."""
        return self.date or (today or _dt.date.today()).isoformat()

    def cover(self, version: str | None = None, today: _dt.date | None = None) -> dict[str, str]:
        """Notebook metadata ``metadata.llmsizing`` for the template's cover."""
        return {"customer": self.customer, "title": self.title, "scenario": self.scenario_name,
                "date": self.report_date(today), "version": version or __version__}

    def replace(self, **changes: Any) -> Scenario:
        """A re-validated copy with ``changes`` applied (e.g. ``sc.replace(users=10)``)."""
        d = self.parameters()
        d.update(changes)
        return type(self).from_dict(d, where=self.where)


#: The validated scenario: one frozen field per parameter of the definition, and ``where``.
Scenario = make_dataclass(
    "Scenario",
    [(p.name, p.field_type) for p in PARAMETERS] + [("where", str, field(default="scenario", compare=False))],
    bases=(_ScenarioMethods,),
    frozen=True,
)
Scenario.__module__ = __name__
Scenario.__doc__ = _ScenarioMethods.__doc__


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate ``params/<scenario>.yaml``. Errors name the file and the key.

    A missing ``scenario_name`` defaults to the file's stem (which must then be a safe slug).
    """
    p = Path(path)
    where = str(path)
    text = catalog.read_text_file(p, ScenarioError, MAX_PARAMS_FILE_BYTES, what="params file")
    data = catalog.safe_yaml_loads(text, where, ScenarioError)
    if data is None:
        raise ScenarioError(f"{where}: the file is empty; it needs at least 'kind' (one of: {', '.join(KINDS)})")
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected a mapping of keys at the top level, got {type_name(data)}")
    if "scenario_name" not in data:
        if scenario_name_problem(p.stem):
            raise ScenarioError(f"{where}: the file name is not a safe report folder name; add 'scenario_name:' "
                                f"({scenario_name_problem(p.stem)})")
        data = {**data, "scenario_name": p.stem}
    return Scenario.from_dict(data, where=where)

"""The report's sections, shared by the three notebooks: one call per section.

Each function takes a :class:`~llmsizing.report.study.Study` and returns a :class:`Section`:
the section's text, tables and figures in order. A notebook cell that ends with a section
call shows every piece (as the notebook would show each call on its own), so a notebook is a
list of headings and one call per section::

    # Serving                       (markdown cell)
    sections.serving(study)         (code cell)

The serving, fine-tuning and customer notebooks pick the sections of their kind; the order of
the pieces inside a section lives only here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmsizing.report import figures, narrative, tables
from llmsizing.report.study import Study

__all__ = [
    "Section",
    "assumptions",
    "audit",
    "executive_summary",
    "finetune",
    "finetune_bill_of_materials",
    "finetune_cost",
    "finetune_scaling",
    "methodology",
    "other_bills_of_materials",
    "serving",
    "users_vs_weights",
    "validation",
]


@dataclass
class Section:
    """The pieces of one section (Narrative, Table, TableGroup, ReportFigure), shown one after another."""

    pieces: list[Any]

    def _ipython_display_(self) -> None:
        # IPython exists only inside a notebook kernel, the one place this method is called from.
        from IPython.display import display

        for piece in self.pieces:
            display(piece)

    def __repr__(self) -> str:
        return "\n\n".join(repr(p) for p in self.pieces)


def _section(study: Study, parts: Sequence[Callable[[Study], Any]]) -> Section:
    """Run each part on the study; a part with nothing to show (None) is left out."""
    pieces = (part(study) for part in parts)
    return Section([p for p in pieces if p is not None])


def executive_summary(study: Study) -> Section:
    """What was asked; at a glance, the GPUs to serve and to fine-tune; the conclusions."""
    parts: list[Callable[[Study], Any]] = [narrative.summary_intro]
    if study.serving is not None:
        parts += [tables.serving_at_a_glance, narrative.summary_serving]
    if study.finetune is not None:
        parts += [tables.finetune_at_a_glance, narrative.summary_finetune]
    return _section(study, parts)


def serving(study: Study) -> Section:
    """Smallest deployment per model, memory per GPU by part, every GPU type with its cost."""
    return _section(study, [narrative.serving_intro, tables.serving_summary, figures.memory_breakdown,
                            tables.serving_options, figures.serving_cost])


def users_vs_weights(study: Study) -> Section:
    """Why N users do not need N × the weights, and the context-length sweep."""
    return _section(study, [narrative.users_vs_weights_text, tables.users_vs_weights, figures.context_sweep])


def finetune(study: Study) -> Section:
    """The matrix models × methods × data sizes (GPUs · time) and GPUs against data size."""
    return _section(study, [narrative.finetune_intro, tables.finetune_matrix, figures.gpus_vs_data])


def finetune_cost(study: Study) -> Section:
    """Cost per run, and one run on every GPU type."""
    return _section(study, [tables.finetune_cost_matrix, tables.finetune_by_gpu, figures.finetune_cost])


def finetune_scaling(study: Study) -> Section:
    """Time against GPU count."""
    return _section(study, [figures.time_vs_gpus])


def finetune_bill_of_materials(study: Study) -> Section:
    """Bill of materials of the first method."""
    return _section(study, [tables.finetune_bill_of_materials])


def audit(study: Study) -> Section:
    """The customer's hand-made table, row by row, against our estimate."""
    return _section(study, [narrative.audit_section, tables.audit_table])


def assumptions(study: Study) -> Section:
    """Every assumption the estimates read (Appendix A)."""
    return _section(study, [narrative.assumptions_intro, tables.assumptions_table])


def methodology(study: Study) -> Section:
    """Formulas and sources; with fine-tuning, how data sizes became tokens."""
    parts: list[Callable[[Study], Any]] = [narrative.methodology]
    if study.finetune is not None:
        parts.append(tables.dataset_table)
    return _section(study, parts)


def other_bills_of_materials(study: Study) -> Section:
    """Bills of materials for every method after the first."""
    return _section(study, [tables.other_bills_of_materials])


def validation(study: Study) -> Section:
    """Our estimates against published measurements (customer reports)."""
    return _section(study, [narrative.validation_summary, tables.validation_table, figures.validation_plot])

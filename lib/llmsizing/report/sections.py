"""The report's sections, shared by the three notebooks: one call per section.

Each function takes a :class:`~llmsizing.report.study.Study` and returns a :class:`Section`:
the section's text, tables and figures in order. A notebook cell that ends with a section
call shows every piece (as the notebook would show each call on its own), so a notebook is a
list of headings and one call per section::

    # Serving                       (markdown cell)
    sections.serving(study)         (code cell)

The serving, fine-tuning and customer notebooks pick the sections of their kind; the order of
the pieces inside a section, and its heading, live only here. Each section is built in its
study's report language (:mod:`llmsizing.report.i18n`), and a section with nothing to say
(no audit table, one method only, no priced instance) shows nothing at all, not even its heading.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import html

from llmsizing.report import figures, i18n, narrative, purchase, tables
from llmsizing.report.i18n import N_, _
from llmsizing.report.study import Study

__all__ = [
    "Heading",
    "Section",
    "assumptions",
    "audit",
    "executive_summary",
    "finetune",
    "finetune_bill_of_materials",
    "finetune_cost",
    "finetune_scaling",
    "instances",
    "methodology",
    "other_bills_of_materials",
    "serving",
    "users_vs_weights",
    "validation",
]


@dataclass
class Heading:
    """A section heading (level 1 or 2); level 1 starts a new page unless ``new_page`` is False."""

    text: str
    level: int = 1
    new_page: bool = True

    def _repr_html_(self) -> str:
        anchor = "section-" + "".join(c if c.isalnum() else "-" for c in self.text.lower())[:60]
        cls = ' class="llmsizing-page-break"' if self.new_page and self.level == 1 else ""
        return f'<h{self.level}{cls} id="{anchor}">{html.escape(self.text)}</h{self.level}>'

    def __repr__(self) -> str:
        return f"{'#' * self.level} {self.text}"


@dataclass
class Section:
    """The pieces of one section (Heading, Narrative, Table, TableGroup, ReportFigure), shown one after another."""

    pieces: list[Any]

    def _ipython_display_(self) -> None:
        # IPython exists only inside a notebook kernel, the one place this method is called from.
        from IPython.display import display

        for piece in self.pieces:
            display(piece)

    def __repr__(self) -> str:
        return "\n\n".join(repr(p) for p in self.pieces)


def _has_content(piece: Any) -> bool:
    if piece is None:
        return False
    if isinstance(piece, str):
        return bool(piece.strip())
    if isinstance(piece, tables.TableGroup):
        return bool(piece.tables)
    return True


def _section(study: Study, parts: Sequence[Callable[[Study], Any]], heading: str = "", level: int = 1,
             new_page: bool = True) -> Section:
    """Run each part on the study in its language; a part with nothing to show (None, empty) is left out,
    and a section left with nothing shows nothing, heading included."""
    with i18n.language(study.scenario.report_language):
        pieces = [p for p in (part(study) for part in parts) if _has_content(p)]
    for p in pieces:
        shown = p.tables if isinstance(p, tables.TableGroup) else [p] if isinstance(p, tables.Table) else []
        for t in shown:
            if not any(t.key == s.key and t.caption == s.caption for s in study.shown_tables):
                study.shown_tables.append(t)
    with i18n.language(study.scenario.report_language):
        if pieces and heading:
            pieces.insert(0, Heading(_(heading), level, new_page))
    return Section(pieces)


def _priced(study: Study) -> bool:
    ft = study.finetune
    return any(c.ok and c.plan.fits and c.plan.cost_usd is not None for c in list(ft.matrix) + list(ft.by_gpu))


def _has_instances(study: Study) -> bool:
    return purchase.instances_table(study) is not None or purchase.launch_commands(study) is not None


def _appendix(study: Study, name: str, title: str) -> str:
    """``Appendix A: Assumptions``: letters follow the appendices this report has."""
    present = ["assumptions", "methodology"]
    if _has_instances(study):
        present.append("instances")
    if study.finetune is not None and len(study.finetune.methods) > 1:
        present.append("other_boms")
    if study.validation is not None:
        present.append("validation")
    letter = "ABCDEFGH"[present.index(name)]
    return _("Appendix {letter}: {title}").format(letter=letter, title=_(title))


def instances(study: Study) -> Section:
    """The cloud instances behind every price in the report: provider, region, price, price date."""
    if not _has_instances(study):
        return Section([])
    with i18n.language(study.scenario.report_language):
        title = _appendix(study, "instances", N_("Instances, prices and launch commands"))
    return _section(study, [purchase.instances_table, purchase.launch_commands], title, new_page=False)


def executive_summary(study: Study) -> Section:
    """What was asked; at a glance, the GPUs to serve and to fine-tune; the conclusions."""
    parts: list[Callable[[Study], Any]] = [narrative.summary_intro]
    if study.serving is not None:
        parts += [purchase.serving_at_a_glance, narrative.summary_serving]
    if study.finetune is not None:
        parts += [purchase.finetune_at_a_glance, narrative.summary_finetune]
    return _section(study, parts, N_("Executive summary"), new_page=False)


def serving(study: Study) -> Section:
    """Smallest deployment per model, memory per GPU by part, every GPU type with its cost."""
    return _section(study, [narrative.serving_intro, tables.serving_summary, figures.memory_breakdown,
                            tables.serving_options, figures.serving_cost], N_("Serving"))


def users_vs_weights(study: Study) -> Section:
    """Why N users do not need N × the weights, and the context-length sweep."""
    return _section(study, [narrative.users_vs_weights_text, tables.users_vs_weights, figures.context_sweep],
                    N_("Does every user need its own copy of the weights?"), level=2)


def finetune(study: Study) -> Section:
    """The matrix models × methods × data sizes (GPUs · time) and GPUs against data size."""
    return _section(study, [narrative.finetune_intro, tables.finetune_matrix, figures.gpus_vs_data],
                    N_("Fine-tuning"))


def finetune_cost(study: Study) -> Section:
    """Cost per run, and one run on every GPU type (nothing when no GPU type has a priced instance)."""
    parts: list[Callable[[Study], Any]] = []
    if _priced(study):
        parts = [tables.finetune_cost_matrix, tables.finetune_by_gpu, figures.finetune_cost]
    elif len({c.gpu for c in study.finetune.by_gpu}) > 1:
        parts = [tables.finetune_by_gpu]   # no price, but the other GPU types still compare in GPUs and time
    return _section(study, parts, N_("Cost"), level=2)


def finetune_scaling(study: Study) -> Section:
    """Time against GPU count."""
    return _section(study, [figures.time_vs_gpus], N_("Scaling with more GPUs"), level=2)


def finetune_bill_of_materials(study: Study) -> Section:
    """Bill of materials of the first method."""
    return _section(study, [tables.finetune_bill_of_materials], N_("Bill of materials"), level=2)


def audit(study: Study) -> Section:
    """The customer's hand-made table, row by row, against our estimate (nothing without ``audit_table``)."""
    if not study.audit:
        return Section([])
    return _section(study, [narrative.audit_section, tables.audit_table], N_("Audit of the hand-made table"))


def assumptions(study: Study) -> Section:
    """Every assumption the estimates read (Appendix A)."""
    with i18n.language(study.scenario.report_language):
        title = _appendix(study, "assumptions", N_("Assumptions"))
    return _section(study, [narrative.assumptions_intro, tables.assumptions_table], title)


def methodology(study: Study) -> Section:
    """Formulas and sources; with fine-tuning, how data sizes became tokens."""
    parts: list[Callable[[Study], Any]] = [narrative.methodology]
    if study.finetune is not None:
        parts.append(tables.dataset_table)
    with i18n.language(study.scenario.report_language):
        title = _appendix(study, "methodology", N_("Methodology"))
    return _section(study, parts, title, new_page=False)


def other_bills_of_materials(study: Study) -> Section:
    """Bills of materials for every method after the first (nothing with one method)."""
    if study.finetune is None or len(study.finetune.methods) < 2:
        return Section([])
    with i18n.language(study.scenario.report_language):
        title = _appendix(study, "other_boms", N_("Bills of materials for the other methods"))
    return _section(study, [tables.other_bills_of_materials], title, new_page=False)


def validation(study: Study) -> Section:
    """Our estimates against published measurements (customer reports)."""
    if study.validation is None:
        return Section([])
    with i18n.language(study.scenario.report_language):
        title = _appendix(study, "validation", N_("Validation"))
    return _section(study, [narrative.validation_summary, tables.validation_table, figures.validation_plot], title,
                    new_page=False)

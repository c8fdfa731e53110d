"""Report figures: matplotlib charts from a :class:`~llmsizing.report.study.Study`, legible in print.

No estimation happens here: every plotted value comes from the estimators' results. Figures
are built on :class:`matplotlib.figure.Figure` directly (no pyplot state, so nothing is shown
twice in a notebook) at the width of an A4 text column, with 8-10 pt type, axis labels that
carry their units, and one colour and marker per model kept across every figure.

Each function returns a :class:`ReportFigure`, which displays in a notebook (and so in the
HTML and PDF report) as an embedded PNG with its caption; ``.figure`` is the matplotlib figure.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import glob
import html
import io
import math
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from llmsizing.report import fmt
from llmsizing.report.fmt import gpu_label
from llmsizing.report.i18n import N_, _, ngettext
from llmsizing.report.study import Study
from llmsizing.units import GiB
from llmsizing.validation.cases import CATEGORY_LABELS
from llmsizing.validation.report import figure_predicted_vs_measured

__all__ = ["ReportFigure", "context_sweep", "finetune_cost", "gpus_vs_data", "memory_breakdown", "validation_plot",
           "serving_cost", "time_vs_gpus"]

#: Width of the A4 text column (176 mm) in inches; figures are drawn at print size.
TEXT_WIDTH_IN = 6.9
DPI = 200
RC = {
    "font.family": ["DejaVu Sans"],   # plus Noto Sans CJK where installed (_font_families)
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#d9d9d9",
    "grid.linewidth": 0.5,
    # Names come from users (models, GPUs, config.json): '$x^2$' is text, never mathtext (llmsizing.text).
    "text.parse_math": False,
}
# Okabe-Ito (colour-blind safe) then a few more; markers make lines distinct in grey print too.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442",
          "#7f7f7f", "#8c564b")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")
PART_COLORS = {"weights": "#0072B2", "kv_cache": "#E69F00", "activations": "#009E73", "overhead": "#999999"}
PART_LABELS = {"weights": N_("weights"), "kv_cache": N_("KV cache"), "activations": N_("activations"),
               "overhead": N_("runtime overhead")}


@dataclass
class ReportFigure:
    """A finished figure with its caption; shows as an embedded PNG."""

    figure: Figure
    caption: str
    alt: str = ""

    def png(self) -> bytes:
        """The figure as PNG at print resolution (DPI pixels per inch at the text width it prints at)."""
        buf = io.BytesIO()
        width_in = self.figure.get_size_inches()[0]
        dpi = DPI * min(1.0, TEXT_WIDTH_IN / width_in) if width_in else DPI
        with matplotlib.rc_context(RC):  # tick labels are made while drawing: no mathtext there either
            self.figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
        return buf.getvalue()

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png()).decode("ascii")
        e = html.escape
        return (f'<figure class="llmsizing-figure" style="margin:0.6em 0 1em;break-inside:avoid;'
                f'page-break-inside:avoid">'
                f'<img src="data:image/png;base64,{data}" alt="{e(self.alt or self.caption)}" style="width:100%">'
                f'<figcaption style="font-size:8.5pt;color:#333;margin-top:3pt">{e(self.caption)}</figcaption>'
                f"</figure>")

    def __repr__(self) -> str:
        return f"Figure: {self.caption}"


#: Where Debian's fonts-noto-cjk puts the CJK fonts (matplotlib's font cache may predate their install).
CJK_FONT_GLOB = "/usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc"


@functools.cache
def _font_families() -> list[str]:
    """DejaVu for Latin text, then Noto Sans CJK (fonts-noto-cjk) for Chinese labels, when it is installed."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    if not any(n.startswith("Noto Sans CJK") for n in known):
        for path in sorted(glob.glob(CJK_FONT_GLOB)):
            with contextlib.suppress(Exception):
                font_manager.fontManager.addfont(path)
        known = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [n for n in ("Noto Sans CJK SC", "Noto Sans CJK JP") if n in known]
    cjk = cjk or sorted(n for n in known if n.startswith("Noto Sans CJK"))
    return ["DejaVu Sans"] + cjk[:1]


def _new(height_in: float, ncols: int = 1, sharey: bool = False) -> tuple[Figure, list[Any]]:
    with matplotlib.rc_context({**RC, "font.family": _font_families()}):
        fig = Figure(figsize=(TEXT_WIDTH_IN, height_in), dpi=DPI, layout="constrained")
        axes = fig.subplots(1, ncols, sharey=sharey, squeeze=False)[0]
    return fig, list(axes)


def _style(fn):
    """Run a figure builder under the report's rc settings."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context({**RC, "font.family": _font_families()}):
            return fn(*args, **kwargs)

    return wrapper


def _model_styles(models: list[str]) -> dict[str, dict[str, Any]]:
    return {m: {"color": COLORS[i % len(COLORS)], "marker": MARKERS[i % len(MARKERS)]} for i, m in enumerate(models)}


def _plain_int(x: float, _pos: Any = None) -> str:
    if x >= 1 and abs(x - round(x)) < 1e-9:
        return f"{int(round(x)):,}"
    return f"{x:g}"


def _log_axis(ax: Any, axis: str = "y", base: int = 10) -> bool:
    """Log scale with plain tick labels (1, 2, 5, 10, 20, ... or powers of two); call after plotting.

    An axis with no positive finite data (nothing fits, so nothing was plotted) stays linear: "does not
    fit" is a result to show, never a "Data cannot be log-scaled" crash. Returns whether it is logarithmic.
    """
    lo, hi = (ax.dataLim.y0, ax.dataLim.y1) if axis == "y" else (ax.dataLim.x0, ax.dataLim.x1)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > 0):
        return False
    getattr(ax, f"set_{axis}scale")("log", base=base)
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(_plain_int))
    target.set_minor_formatter(NullFormatter())
    if base == 10:
        lo, hi = (ax.dataLim.y0, ax.dataLim.y1) if axis == "y" else (ax.dataLim.x0, ax.dataLim.x1)
        decades = math.log10(hi / lo) if lo > 0 and hi > 0 and math.isfinite(hi / lo) else 10
        subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)
        target.set_major_locator(LogLocator(base=10, subs=subs, numticks=15))
    return True


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def _tokens_label(n: int) -> str:
    return f"{n // 1024}K" if n >= 1024 and n % 1024 == 0 else f"{n:,}"


# --------------------------------------------------------------------------- serving


@_style
def memory_breakdown(study: Study) -> ReportFigure:
    """Memory of the most loaded GPU per model (preferred GPU type), stacked by part, against capacity."""
    sv = study.serving
    models = sv.models
    fig, (ax,) = _new(0.45 * len(models) + 1.3)
    names = [m.name for m in models][::-1]
    ests = [m.preferred for m in models][::-1]
    left = [0.0] * len(ests)
    for part in ("weights", "kv_cache", "activations", "overhead"):
        vals = [getattr(e.memory_per_gpu, part) / GiB for e in ests]
        ax.barh(names, vals, left=left, color=PART_COLORS[part], label=_(PART_LABELS[part]), height=0.6,
                edgecolor="white", linewidth=0.4)
        left = [lo + v for lo, v in zip(left, vals)]
    capacity = ests[0].gpu_memory_bytes / GiB if ests else 0
    ax.axvline(capacity, color="#C00000", linewidth=1.0, linestyle="--")
    ax.text(capacity, -0.55, _("GPU memory {size}").format(size=fmt.gib(capacity * GiB, 1, with_unit=True)) + " ", color="#C00000", fontsize=7.5,
            va="bottom", ha="right")
    for y, (e, total) in enumerate(zip(ests, left)):
        label = ("× " + ngettext("{n} GPU", "{n} GPUs", e.gpus).format(n=e.gpus)) if e.fits else _("does not fit")
        ax.text(total + capacity * 0.01, y, label, va="center", fontsize=7.5)
    ax.set_xlabel(_("memory per GPU (GiB), most loaded GPU of the layout on {gpu}").format(gpu=gpu_label(sv.gpus[0])))
    ax.set_xlim(0, capacity * 1.18 if capacity else None)
    ax.set_ylim(-0.7, len(ests) - 0.4)
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False)
    return ReportFigure(fig, _("Memory per GPU for {users} users at {tokens} tokens each, by part (weights are shared; "
                               "the KV cache is per user).").format(users=fmt.integer(sv.users),
                                                                    tokens=fmt.tokens(sv.context_tokens)))


@_style
def context_sweep(study: Study) -> ReportFigure:
    """Whole-model memory for the scenario's users against context length; GPUs needed on the preferred type."""
    sv = study.serving
    styles = _model_styles([m.model for m in sv.models])
    fig, (ax1, ax2) = _new(3.6, ncols=2)
    for m in sv.models:
        xs = [p["context_tokens"] for p in m.sweep]
        st = styles[m.model]
        ax1.plot(xs, [p["total_bytes"] / GiB for p in m.sweep], label=m.name, markersize=4, linewidth=1.2, **st)
        fit = [p for p in m.sweep if p["fits"]]
        ax2.plot([p["context_tokens"] for p in fit], [p["gpus"] for p in fit], markersize=4, linewidth=1.2, **st)
    for ax in (ax1, ax2):
        _log_axis(ax, "x", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: _tokens_label(int(round(x)))))
        ax.set_xlabel(_("context per user (tokens)"))
    _log_axis(ax1, "y")
    ax1.set_ylabel(_("weights + KV cache for {users} users (GiB)").format(users=fmt.integer(sv.users)))
    ax1.set_title(_("Memory (weights + KV cache)"), loc="left")
    if not any(p["fits"] for m in sv.models for p in m.sweep):
        _empty(ax2, _("does not fit on {gpu}\nat any context length of the sweep").format(gpu=gpu_label(sv.gpus[0])))
    _log_axis(ax2, "y", base=2)
    ax2.set_ylabel(_("GPUs needed ({gpu})").format(gpu=gpu_label(sv.gpus[0])))
    ax2.set_title(_("GPUs needed"), loc="left")
    fig.legend(*ax1.get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
    return ReportFigure(fig, _("Context-length sweep for {users} concurrent users: whole-model memory (left) and the "
                               "smallest GPU count on {gpu} (right).").format(users=fmt.integer(sv.users),
                                                                              gpu=gpu_label(sv.gpus[0])))


def _dot_plot(ax: Any, names: list[str], series: list[tuple[str, list[float | None], list[bool]]],
              xlabel: str) -> bool:
    """Rows = names (first at the top), one marker per series on a log x axis; hollow = flagged."""
    n = len(series)
    any_point = False
    for j, (label, values, solid) in enumerate(series):
        ys = [len(names) - 1 - i + (j - (n - 1) / 2) * 0.14 for i in range(len(names))]
        pts = [(v, y, s) for v, y, s in zip(values, ys, solid) if v]
        if not pts:
            continue
        any_point = True
        color, marker = COLORS[j % len(COLORS)], MARKERS[j % len(MARKERS)]
        ax.scatter([v for v, _, s in pts if s], [y for _, y, s in pts if s], color=color, marker=marker, s=28,
                   label=label, zorder=3)
        hollow = [(v, y) for v, y, s in pts if not s]
        if hollow:
            ax.scatter([v for v, _ in hollow], [y for _, y in hollow], facecolors="none", edgecolors=color,
                       marker=marker, s=28, zorder=3)
    ax.set_yticks(range(len(names)), names[::-1])
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(xlabel)
    if any_point:
        _log_axis(ax, "x")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, ncol=min(n, 4))
    return any_point


@_style
def serving_cost(study: Study) -> ReportFigure:
    """USD per hour of the smallest fitting deployment, per model and GPU type (dot plot, log scale)."""
    sv = study.serving
    fig, (ax,) = _new(0.42 * len(sv.models) + 1.2)
    series = []
    for g in sv.gpus:
        vals = []
        for m in sv.models:
            cl = m.cluster_by_gpu.get(g)
            vals.append(cl.cost_usd_per_hour if cl is not None else None)
        series.append((gpu_label(g), vals, [True] * len(vals)))
    if not _dot_plot(ax, [m.name for m in sv.models], series, _("on-demand cost of the deployment (USD per hour)")):
        return None
    return ReportFigure(fig, _("Serving cost per hour by GPU type: the cloud instances holding the smallest layout "
                               "that fits (no marker: does not fit, or no priced instance in the catalog)."))


# --------------------------------------------------------------------------- fine-tuning


@_style
def gpus_vs_data(study: Study) -> ReportFigure:
    """GPUs needed to finish within the deadline against data size, one panel per method."""
    ft = study.finetune
    models = list(dict.fromkeys(c.model for c in ft.matrix))
    styles = _model_styles(models)
    fig, axes = _new(3.5, ncols=len(ft.methods), sharey=True)
    xs_all = list(range(len(ft.data_sizes)))
    for ax, method in zip(axes, ft.methods):
        for model in models:
            pts = [(i, ft.cell(model, method, d)) for i, d in enumerate(ft.data_sizes)]
            ok = [(i, c.plan) for i, c in pts if c.ok and c.plan.fits]
            st = styles[model]
            ax.plot([i for i, _ in ok], [p.gpus for _, p in ok], color=st["color"], marker=st["marker"],
                    markersize=4, linewidth=1.1, label=ft.model_names.get(model, model))
            miss = [(i, p) for i, p in ok if not p.meets_deadline]
            if miss:
                ax.scatter([i for i, _ in miss], [p.gpus for _, p in miss], s=60, facecolors="none",
                           edgecolors="#C00000", linewidths=1.0, zorder=5)
        if not ax.lines or not any(len(line.get_xdata()) for line in ax.lines):
            _empty(ax, _("no layout fits"))
            ax.set_title(fmt.method_name(method), loc="left")
            continue
        ax.set_xticks(xs_all, list(ft.data_sizes))
        ax.set_xlabel(_("training data (bytes of text)"))
        ax.set_title(fmt.method_name(method), loc="left")
        _log_axis(ax, "y", base=2)
    axes[0].set_ylabel(_("GPUs ({gpu})").format(gpu=gpu_label(ft.gpu)))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4, frameon=False)
    late = any(c.ok and c.plan.fits and not c.plan.meets_deadline for c in ft.matrix)
    caption = _("GPUs needed to fine-tune within {deadline} against data size.").format(
        deadline=fmt.deadline(ft.deadline_hours))
    if late:
        caption += " " + _("Red circle: even the fastest plan found misses the deadline.")
    return ReportFigure(fig, caption)


@_style
def time_vs_gpus(study: Study) -> ReportFigure:
    """Wall-clock time of one run against the GPU count (fixed counts), one line per model."""
    ft = study.finetune
    models = list(ft.scaling)
    styles = _model_styles(models)
    fig, (ax,) = _new(3.2)
    for model in models:
        cells = ft.scaling[model]
        if not cells:
            continue
        ax.plot([c.plan.gpus for c in cells], [c.plan.hours for c in cells], label=ft.model_names.get(model, model),
                markersize=4, linewidth=1.2, **styles[model])
    if not ax.lines:
        return None
    ax.axhline(ft.deadline_hours, color="#C00000", linestyle="--", linewidth=1.0)
    _log_axis(ax, "x", base=2)
    _log_axis(ax, "y")
    ax.text(ax.dataLim.x1, ft.deadline_hours, _("deadline {deadline}").format(deadline=fmt.deadline(ft.deadline_hours)),
            color="#C00000",
            fontsize=7.5, va="bottom", ha="right")
    ax.set_xlabel(_("GPUs ({gpu})").format(gpu=gpu_label(ft.gpu)))
    ax.set_ylabel(_("wall-clock time (hours)"))
    ax.legend(loc="lower left", frameon=True, framealpha=0.9, edgecolor="#cccccc", ncol=2)
    return ReportFigure(fig, _("Time against GPU count: {method}, {data} of data. Lines bend where communication "
                               "stops shrinking with more GPUs; a model starts at the smallest count it fits "
                               "on.").format(method=fmt.method_name(ft.comparison_method), data=ft.comparison_data))


@_style
def finetune_cost(study: Study) -> ReportFigure:
    """Cost of one run (first method, middle data size) per model and GPU type (dot plot, log scale)."""
    ft = study.finetune
    gpus = list(dict.fromkeys(c.gpu for c in ft.by_gpu))
    models = list(dict.fromkeys(c.model for c in ft.by_gpu))
    fig, (ax,) = _new(0.42 * len(models) + 1.2)
    series = []
    for g in gpus:
        vals, solid = [], []
        for model in models:
            c = next(c for c in ft.by_gpu if c.model == model and c.gpu == g)
            ok = c.ok and c.plan.fits
            vals.append(c.plan.cost_usd if ok else None)
            solid.append(bool(ok and c.plan.meets_deadline))
        series.append((gpu_label(g), vals, solid))
    names = [ft.model_names.get(m, m) for m in models]
    if not _dot_plot(ax, names, series, _("cost of one run (USD)")):
        return None
    return ReportFigure(fig, _("Fine-tuning cost by GPU type: {method}, {data} of data, within {deadline} (hollow "
                               "marker: misses the deadline; no marker: does not fit, or no priced instance in the "
                               "catalog).").format(method=fmt.method_name(ft.comparison_method),
                                                   data=ft.comparison_data, deadline=fmt.deadline(ft.deadline_hours)))


#: The unit the validation module plots each category in (its base units).
_VALIDATION_UNITS = {"finetune-memory": N_("bytes"), "serving-memory": N_("bytes"), "weights": N_("bytes"),
                     "serving-kv-capacity": N_("tokens"), "serving-speed": N_("tokens/s"),
                     "params": N_("parameters"), "throughput": N_("tokens/s per GPU"),
                     "time": N_("tokens/s per GPU")}


def validation_plot(study: Study) -> ReportFigure | None:
    """Predicted against measured for every scored validation case (ours and the other methods), log-log."""
    if study.validation is None:
        return None
    fig = figure_predicted_vs_measured(study.validation)
    # The validation module labels its panels in English and its axes in "base units": name the unit of
    # each category and translate the words.
    for ax in fig.axes:
        title = ax.get_title()
        code = next((c for c, label in CATEGORY_LABELS.items() if label == title), None)
        if code is None:
            continue
        unit = _(_VALIDATION_UNITS.get(code, N_("as measured")))
        ax.set_title(fmt.category_name(code), fontsize=10)
        ax.set_xlabel(_("measured ({unit})").format(unit=unit), fontsize=8)
        ax.set_ylabel(_("predicted ({unit})").format(unit=unit), fontsize=8)
    if fig._suptitle is not None:
        fig.suptitle(_("Predicted against measured (dashed: y = x)"), fontsize=11)
    # The validation module draws through pyplot; closing the figure there keeps the notebook's inline backend
    # from showing it a second time (at screen resolution) after this ReportFigure.
    plt.close(fig)
    return ReportFigure(fig, _("Predicted against measured, one panel per category (log-log; on the diagonal = exact). "
                               "Filled markers: this estimator; other markers: the published formulas of other tools "
                               "where they apply. Throughput and time cases are shown as trained tokens/s per GPU."))

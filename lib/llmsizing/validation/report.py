"""Validation results for people: the text table ``llmsizing validate`` prints, DataFrames and a figure.

For the customer report's appendix:

- ``summary_frame(result)``: one row per category and method — cases, median |error|, max |error|,
  within 10 % / 20 %, bounds satisfied, and for ours the cases out of sample;
- ``rows_frame(result)``: one row per scored case — measured, ours, error %, each method's error %;
- ``head_to_head_frame(result)``: ours against each method on exactly the cases both cover;
- ``figure_predicted_vs_measured(result)``: log-log predicted against measured, y = x line, ours
  and every other method, one panel per category.

``result`` is a ``run.ValidationResult`` (``run.run_validation()``).
"""

from __future__ import annotations

import math
from typing import Any

from llmsizing.validation.cases import CATEGORIES, CATEGORY_LABELS, UNITS
from llmsizing.validation.others import METHODS
from llmsizing.validation.run import OURS, Row, ValidationResult, head_to_head, tokens_per_s_equivalent

SHORT = {OURS: "ours", "accelerate": "accel", "deepspeed": "dspeed", "rule-1.2x": "1.2x", "llm-analysis": "llm-an",
         "vidur": "vidur", "gpu_poor": "gpupoor", "llamafactory": "llamafac"}


def _fmt_value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (dict, list)):
        return "(table)"
    if isinstance(v, str):
        return v
    a = abs(v)
    if a == 0:
        return "0"
    if float(v).is_integer() and a >= 100:
        return f"{v:,.0f}"
    if a >= 1e6:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:,.1f}" if a < 1e4 else f"{v:,.0f}"
    return f"{v:.3g}"


def _fmt_err(e) -> str:
    if e is None:
        return "—"
    if e.ok is not None:
        return "ok" if e.ok else "VIOLATED"
    if e.error_pct is None:
        return "fail" if e.error else "—"
    return f"{e.error_pct:+.1f}%"


def _measured_text(row: Row) -> str:
    c = row.case
    v = _fmt_value(c.value)
    if c.bound == "upper":
        v = "< " + v
    elif c.bound == "lower":
        v = "> " + v
    return f"{v} {c.unit}" if c.quantity != "fits" else v


def _ours_text(row: Row) -> str:
    e = row.estimates.get(OURS)
    if e is None or e.value is None:
        return "fail" if (e and e.error) else "—"
    if isinstance(e.value, bool):
        return _fmt_value(e.value)
    return _fmt_value(e.value / UNITS.get(row.case.unit, 1.0))


def format_table(result: ValidationResult, width_id: int = 52) -> str:
    """Per category: each scored case with measured, ours, error and every method's error; then what is not scored."""
    methods = list(result.methods)
    lines: list[str] = []
    for cat in CATEGORIES:
        rows = result.rows_in(cat)
        if not rows:
            continue
        scored = [r for r in rows if r.case.supported]
        skipped = [r for r in rows if not r.case.supported]
        lines.append(f"== {CATEGORY_LABELS[cat]} ({len(scored)} scored, {len(skipped)} not scored)")
        head = (f"{'case':{width_id}} {'quantity':22} {'measured':>22} {'ours':>12} {'err':>9}  "
                + " ".join(f"{SHORT.get(m, m):>9}" for m in methods))
        lines.append(head)
        for r in scored:
            cid = r.case.id if len(r.case.id) <= width_id else r.case.id[:width_id - 1] + "…"
            mark = "*" if r.in_sample else " "
            lines.append(f"{cid:{width_id}} {r.case.quantity:22} {_measured_text(r):>22} {_ours_text(r):>12} "
                         f"{_fmt_err(r.estimates.get(OURS)):>8}{mark}  "
                         + " ".join(f"{_fmt_err(r.estimates.get(m)):>9}" for m in methods))
            err = r.estimates.get(OURS)
            if err is not None and err.error:
                lines.append(f"    ours failed: {err.error}")
        for r in skipped:
            lines.append(f"  not scored: {r.case.id}: {r.case.reason}")
        lines.append("")
    lines.append("err: (estimate - measured) / measured; ok / VIOLATED: bound cases; —: the method does not apply; "
                 "*: one of our assumptions was calibrated on this case (in sample).")
    lines.append("methods: " + "; ".join(f"{SHORT.get(m.name, m.name)} = {m.label}" for m in METHODS
                                           if m.name in methods))
    return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}%"


def format_summary(result: ValidationResult) -> str:
    """Per category and method: n, median |err|, max |err|, within 10 % / 20 % (bounds: satisfied / n); verdicts."""
    lines = [f"{'category':24} {'method':14} {'n':>4} {'median|err|':>12} {'max|err|':>10} {'<=10%':>6} {'<=20%':>6}"
             f" {'bounds ok':>10} {'out of sample (median)':>14}"]
    for cat in CATEGORIES:
        for s in result.summaries:
            if s.category != cat:
                continue
            if s.median_abs_error_pct is None:
                lines.append(f"{CATEGORY_LABELS[cat]:24} {s.method:14} {s.n:>4} {'—':>12} {'—':>10} {'—':>6} {'—':>6}"
                             f" {f'{s.satisfied}/{s.n}':>10} {'—':>14}")
                continue
            oos = "—" if s.out_of_sample is None else f"{s.out_of_sample}/{s.n}"
            if s.out_of_sample_median_abs_error_pct is not None and s.out_of_sample < s.n:
                oos += f" ({s.out_of_sample_median_abs_error_pct:.1f}%)"
            lines.append(f"{CATEGORY_LABELS[cat]:24} {s.method:14} {s.n:>4} {_pct(s.median_abs_error_pct):>12} "
                         f"{_pct(s.max_abs_error_pct):>10} {s.within_10:>6} {s.within_20:>6} {'—':>10} {oos:>14}")
    lines.append("")
    lines.append("Head to head (median |err| on the cases both cover):")
    for v in verdicts(result):
        lines.append(f"  {CATEGORY_LABELS[v['category']]:24} vs {v['method']:13} n={v['n']:<3} ours {v['ours']:.1f}% "
                     f"vs {v['theirs']:.1f}%  {v['verdict']}")
    losses = [v for v in verdicts(result) if not v["verdict"].startswith("ours better")]
    lines.append("")
    if losses:
        lines.append("Where ours is not better: " + "; ".join(
            f"{CATEGORY_LABELS[v['category']]} vs {v['method']} ({v['verdict']})" for v in losses))
    else:
        lines.append("Ours has the lower median |error| in every category against every method, on the cases each covers.")
    return "\n".join(lines)


def verdicts(result: ValidationResult) -> list[dict[str, Any]]:
    """Ours against each method per category on shared error-scored cases, and bounds satisfied."""
    out = []
    for cat in CATEGORIES:
        for m in result.methods:
            h = head_to_head(result.rows, cat, m)
            if h:
                n, a, b = h
                verdict = "ours better" if a < b else ("tie" if a == b else "METHOD BETTER")
                out.append({"category": cat, "method": m, "n": n, "ours": a, "theirs": b, "verdict": verdict})
                o = head_to_head(result.rows, cat, m, out_of_sample=True)
                if o and o[0] < n:
                    n2, a2, b2 = o
                    v2 = "ours better" if a2 < b2 else ("tie" if a2 == b2 else "METHOD BETTER")
                    out.append({"category": cat, "method": m, "n": n2, "ours": a2, "theirs": b2,
                                "verdict": v2 + " (out of sample)"})
            sat = _bounds_head_to_head(result.rows, cat, m)
            if sat:
                n, a, b = sat
                verdict = "ours better" if a > b else ("tie" if a == b else "METHOD BETTER")
                out.append({"category": cat, "method": m, "n": n, "ours": 100.0 * a / n, "theirs": 100.0 * b / n,
                            "verdict": verdict + " (bounds satisfied, %)"})
    return out


def _bounds_head_to_head(rows, category: str, method: str) -> tuple[int, int, int] | None:
    n = a = b = 0
    for r in rows:
        if r.case.category != category or not r.is_bound or not r.case.supported:
            continue
        x, y = r.estimates.get(OURS), r.estimates.get(method)
        if x and y and x.ok is not None and y.ok is not None:
            n += 1
            a += bool(x.ok)
            b += bool(y.ok)
    return (n, a, b) if n else None


# ----------------------------------------------------------------------------- DataFrames and figure

# pandas and matplotlib (optional heavy dependencies, about half a second to import) are imported inside
# the functions below: `llmsizing validate` uses only the text functions above and must not pay for them.


def summary_frame(result: ValidationResult):
    """pandas DataFrame: category, method, n, median_abs_error_pct, max_abs_error_pct, within_10, within_20,
    satisfied (bounds), out_of_sample (ours)."""
    import pandas as pd

    rows = []
    for s in result.summaries:
        d = s.to_dict()
        d["category"] = CATEGORY_LABELS[s.category]
        rows.append(d)
    return pd.DataFrame(rows, columns=["category", "method", "n", "median_abs_error_pct", "max_abs_error_pct",
                                       "within_10", "within_20", "satisfied", "out_of_sample"])


def rows_frame(result: ValidationResult, include_unsupported: bool = False):
    """pandas DataFrame: one row per case with measured, ours, error % and each method's error %."""
    import pandas as pd

    out = []
    for r in result.rows:
        if not r.case.supported and not include_unsupported:
            continue
        c = r.case
        f = UNITS.get(c.unit, 1.0)
        e = r.estimates.get(OURS)
        d = {"case": c.id, "category": CATEGORY_LABELS[c.category], "quantity": c.quantity, "unit": c.unit,
             "measured": c.value, "bound": c.bound, "confidence": c.confidence,
             "ours": (e.value if isinstance(e.value, bool) else e.value / f) if e and e.value is not None else None,
             "ours_error_pct": e.error_pct if e else None, "in_sample": bool(r.in_sample),
             "reason": c.reason}
        for m in result.methods:
            x = r.estimates.get(m)
            d[f"{m}_error_pct"] = x.error_pct if x else None
        out.append(d)
    return pd.DataFrame(out)


def head_to_head_frame(result: ValidationResult):
    """pandas DataFrame: category, method, n, ours_median_abs_error_pct, method_median_abs_error_pct, verdict."""
    import pandas as pd

    return pd.DataFrame([{"category": CATEGORY_LABELS[v["category"]], "method": v["method"], "n": v["n"],
                          "ours_median_abs_error_pct": v["ours"], "method_median_abs_error_pct": v["theirs"],
                          "verdict": v["verdict"]} for v in verdicts(result)])


MARKERS = {OURS: ("o", "#1f4e79"), "accelerate": ("s", "#d62728"), "deepspeed": ("D", "#9467bd"),
           "rule-1.2x": ("P", "#8c564b"), "llm-analysis": ("^", "#ff7f0e"), "vidur": ("v", "#17becf"),
           "gpu_poor": ("X", "#2ca02c"), "llamafactory": ("*", "#e377c2")}


def figure_predicted_vs_measured(result: ValidationResult, categories: tuple[str, ...] | None = None,
                                 ncols: int = 3):
    """matplotlib Figure: predicted against measured (log-log, y = x), ours and the other methods.

    One panel per category with error-scored cases, in base units (bytes, parameters, tokens), and
    training throughput and time as trained tokens/s per GPU (MFU, TFLOP/s, s/iteration and
    GPU-hours converted back exactly as the estimates were converted), so every case of a panel
    shares the y = x line.
    """
    import matplotlib

    matplotlib.use(matplotlib.get_backend())
    import matplotlib.pyplot as plt

    cats = [c for c in (categories or CATEGORIES)
            if any(r.case.supported and not r.is_bound and r.case.category == c for r in result.rows)]
    nrows = max(1, math.ceil(len(cats) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.9 * nrows), squeeze=False)
    for ax in axes.flat[len(cats):]:
        ax.axis("off")
    for ax, cat in zip(axes.flat, cats):
        lo, hi = math.inf, 0.0
        for method in (OURS, *result.methods):
            xs, ys = [], []
            for r in result.rows_in(cat):
                if not r.case.supported or r.is_bound:
                    continue
                e = r.estimates.get(method)
                if e is None or e.error_pct is None or not isinstance(r.case.value, (int, float)):
                    continue
                x, y = float(r.case.measured_base), float(e.value)
                if cat in ("throughput", "time") and r.case.estimator in ("throughput", "time"):
                    x, y = tokens_per_s_equivalent(r.case, x), tokens_per_s_equivalent(r.case, y)
                if x > 0 and y > 0:
                    xs.append(x)
                    ys.append(y)
            if not xs:
                continue
            lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
            marker, color = MARKERS.get(method, ("o", None))
            ax.scatter(xs, ys, s=34 if method == OURS else 22, marker=marker, color=color,
                       alpha=0.95 if method == OURS else 0.6, label=method, zorder=3 if method == OURS else 2,
                       edgecolors="white" if method == OURS else "none", linewidths=0.5)
        if hi > 0:
            pad = 1.6
            ax.plot([lo / pad, hi * pad], [lo / pad, hi * pad], color="0.4", lw=0.8, ls="--", zorder=1)
            ax.set_xlim(lo / pad, hi * pad)
            ax.set_ylim(lo / pad, hi * pad)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(CATEGORY_LABELS[cat], fontsize=10)
        unit = "tokens/s per GPU" if cat in ("throughput", "time") else "base units"
        ax.set_xlabel(f"measured ({unit})", fontsize=8)
        ax.set_ylabel(f"predicted ({unit})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left", frameon=False)
    fig.suptitle("Predicted against measured (y = x dashed)", fontsize=11)
    fig.tight_layout()
    return fig

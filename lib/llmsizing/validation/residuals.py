"""Fine-tune memory: in-sample and out-of-sample scores kept apart, and the residuals behind the ranges.

``split_summary(rows)`` scores the ``finetune-memory`` rows of a validation run in two groups: the
in-sample cases (``cases.yaml``: constants were calibrated on publications among them) and the
out-of-sample cases (``cases_oos_finetune.yaml``, ``in_sample: false``). For each: n, median and max
|error|, under-estimates, the QLoRA median, ``fits`` verdicts, and the share of cases whose measured
value falls outside the range stated for them. The out-of-sample share is leave-one-out: a case's
range comes from the residuals of its class *without that case*, the range a customer would have
been given before the case was published.

``python -m llmsizing.validation.residuals --update`` writes ``training/memory_residuals.yaml``
(``measured / predicted`` of every scored out-of-sample case, by method × framework), which
``training/ranges.py`` reads.
"""

from __future__ import annotations

import statistics
import sys
from typing import Any, Iterable

import yaml

from llmsizing.assumptions import Assumptions
from llmsizing.training import ranges
from llmsizing.validation.cases import load_cases
from llmsizing.validation.run import run_case

CATEGORY = "finetune-memory"
LIBRARY_FRAMEWORK = "plain-pytorch"   # FinetuneSetup's default, what a case without a framework runs with


def _class(row) -> str:
    c = row.case
    return ranges.class_key(str(c.setup.get("method", "lora")),
                            c.framework or c.setup.get("framework") or LIBRARY_FRAMEWORK)


def _scored(rows: Iterable, in_sample: bool) -> list:
    return [r for r in rows if r.case.category == CATEGORY and r.case.supported and r.case.in_sample == in_sample
            and r.case.quantity != "fits" and r.estimates.get("ours") is not None
            and r.estimates["ours"].error_pct is not None]


def residual_table(rows: Iterable) -> dict[str, list[float]]:
    """``{"method/framework": [measured / predicted, ...]}`` of the scored out-of-sample rows."""
    out: dict[str, list[float]] = {}
    for r in _scored(rows, False):
        out.setdefault(_class(r), []).append(round(r.case.measured_base / r.estimates["ours"].value, 4))
    return {k: sorted(v) for k, v in sorted(out.items())}


def _outside(row, table: dict[str, list[float]], a: Assumptions, leave_one_out: bool) -> bool:
    ratio = row.case.measured_base / row.estimates["ours"].value
    key = _class(row)
    t = dict(table)
    if leave_one_out and key in t:
        own = list(t[key])
        own.remove(round(ratio, 4))
        t[key] = own
    method, framework = key.split("/")
    ratios, _ = ranges.pooled_ratios(method, framework, t, int(a["memory_range_min_cases"]))
    lo, hi = ranges.ratio_bounds(ratios, float(a["memory_range_floor_fraction"]))
    return not lo <= ratio <= hi


def _group(rows: list, fits_rows: list, table, a, leave_one_out: bool) -> dict[str, Any]:
    errs = [r.estimates["ours"].error_pct for r in rows]
    q = [abs(r.estimates["ours"].error_pct) for r in rows if r.case.setup.get("method") == "qlora"]
    fits = [r.estimates["ours"].ok for r in fits_rows if r.estimates.get("ours") and r.estimates["ours"].ok is not None]
    out = [_outside(r, table, a, leave_one_out) for r in rows]
    return {
        "n": len(errs),
        "median_abs_error_pct": statistics.median(abs(e) for e in errs) if errs else None,
        "max_abs_error_pct": max(abs(e) for e in errs) if errs else None,
        "under_estimates": sum(e < 0 for e in errs),
        "qlora_n": len(q), "qlora_median_abs_error_pct": statistics.median(q) if q else None,
        "outside_range": sum(out), "outside_range_share": (sum(out) / len(out)) if out else None,
        "fits_n": len(fits), "fits_agree": sum(bool(x) for x in fits),
    }


def split_summary(rows: Iterable, assumptions: Assumptions | None = None) -> dict[str, Any]:
    """In-sample and out-of-sample scores of the fine-tune memory rows (see the module docstring)."""
    rows = list(rows)
    a = assumptions or Assumptions()
    table = residual_table(rows)
    fits = [r for r in rows if r.case.category == CATEGORY and r.case.supported and r.case.quantity == "fits"]
    return {
        "in_sample": _group(_scored(rows, True), [r for r in fits if r.case.in_sample], table, a, False),
        "out_of_sample": _group(_scored(rows, False), [r for r in fits if not r.case.in_sample], table, a, True),
    }


def format_split(s: dict[str, Any]) -> str:
    """Two lines (in sample, out of sample) for ``llmsizing validate``."""
    def pct(x):
        return "—" if x is None else f"{x:.1f}%"
    lines = ["Fine-tune memory, in sample vs out of sample (ranges: leave-one-out for out of sample):",
             f"  {'':15} {'n':>3} {'median|err|':>11} {'max|err|':>9} {'under':>6} {'QLoRA median':>13} "
             f"{'outside range':>14} {'fits agree':>10}"]
    for name, g in (("in sample", s["in_sample"]), ("out of sample", s["out_of_sample"])):
        share = "—" if g["outside_range_share"] is None else f"{g['outside_range']} ({g['outside_range_share']:.0%})"
        lines.append(f"  {name:15} {g['n']:>3} {pct(g['median_abs_error_pct']):>11} {pct(g['max_abs_error_pct']):>9} "
                     f"{g['under_estimates']:>6} {pct(g['qlora_median_abs_error_pct']) + ' (' + str(g['qlora_n']) + ')':>13} "
                     f"{share:>14} {str(g['fits_agree']) + '/' + str(g['fits_n']):>10}")
    return "\n".join(lines)


def current_table() -> dict[str, list[float]]:
    """The residual table the current model gives on the out-of-sample cases."""
    cases = [c for c in load_cases() if c.category == CATEGORY and not c.in_sample]
    return residual_table(run_case(c, ()) for c in cases)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    table = current_table()
    text = ("# measured / predicted of the out-of-sample fine-tune memory cases, by method/framework.\n"
            "# Generated by `python -m llmsizing.validation.residuals --update`; read by training/ranges.py.\n"
            + yaml.safe_dump({"classes": table}, sort_keys=True, width=120))
    if "--update" in argv:
        ranges.RESIDUALS_FILE.write_text(text, encoding="utf-8")
        ranges.residuals.cache_clear()
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Report tables: pandas DataFrames of formatted cells, from a :class:`~llmsizing.report.study.Study`.

No estimation happens here: every value comes from the estimators' results; this module only
picks, orders and formats them. Units are in the column headers ("Weights (GiB)"), never a
bare "G". Each function returns a :class:`Table`, which a notebook displays as one printable
HTML table (caption, header repeated on every page, rows that do not break, customer strings
escaped) and which tests read through ``.df``.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from llmsizing import catalog
from llmsizing.report.study import FinetuneCell, FinetuneStudy, Study
from llmsizing.serving.estimate import ServingEstimate
from llmsizing.units import GiB, fmt_count, fmt_gb, fmt_hours
from llmsizing.validation.cases import CATEGORY_LABELS
from llmsizing.validation.run import OURS

__all__ = [
    "Table",
    "TableGroup",
    "assumptions_table",
    "audit_table",
    "dataset_table",
    "finetune_bill_of_materials",
    "finetune_by_gpu",
    "finetune_cost_matrix",
    "finetune_at_a_glance",
    "finetune_matrix",
    "gpu_label",
    "other_bills_of_materials",
    "serving_at_a_glance",
    "serving_options",
    "serving_summary",
    "users_vs_weights",
    "validation_table",
]

DASH = "—"


# --------------------------------------------------------------------------- formatting


def gpu_label(slug: str) -> str:
    """Short display name of a catalog GPU ("H100 SXM5 80GB")."""
    try:
        name = catalog.load_gpu(slug).name
    except Exception:  # noqa: BLE001 - a label must never fail a report
        return slug
    return re.sub(r"^(NVIDIA|AMD|Intel|Huawei)\s+(GeForce\s+)?", "", name)


def _num(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return DASH
    return f"{x:,.{digits}f}"


def _gib(n_bytes: float | None, digits: int = 1) -> str:
    return DASH if n_bytes is None else _num(n_bytes / GiB, digits)


def _int(n: int | float | None) -> str:
    return DASH if n is None else f"{int(round(n)):,}"


def _usd(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return DASH
    return f"{x:,.0f}" if x >= 100 else f"{x:,.2f}"


def _hours(h: float | None) -> str:
    if h is None:
        return DASH
    return "< 0.1 min" if h * 60 < 0.05 else fmt_hours(h)


def _method(method: str) -> str:
    return {"lora": "LoRA", "qlora": "QLoRA", "full": "full"}.get(method, method)


def _deadline(hours: float) -> str:
    return f"{hours:g} h" if hours < 48 else _hours(hours)


def _count(n: float | None) -> str:
    return DASH if n is None else fmt_count(n)


# --------------------------------------------------------------------------- Table


# Full-width tables whose cells wrap between words only (the report stylesheet lets long words
# break anywhere, which splits short headers like "Model" mid-word in narrow columns).
_TABLE_STYLE = ("<style>.llmsizing-table table{width:100%;font-size:8pt}"
                ".llmsizing-table-assumptions table,.llmsizing-table-audit table,.llmsizing-table[class*=bom] table{font-size:7pt}"
                ".llmsizing-table th,.llmsizing-table td{overflow-wrap:normal;word-break:normal;"
                "padding:2pt 4pt}</style>")
_NUMERIC_CELL = re.compile(r"^[-+]?[0-9][0-9,]*(\.[0-9]+)?( ?[%×x])?$")


@dataclass
class Table:
    """A formatted table: cells are strings; ``caption`` and ``notes`` print with it."""

    df: pd.DataFrame
    caption: str
    notes: list[str] = field(default_factory=list)
    key: str = ""

    def _align(self, col: str) -> str:
        cells = [str(v) for v in self.df[col] if str(v) not in ("", DASH)]
        return "right" if cells and all(_NUMERIC_CELL.match(c) for c in cells) else "left"

    def to_html(self) -> str:
        e = html.escape
        aligns = [self._align(c) for c in self.df.columns]
        head = "".join(f'<th style="text-align:{a}">{e(str(c))}</th>' for c, a in zip(self.df.columns, aligns))
        body = []
        for row in self.df.itertuples(index=False):
            cells = "".join(f'<td style="text-align:{a}">{e(str(v))}</td>' for v, a in zip(row, aligns))
            body.append(f"<tr>{cells}</tr>")
        notes = "".join(f"<p class=\"llmsizing-table-note\" style=\"font-size:8pt;color:#444;margin:0.2em 0\">"
                        f"{e(n)}</p>" for n in self.notes)
        cls = f"llmsizing-table llmsizing-table-{e(self.key)}" if self.key else "llmsizing-table"
        return (f'{_TABLE_STYLE}<div class="{cls}">'
                f'<table><caption style="caption-side:top;text-align:left;font-weight:bold;'
                f'padding-bottom:3pt">{e(self.caption)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{notes}</div>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        text = self.df.to_string(index=False)
        return f"{self.caption}\n{text}" + "".join(f"\n{n}" for n in self.notes)


def _table(rows: Sequence[dict[str, Any]], caption: str, notes: Iterable[str] = (), key: str = "",
           columns: Sequence[str] | None = None) -> Table:
    df = pd.DataFrame(list(rows), columns=list(columns) if columns else None)
    return Table(df=df, caption=caption, notes=[n for n in notes if n], key=key)


# --------------------------------------------------------------------------- serving


NBSP = "\u00a0"


def _layout(est: ServingEstimate) -> str:
    lay = est.layout
    parts = [f"TP{NBSP}{lay.tensor_parallel}"]
    if lay.pipeline_parallel > 1:
        parts.append(f"PP{NBSP}{lay.pipeline_parallel}")
    if lay.expert_parallel > 1:
        parts.append(f"EP{NBSP}{lay.expert_parallel}")
    return " × ".join(parts)


def serving_summary(study: Study) -> Table:
    """The smallest deployment of every model on the preferred GPU type."""
    sv = study.serving
    gpu = sv.gpus[0]
    rows = []
    for m in sv.models:
        est = m.preferred
        rows.append({
            "Model": m.name,
            "Weights (GiB)": _gib(est.weights_bytes_total),
            "KV cache per user (GiB)": _gib(m.users_comparison["kv_cache_bytes_per_user"], 2),
            "GPUs": _int(est.gpus) if est.fits else "does not fit",
            "Layout": _layout(est) if est.fits else DASH,
            "Memory per GPU (GiB)": _gib(est.memory_per_gpu.total) if est.fits else DASH,
            "Max users": _int(est.max_concurrent_users) if est.fits else DASH,
            "Decode (tokens/s per user)": _num(est.decode_tokens_per_s_per_user, 0),
            "First token (s)": _num(est.ttft_s, 2),
        })
    precisions = sorted({f"{m.preferred.precision} weights with a {m.preferred.kv_precision} KV cache"
                         for m in sv.models})
    notes = [f"{sv.users} concurrent users, {sv.context_tokens:,} tokens of context each (prompt + output), "
             f"engine {sv.engine}, {'; '.join(precisions)}. Memory per GPU is the most loaded GPU, including the "
             "engine's runtime reserve; max users is what the KV-cache pool of this layout holds at this context.",
             "Decode speed and time to first token are roofline estimates (memory bandwidth and FLOP at the "
             "efficiencies in the assumptions table), not measurements."]
    return _table(rows, f"Serving: smallest deployment on {gpu_label(gpu)}", notes, key="serving")


def serving_at_a_glance(study: Study) -> Table:
    """Executive summary: GPUs per model on the preferred type, and the cheapest option that fits."""
    sv = study.serving
    pref = gpu_label(sv.gpus[0])
    rows = []
    for m in sv.models:
        est = m.preferred
        if est.fits:
            lay = est.layout
            nodes = f" ({lay.nodes} nodes)" if lay.nodes > 1 else ""
            first = f"{est.gpus}{nodes}"
        else:
            first = "does not fit"
        rec = m.recommended
        cl = m.cluster_by_gpu.get(m.recommended_gpu) if m.recommended_gpu else None
        rows.append({"Model": m.name, f"GPUs ({pref})": first,
                     "Cheapest option": f"{rec.gpus} × {gpu_label(m.recommended_gpu)}" if rec else "none fits",
                     "Cost (USD per hour)": _usd(cl.cost_usd_per_hour) if cl else DASH})
    notes = [f"{sv.users} concurrent users at {sv.context_tokens:,} tokens each; cost: on-demand cloud instances."]
    return _table(rows, f"Serving {sv.users} concurrent users: GPUs needed", notes, key="serving-glance")


def finetune_at_a_glance(study: Study) -> Table:
    """Executive summary: GPUs per model and data size for the first method, deadline misses flagged."""
    ft = study.finetune
    method = ft.methods[0]
    rows = []
    for model in dict.fromkeys(c.model for c in ft.matrix):
        row = {"Model": ft.model_names.get(model, model)}
        for d in ft.data_sizes:
            c = ft.cell(model, method, d)
            if not c.ok:
                row[d] = "not possible"
            elif not c.plan.fits:
                row[d] = "does not fit"
            else:
                row[d] = f"{c.plan.gpus:,}" + ("" if c.plan.meets_deadline else " (late)")
        rows.append(row)
    notes = [f"GPUs ({gpu_label(ft.gpu)}) for {_method(method)} to finish within {_deadline(ft.deadline_hours)}; "
             "'late': even the fastest plan found misses the deadline. All methods, times and costs: "
             "the fine-tuning section."]
    return _table(rows, f"Fine-tuning within {_deadline(ft.deadline_hours)} ({_method(method)}): GPUs needed by "
                        "data size", notes, key="finetune-glance")


def serving_options(study: Study) -> Table:
    """Every model on every candidate GPU type: GPUs needed and USD per hour; the recommendation marked."""
    sv = study.serving
    rows = []
    for m in sv.models:
        row = {"Model": m.name}
        for g in sv.gpus:
            est = m.by_gpu[g]
            if not est.fits:
                row[gpu_label(g)] = "does not fit"
                continue
            cl = m.cluster_by_gpu.get(g)
            cost = f", USD {_usd(cl.cost_usd_per_hour)}/h" if cl is not None and cl.cost_usd_per_hour else ""
            mark = " (recommended)" if g == m.recommended_gpu else ""
            row[gpu_label(g)] = f"{est.gpus} GPU{'s' if est.gpus != 1 else ''}{cost}{mark}"
        rows.append(row)
    notes = ["USD per hour is the on-demand price of the cloud instances holding those GPUs (catalog price, "
             "region and date per instance; see the methodology appendix). The recommendation is the cheapest "
             "option that fits; without a price, the first GPU type that fits in the order given."]
    return _table(rows, "Serving options across GPU types", notes, key="serving-options")


def users_vs_weights(study: Study) -> Table:
    """Weights once + KV per user, against the "users × the weights" guess."""
    sv = study.serving
    n = sv.users
    rows = []
    for m in sv.models:
        c = m.users_comparison
        rows.append({
            "Model": m.name,
            "Weights, loaded once (GiB)": _gib(c["weights_bytes"]),
            "KV cache per user (GiB)": _gib(c["kv_cache_bytes_per_user"], 2),
            f"{n} users: weights + {n} × KV (GiB)": _gib(c["total_bytes"]),
            f"Guess: {n} × weights (GiB)": _gib(c["naive_guess_bytes"]),
            "Guess ÷ actual": f"{c['naive_over_actual']:.2f}×",
        })
    ctx = sv.models[0].users_comparison["context_tokens"] if sv.models else sv.context_tokens
    notes = [f"Whole-model memory at {ctx:,} tokens per user, before the serving engine's runtime reserve."]
    return _table(rows, f"{n} users ≈ {n} × the weights? Weights are shared; only the KV cache grows per user",
                  notes, key="users-vs-weights")


# --------------------------------------------------------------------------- fine-tuning


def _cell_text(cell: FinetuneCell, what: str = "gpus") -> str:
    if not cell.ok:
        return "not possible"
    p = cell.plan
    if not p.fits:
        return "does not fit"
    if what == "cost":
        return _usd(p.cost_usd)
    text = f"{p.gpus} · {_hours(p.hours)}"
    return text if p.meets_deadline else f"{text} (misses deadline)"


def _matrix_rows(ft: FinetuneStudy, column: str, what: str) -> list[dict[str, Any]]:
    """One row per model × method, one column per data size (``column`` formats its header)."""
    rows = []
    for model in dict.fromkeys(c.model for c in ft.matrix):
        for method in ft.methods:
            row = {"Model": ft.model_names.get(model, model), "Method": _method(method)}
            for d in ft.data_sizes:
                row[column.format(d=d)] = _cell_text(ft.cell(model, method, d), what)
            rows.append(row)
    return rows


def finetune_matrix(study: Study) -> Table:
    """Models × methods × data sizes: GPUs and time of the smallest plan that meets the deadline."""
    ft = study.finetune
    rows = _matrix_rows(ft, "{d}", "gpus")
    notes = [f"Each cell: GPUs ({gpu_label(ft.gpu)}) · wall-clock time of the smallest plan that finishes within "
             f"{_deadline(ft.deadline_hours)}. 'misses deadline': the fastest plan found, which is still too slow; "
             "'does not fit': no layout fits in GPU memory.",
             "Data sizes are bytes of raw text unless they say tokens or samples; the dataset table shows how "
             "bytes became tokens."]
    errors = sorted({f"{c.model} {c.method} {c.data}: {c.error}" for c in ft.matrix if not c.ok})
    notes += [f"Not possible — {e}" for e in errors[:5]]
    return _table(rows, f"Fine-tuning within {_deadline(ft.deadline_hours)}: GPUs · time", notes, key="finetune-matrix")


def finetune_cost_matrix(study: Study) -> Table:
    """Models × methods × data sizes: cost of each run (USD, on-demand instances)."""
    ft = study.finetune
    rows = _matrix_rows(ft, "{d} (USD)", "cost")
    notes = ["Cost = nodes × on-demand price per node-hour × hours, for the plans of the previous table."]
    if all(c.plan is None or c.plan.cost_usd is None for c in ft.matrix):
        notes.append(f"The catalog has no priced cloud instance with {gpu_label(ft.gpu)} GPUs.")
    return _table(rows, "Fine-tuning cost per run (USD)", notes, key="finetune-cost")


def finetune_bill_of_materials(study: Study, method: str | None = None) -> Table:
    """One row per model × data size for ``method``: GPUs, layout, CPU, RAM, storage, network, time, cost."""
    ft = study.finetune
    method = method or ft.methods[0]
    rows = []
    for c in ft.matrix:
        if c.method != method:
            continue
        row: dict[str, Any] = {"Model": ft.model_names.get(c.model, c.model), "Data": c.data}
        p = c.plan
        if p is None or not p.fits:
            row.update({"GPUs": "not possible" if p is None else "does not fit"})
            rows.append(row)
            continue
        lay = p.layout
        parts = [f"DP {lay.dp}"]
        if lay.tp > 1:
            parts.insert(0, f"TP {lay.tp}")
        if lay.pp > 1:
            parts.insert(0, f"PP {lay.pp}")
        if lay.zero:
            parts.append(f"ZeRO-{lay.zero}")
        if lay.offload != "none":
            parts.append(f"offload {lay.offload}")
        cl = p.cluster
        row.update({
            "GPUs": f"{p.gpus}",
            "Layout": " × ".join(parts[:3]) + ("".join(f", {x}" for x in parts[3:])),
            "Nodes": _int(cl.nodes) if cl else DASH,
            "CPU cores": _int(cl.cpu_cores) if cl else DASH,
            "RAM (GiB)": _gib(cl.ram_bytes, 0) if cl else DASH,
            "Storage (GB)": fmt_gb(cl.storage_bytes, 0).replace(" GB", "") if cl else DASH,
            "Network (Gbit/s per node)": (f"{cl.network_gbps:,.1f}" + (" RDMA" if cl.rdma_needed else "")) if cl else DASH,
            "Time": _hours(p.hours),
            "Cost (USD)": _usd(p.cost_usd),
        })
        rows.append(row)
    cols = ["Model", "Data", "GPUs", "Layout", "Nodes", "CPU cores", "RAM (GiB)", "Storage (GB)",
            "Network (Gbit/s per node)", "Time", "Cost (USD)"]
    notes = [f"{gpu_label(ft.gpu)}; method {method}. CPU cores, host RAM and storage are requirements of the "
             "run (data loading, tokenization, checkpoints, offloaded states), not the size of the instance; "
             "network is the inter-node traffic that must hide behind compute (RDMA when it exceeds the "
             "threshold in the assumptions)."]
    return _table(rows, f"Fine-tuning bill of materials: {method}", notes, key=f"bom-{method}", columns=cols)


def finetune_by_gpu(study: Study) -> Table:
    """One run (first method, middle data size) on every candidate GPU type: GPUs, time and cost."""
    ft = study.finetune
    gpus = list(dict.fromkeys(c.gpu for c in ft.by_gpu))
    rows = []
    for model in dict.fromkeys(c.model for c in ft.by_gpu):
        row = {"Model": ft.model_names.get(model, model)}
        for c in ft.by_gpu:
            if c.model != model:
                continue
            text = _cell_text(c)
            if c.ok and c.plan.fits and c.plan.cost_usd is not None:
                text += f" · USD {_usd(c.plan.cost_usd)}"
            row[gpu_label(c.gpu)] = text
        rows.append(row)
    notes = [f"Method {ft.comparison_method}, {ft.comparison_data} of data, deadline {_deadline(ft.deadline_hours)}: "
             "GPUs · time · cost on each GPU type."]
    return _table(rows, "Fine-tuning across GPU types", notes, key="finetune-by-gpu")


def dataset_table(study: Study) -> Table:
    """How each data size became training tokens, per tokenizer of the models in the study."""
    ft = study.finetune
    rows = []
    examples: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for c in ft.matrix:
        if not c.ok:
            continue
        ds = c.plan.dataset
        if (ds.tokenizer, c.data) in seen:
            continue
        seen.add((ds.tokenizer, c.data))
        examples.setdefault(ds.tokenizer, ds.explanation)
        rows.append({"Tokenizer": ds.tokenizer, "Data": c.data, "Bytes per token": f"{ds.bytes_per_token:.2f}",
                     "Tokens in the data": _count(ds.text_tokens), "Tokens processed": _count(ds.train_tokens)})
    order = {d: i for i, d in enumerate(ft.data_sizes)}
    rows.sort(key=lambda r: (r["Tokenizer"], order.get(r["Data"], 0)))
    notes = [f"For example ({tok}): {text}" for tok, text in sorted(examples.items())]
    return _table(rows, "From data size to training tokens", notes, key="dataset")


# --------------------------------------------------------------------------- assumptions and audit


def _value(v: Any, unit: str) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)) and unit == "bytes" and v >= 2**20:
        return f"{v / GiB:,.2f} GiB"
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# "80G" after a digit run that is not part of a name ("A10G" is a GPU, "A100-SXM4-80G" a size).
_BARE_G = re.compile(r"(?<![A-Za-z0-9])([0-9]+(?:\.[0-9]+)?)G\b(?![BbiP])")


def _sized(text: str) -> str:
    """Quoted hardware labels such as 'A100-SXM4-80G' say GB in a report (a bare G is ambiguous)."""
    return _BARE_G.sub(r"\1GB", text)


def assumptions_table(study: Study) -> Table:
    """Every assumption the study's estimates read: value (and default when overridden), unit, source."""
    rows = []
    for r in study.assumptions.table(only_used=True):
        value = _value(r["value"], r["unit"])
        if r["overridden"]:
            value += f" (default {_value(r['default'], r['unit'])})"
        unit = "" if r["unit"] == "bytes" and "GiB" in value else r["unit"]
        rows.append({"Assumption": r["name"], "Value": value, "Unit": unit, "Meaning": _sized(r["help"]),
                     "Source": _sized(r["source"])})
    overridden = [r["name"] for r in study.assumptions.table(only_used=True) if r["overridden"]]
    notes = [f"{len(rows)} assumptions were used by the estimates in this report."]
    if overridden:
        notes.append("Changed for this scenario: " + ", ".join(overridden) + ".")
    return _table(rows, "Assumptions used in this report", notes, key="assumptions",
                  columns=["Assumption", "Value", "Unit", "Meaning", "Source"])


# The hand-made table is in Chinese; the report font has no CJK glyphs, so its terms are translated.
_GLOSSARY = (("模型并行", "model parallel"), ("数据并行", "data parallel"), ("单卡", "single GPU,"),
             ("微调", "fine-tuning"), ("核", " cores"))


def _english(text: str) -> str:
    for zh, en in _GLOSSARY:
        text = text.replace(zh, en)
    return " ".join(text.split())


def audit_table(study: Study) -> Table | None:
    """The customer's own table, row by row, against our estimate (``llmsizing.audit``); None without it."""
    if not study.audit:
        return None
    rows = []
    for a in study.audit:
        r, st, rec = a.row, a.stated, a.recommended
        plan = a.best_here if a.best_here.fits else rec
        cl = plan.cluster
        if a.weights_bytes > a.gpu_memory_total_bytes:
            written = "cannot hold the model"
        elif not st.fits:
            written = "does not fit"
        else:
            written = f"{_hours(st.hours)}" + ("" if st.meets_deadline else " (late)")
        if rec.fits:
            ours = (f"{rec.gpus:,} GPU{'s' if rec.gpus != 1 else ''} · {_hours(rec.hours)}"
                    + ("" if rec.meets_deadline else " (late)"))
            if rec.cost_usd is not None:
                ours += f" · USD {_usd(rec.cost_usd)}"
        else:
            ours = "does not fit"
        if cl is None:
            needs = DASH
        else:
            net = ("one node" if cl.nodes == 1 else
                   f"{cl.network_gbps:,.0f} Gbit/s" + (" RDMA" if cl.rdma_needed else ""))
            needs = f"{cl.cpu_cores:,} cores · {_gib(cl.ram_bytes, 0)} GiB RAM · {fmt_gb(cl.storage_bytes, 0)} · {net}"
        rows.append({
            "Row": _sized(f"{r.model_text} {'BF16' if r.precision == 'bf16' else r.precision} "
                          f"({_method(r.method)}), {r.data}"),
            "As written": _sized(_english(f"{r.gpus} × {r.gpu_text} · {r.strategy}")),
            "Time as written": written,
            "Smallest that meets the day": ours,
            "Host as written": _sized(f"{r.cpu_cores} cores · {fmt_gb(r.ram_bytes, 0)} RAM · "
                                      f"{fmt_gb(r.ssd_bytes, 0)} · {r.network_gbps:g} Gbit/s"
                                      + (" RDMA" if r.rdma else "")),
            "Host needed": needs,
        })
    notes = ["Time as written: the row's GPU count and layout; 'late': longer than one day. Smallest that meets "
             "the day: the planner's GPU count of the same type. Host needed: CPU cores, host RAM, storage and "
             "network of the plan on the row's GPUs (or of the smallest plan when the row's GPUs cannot hold it)."]
    return _table(rows, "Audit of the hand-made fine-tuning table", notes, key="audit")


def validation_table(study: Study) -> Table | None:
    """Our error per validation category (``llmsizing.validation``); None without validation results."""
    v = study.validation
    if v is None:
        return None
    rows = []
    for s in v.summaries:
        if s.method != OURS:
            continue
        err = s.median_abs_error_pct is not None
        rows.append({"Category": CATEGORY_LABELS.get(s.category, s.category), "Cases": _int(s.n),
                     "Median |error| (%)": _num(s.median_abs_error_pct, 1) if err else DASH,
                     "Max |error| (%)": _num(s.max_abs_error_pct, 1) if err else DASH,
                     "Within 10 %": _int(s.within_10) if err else DASH,
                     "Within 20 %": _int(s.within_20) if err else DASH,
                     "Bounds satisfied": f"{s.satisfied}/{s.n}" if s.satisfied is not None else DASH})
    notes = ["Bounds: cases that only say a configuration fits or runs out of memory."]
    return _table(rows, "Validation against published measurements", notes, key="validation")


@dataclass
class TableGroup:
    """Several tables shown one after another."""

    tables: list[Table]

    def _repr_html_(self) -> str:
        return "".join(t.to_html() for t in self.tables)

    def __repr__(self) -> str:
        return "\n\n".join(repr(t) for t in self.tables)


def other_bills_of_materials(study: Study) -> TableGroup:
    """Bills of materials for every method after the first (the first is in the main text)."""
    ft = study.finetune
    return TableGroup([finetune_bill_of_materials(study, m) for m in ft.methods[1:]])

"""Report tables: pandas DataFrames of formatted cells, from a :class:`~llmsizing.report.study.Study`.

No estimation happens here: every value comes from the estimators' results; this module only
picks, orders and formats them. Units are in the column headers ("Weights (GiB)"), never a
bare "G". Each function returns a :class:`Table`, which a notebook displays as one printable
HTML table (caption, header repeated on every page, rows that do not break, customer strings
escaped) and which tests read through ``.df``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from llmsizing.report import fmt
from llmsizing.report.fmt import DASH, gpu_label
from llmsizing.report.i18n import NBSP, _, ngettext
from llmsizing.report.study import FinetuneCell, FinetuneStudy, Study
from llmsizing.serving.estimate import ServingEstimate

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
    "finetune_matrix",
    "gpu_label",
    "other_bills_of_materials",
    "serving_options",
    "serving_summary",
    "users_vs_weights",
    "validation_table",
]

def _num(x: float | None, digits: int = 1) -> str:
    return fmt.number(x, digits)


def _gib(n_bytes: float | None, digits: int = 1) -> str:
    return fmt.gib(n_bytes, digits)


def _int(n: int | float | None) -> str:
    return DASH if n is None else fmt.integer(n)


def _usd(x: float | None) -> str:
    return fmt.usd(x)


def _hours(h: float | None) -> str:
    return fmt.hours(h)


def _method(method: str) -> str:
    return fmt.method_name(method)


def _deadline(hours: float) -> str:
    return fmt.deadline(hours)


def _count(n: float | None) -> str:
    return fmt.count(n)


def _gpus(n: int) -> str:
    return ngettext("{n} GPU", "{n} GPUs", n).format(n=fmt.integer(n)).replace(" ", NBSP)


# --------------------------------------------------------------------------- Table


# Full-width tables whose cells wrap between words only (the report stylesheet lets long words
# break anywhere, which splits short headers like "Model" mid-word in narrow columns).
_TABLE_STYLE = ("<style>.llmsizing-table table{width:100%;font-size:8pt}"
                ".llmsizing-table-assumptions table,.llmsizing-table-audit table,.llmsizing-table[class*=bom] table{font-size:7pt}"
                ".llmsizing-table-wide table{font-size:6.8pt}"
                ".llmsizing-table th,.llmsizing-table td{overflow-wrap:break-word;word-break:normal;hyphens:manual;"
                "padding:2pt 3pt}"
                ".llmsizing-table-fixed table{table-layout:fixed}"
                ".llmsizing-table-fixed td{overflow-wrap:anywhere}"
                ".llmsizing-table-notes{break-before:avoid;page-break-before:avoid}"
                ".llmsizing-table-launch td:last-child{font-family:'DejaVu Sans Mono',monospace;font-size:6.8pt}"
                "</style>")
_NUMERIC_CELL = re.compile(r"^[-+]?[0-9][0-9,]*(\.[0-9]+)?( ?[%×x])?$")
# Wide tables (many columns) print smaller so they stay inside the text column.
_WIDE_COLUMNS = 8


@dataclass
class Table:
    """A formatted table: cells are strings; ``caption`` and ``notes`` print with it."""

    df: pd.DataFrame
    caption: str
    notes: list[str] = field(default_factory=list)
    key: str = ""
    widths: list[float] | None = None   # column widths in % of the text width (fixed layout); None: automatic

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
        if notes:
            notes = f'<div class="llmsizing-table-notes">{notes}</div>'
        cls = f"llmsizing-table llmsizing-table-{e(self.key)}" if self.key else "llmsizing-table"
        if len(self.df.columns) >= _WIDE_COLUMNS:
            cls += " llmsizing-table-wide"
        cols = ""
        if self.widths and len(self.widths) == len(self.df.columns):
            cls += " llmsizing-table-fixed"
            cols = "<colgroup>" + "".join(f'<col style="width:{w:g}%">' for w in self.widths) + "</colgroup>"
        return (f'{_TABLE_STYLE}<div class="{cls}">'
                f'<table><caption style="caption-side:top;text-align:left;font-weight:bold;'
                f'padding-bottom:3pt">{e(self.caption)}</caption>{cols}'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{notes}</div>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        text = self.df.to_string(index=False)
        return f"{self.caption}\n{text}" + "".join(f"\n{n}" for n in self.notes)


def _table(rows: Sequence[dict[str, Any]], caption: str, notes: Iterable[str] = (), key: str = "",
           columns: Sequence[str] | None = None, widths: Sequence[float] | None = None) -> Table:
    df = pd.DataFrame(list(rows), columns=list(columns) if columns else None)
    return Table(df=df, caption=caption, notes=[n for n in notes if n], key=key,
                 widths=list(widths) if widths else None)


# --------------------------------------------------------------------------- serving


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
            _("Model"): m.name,
            _("Weights (GiB)"): _gib(est.weights_bytes_total),
            _("Precision"): fmt.precision_name(est.precision),
            _("KV cache per user (GiB)"): _gib(m.users_comparison["kv_cache_bytes_per_user"], 2),
            _("GPUs"): _int(est.gpus) if est.fits else _("does not fit"),
            _("Layout"): _layout(est) if est.fits else DASH,
            _("Memory per GPU (GiB)"): _gib(est.memory_per_gpu.total) if est.fits else DASH,
            _("Max users"): _int(est.max_concurrent_users) if est.fits else DASH,
            _("Decode (tokens/s per user)"): _num(est.decode_tokens_per_s_per_user, 0),
            _("First token (s)"): _num(est.ttft_s, 2),
        })
    precisions = sorted({_("{weights} weights with a {kv} KV cache").format(
        weights=fmt.precision_name(m.preferred.precision), kv=fmt.precision_name(m.preferred.kv_precision))
        for m in sv.models})
    notes = [_("{users} concurrent users, {tokens} tokens of context each (prompt + output), engine {engine}, "
               "{precisions}. Memory per GPU is the most loaded GPU, including the engine's runtime reserve; max "
               "users is what the KV-cache pool of this layout holds at this context.").format(
                 users=fmt.integer(sv.users), tokens=fmt.tokens(sv.context_tokens), engine=sv.engine,
                 precisions="; ".join(precisions)),
             _("Decode speed and time to first token are roofline estimates (memory bandwidth and FLOP at the "
               "efficiencies in the assumptions table), not measurements.")]
    return _table(rows, _("Serving: smallest deployment on {gpu}").format(gpu=gpu_label(gpu)), notes, key="serving")


def _offload_note(ft: FinetuneStudy, method: str) -> str:
    """A caveat for the plans that only fit by offloading states to host RAM."""
    off = [c for c in ft.matrix if c.method == method and c.ok and c.plan.fits and c.plan.layout.offload != "none"]
    if not off:
        return ""
    worst = max(off, key=lambda c: c.plan.cluster.ram_bytes if c.plan.cluster else 0)
    ram = worst.plan.cluster.ram_bytes if worst.plan.cluster else None
    names = sorted({ft.model_names.get(c.model, c.model) for c in off})
    return _("Caveat: the plans for {models} fit only by offloading optimizer states or weights to host RAM "
             "(up to {ram} per node), which needs that much server memory and makes each step slower.").format(
        models=", ".join(names), ram=fmt.gib(ram, 0, with_unit=True))


def serving_options(study: Study) -> Table:
    """Every model on every candidate GPU type: GPUs needed and USD per hour; the recommendation marked."""
    sv = study.serving
    rows = []
    for m in sv.models:
        row = {_("Model"): m.name}
        for g in sv.gpus:
            est = m.by_gpu[g]
            if not est.fits:
                row[gpu_label(g)] = _("does not fit")
                continue
            cl = m.cluster_by_gpu.get(g)
            text = _gpus(est.gpus)
            if cl is not None and cl.cost_usd_per_hour:
                text += ", " + _("{usd}/h").format(usd=fmt.usd(cl.cost_usd_per_hour, with_unit=True))
            if g == m.recommended_gpu:
                text += " " + _("(recommended)")
            row[gpu_label(g)] = text
        rows.append(row)
    notes = [_("USD per hour is the on-demand price of the cloud instances holding those GPUs (catalog price; "
               "provider, region and price date per instance in the appendix). The recommendation is the cheapest "
               "option that fits; without a price, the first GPU type that fits in the order given.")]
    return _table(rows, _("Serving options across GPU types"), notes, key="serving-options")


def users_vs_weights(study: Study) -> Table:
    """Weights once + KV per user, against the "users × the weights" guess."""
    sv = study.serving
    n = fmt.integer(sv.users)
    rows = []
    for m in sv.models:
        c = m.users_comparison
        rows.append({
            _("Model"): m.name,
            _("Weights, loaded once (GiB)"): _gib(c["weights_bytes"]),
            _("KV cache per user (GiB)"): _gib(c["kv_cache_bytes_per_user"], 2),
            _("{n} users: weights + {n} × KV (GiB)").format(n=n): _gib(c["total_bytes"]),
            _("Guess: {n} × weights (GiB)").format(n=n): _gib(c["naive_guess_bytes"]),
            _("Guess ÷ actual"): f"{_num(c['naive_over_actual'], 2)}×",
        })
    ctx = sv.models[0].users_comparison["context_tokens"] if sv.models else sv.context_tokens
    notes = [_("Whole-model memory at {tokens} tokens per user, before the serving engine's runtime "
               "reserve.").format(tokens=fmt.tokens(ctx))]
    return _table(rows, _("{n} users ≈ {n} × the weights? Weights are shared; only the KV cache grows per "
                          "user").format(n=n), notes, key="users-vs-weights")


# --------------------------------------------------------------------------- fine-tuning


def _cell_text(cell: FinetuneCell, what: str = "gpus") -> str:
    if not cell.ok:
        return _("not possible")
    p = cell.plan
    if not p.fits:
        return _("does not fit")
    if what == "cost":
        return _usd(p.cost_usd)
    text = f"{fmt.integer(p.gpus)} · {_hours(p.hours)}"
    return text if p.meets_deadline else text + " " + _("(misses deadline)")


def _matrix_rows(ft: FinetuneStudy, column: str, what: str) -> list[dict[str, Any]]:
    """One row per model × method, one column per data size (``column`` formats its header)."""
    rows = []
    for model in dict.fromkeys(c.model for c in ft.matrix):
        for method in ft.methods:
            row = {_("Model"): ft.model_names.get(model, model), _("Method"): _method(method)}
            for d in ft.data_sizes:
                row[column.format(d=d)] = _cell_text(ft.cell(model, method, d), what)
            rows.append(row)
    return rows


def finetune_matrix(study: Study) -> Table:
    """Models × methods × data sizes: GPUs and time of the smallest plan that meets the deadline."""
    ft = study.finetune
    rows = _matrix_rows(ft, "{d}", "gpus")
    notes = [_("Each cell: GPUs ({gpu}) · wall-clock time of the smallest plan that finishes within {deadline}. "
               "'misses deadline': the fastest plan found, which is still too slow; 'does not fit': no layout fits "
               "in GPU memory.").format(gpu=gpu_label(ft.gpu), deadline=_deadline(ft.deadline_hours)),
             _("Data sizes are bytes of raw text unless they say tokens or samples; the dataset table shows how "
               "bytes became tokens.")]
    bad = [c for c in ft.matrix if not c.ok]
    if bad:
        names = sorted({f"{ft.model_names.get(c.model, c.model)} ({_method(c.method)})" for c in bad})
        notes.append(_("Not possible (the method does not apply to the model): {cases}.").format(
            cases=", ".join(names[:8])))
    return _table(rows, _("Fine-tuning within {deadline}: GPUs · time").format(deadline=_deadline(ft.deadline_hours)),
                  notes, key="finetune-matrix")


def finetune_cost_matrix(study: Study) -> Table:
    """Models × methods × data sizes: cost of each run (USD, on-demand instances)."""
    ft = study.finetune
    rows = _matrix_rows(ft, _("{d} (USD)"), "cost")
    notes = [_("Cost = nodes × on-demand price per node-hour × hours, for the plans of the previous table.")]
    return _table(rows, _("Fine-tuning cost per run (USD)"), notes, key="finetune-cost")


#: A plan whose estimated peak uses more than this share of the GPU's memory is marked "tight" in the report.
TIGHT_MEMORY_FRACTION = 0.9


def finetune_bill_of_materials(study: Study, method: str | None = None) -> Table:
    """One row per model × data size for ``method``: GPUs, layout, CPU, RAM, storage, network, time, cost."""
    ft = study.finetune
    method = method or ft.methods[0]
    cols = [_("Model"), _("Data"), _("GPUs"), _("Layout"), _("Memory per GPU (GiB)"), _("Nodes"), _("CPU cores"),
            _("RAM (GiB)"), _("Storage (GB)"), _("Network (Gbit/s per node)"), _("Time"), _("Cost (USD)")]
    rows = []
    priced = False
    for c in ft.matrix:
        if c.method != method:
            continue
        row: dict[str, Any] = {cols[0]: ft.model_names.get(c.model, c.model), cols[1]: c.data}
        p = c.plan
        if p is None or not p.fits:
            row.update({cols[2]: _("not possible") if p is None else _("does not fit")})
            rows.append(row)
            continue
        lay = p.layout
        parts = [f"DP{NBSP}{lay.dp}"]
        if lay.tp > 1:
            parts.insert(0, f"TP{NBSP}{lay.tp}")
        if lay.pp > 1:
            parts.insert(0, f"PP{NBSP}{lay.pp}")
        if lay.zero:
            parts.append(f"ZeRO-{lay.zero}")
        if lay.offload != "none":
            parts.append(_("offload {what}").format(what=lay.offload))
        cl = p.cluster
        priced = priced or p.cost_usd is not None
        mem = p.memory
        tight = mem.total > TIGHT_MEMORY_FRACTION * mem.gpu_memory_bytes
        row.update({
            cols[2]: fmt.integer(p.gpus),
            cols[3]: " × ".join(parts[:3]) + ("".join(f", {x}" for x in parts[3:])),
            cols[4]: _gib(mem.total) + (" " + _("(tight)") if tight else ""),
            cols[5]: _int(cl.nodes) if cl else DASH,
            cols[6]: _int(cl.cpu_cores) if cl else DASH,
            cols[7]: _gib(cl.ram_bytes, 0) if cl else DASH,
            cols[8]: fmt.gb(cl.storage_bytes, 0) if cl else DASH,
            cols[9]: (_num(cl.network_gbps, 1) + (" RDMA" if cl.rdma_needed else "")) if cl and cl.nodes > 1 else DASH,
            cols[10]: _hours(p.hours),
            cols[11]: _usd(p.cost_usd),
        })
        rows.append(row)
    if not priced:
        cols = cols[:-1]
        for r in rows:
            r.pop(_("Cost (USD)"), None)
    notes = [_("{gpu}; {method}. CPU cores, host RAM and storage are requirements of the run (data loading, "
               "tokenization, checkpoints, offloaded states), not the size of the instance; network is the "
               "inter-node traffic that must hide behind compute (RDMA when it exceeds the threshold in the "
               "assumptions).").format(gpu=gpu_label(ft.gpu), method=_method(method)),
             _("Memory per GPU: the estimated peak of the most loaded GPU, CUDA context included; 'tight': the peak is "
               "above {share} percent of the GPU's memory, so a longer sequence, a larger micro-batch or another framework "
               "version may not fit.").format(share=fmt.integer(TIGHT_MEMORY_FRACTION * 100))]
    offload = _offload_note(ft, method)
    if offload:
        notes.append(offload)
    return _table(rows, _("Fine-tuning bill of materials: {method}").format(method=_method(method)), notes,
                  key=f"bom-{method}", columns=cols)


def finetune_by_gpu(study: Study) -> Table:
    """One run (first method, middle data size) on every candidate GPU type: GPUs, time and cost."""
    ft = study.finetune
    rows = []
    for model in dict.fromkeys(c.model for c in ft.by_gpu):
        row = {_("Model"): ft.model_names.get(model, model)}
        for c in ft.by_gpu:
            if c.model != model:
                continue
            text = _cell_text(c)
            if c.ok and c.plan.fits and c.plan.cost_usd is not None:
                text += f" · {fmt.usd(c.plan.cost_usd, with_unit=True)}"
            row[gpu_label(c.gpu)] = text
        rows.append(row)
    notes = [_("{method}, {data} of data, deadline {deadline}: GPUs · time · cost on each GPU type.").format(
        method=_method(ft.comparison_method), data=ft.comparison_data, deadline=_deadline(ft.deadline_hours))]
    return _table(rows, _("Fine-tuning across GPU types"), notes, key="finetune-by-gpu")


def dataset_table(study: Study) -> Table:
    """How each data size became training tokens, per tokenizer of the models in the study."""
    ft = study.finetune
    rows = []
    seen: set[tuple[str, str]] = set()
    tok_col, data_col = _("Tokenizer"), _("Data")
    for c in ft.matrix:
        if not c.ok:
            continue
        ds = c.plan.dataset
        if (ds.tokenizer, c.data) in seen:
            continue
        seen.add((ds.tokenizer, c.data))
        rows.append({tok_col: _tokenizer(ds.tokenizer), data_col: c.data,
                     _("Bytes per token"): _num(ds.bytes_per_token, 2),
                     _("Tokens in the data"): _count(ds.text_tokens), _("Tokens processed"): _count(ds.train_tokens)})
    order = {d: i for i, d in enumerate(ft.data_sizes)}
    rows.sort(key=lambda r: (r[tok_col], order.get(r[data_col], 0)))
    notes = [_("Tokens = bytes of {language} ÷ bytes per token of the model's tokenizer; tokens processed = tokens "
               "× epochs ÷ packing efficiency.").format(language=fmt.language_name(study.scenario.language))]
    return _table(rows, _("From data size to training tokens"), notes, key="dataset")


_TOKENIZERS = {"llama3": "Llama 3", "llama2": "Llama 2", "qwen2": "Qwen2", "deepseek_v3": "DeepSeek-V3",
               "gemma": "Gemma"}


def _tokenizer(family: str) -> str:
    """'deepseek_v3' -> 'DeepSeek-V3' (tokenizer families by their model names)."""
    return _TOKENIZERS.get(family, family.replace("_", " "))


# --------------------------------------------------------------------------- assumptions and audit


# "80G" after a digit run that is not part of a name ("A10G" is a GPU, "A100-SXM4-80G" a size).
_BARE_G = re.compile(r"(?<![A-Za-z0-9])([0-9]+(?:\.[0-9]+)?)G\b(?![BbiP])")


def _sized(text: str) -> str:
    """Quoted hardware labels such as 'A100-SXM4-80G' say GB in a report (a bare G is ambiguous)."""
    return _BARE_G.sub(r"\1GB", text)


def assumptions_table(study: Study) -> Table:
    """Every assumption the study's estimates read: value (and default when overridden), unit, source."""
    rows = []
    cols = [_("Assumption"), _("Value"), _("Unit"), _("Meaning"), _("Source")]
    used = study.assumptions.table(only_used=True)
    for r in used:
        value = fmt.value(r["value"], r["unit"])
        if r["overridden"]:
            value += " " + _("(default {value})").format(value=fmt.value(r["default"], r["unit"]))
        unit = "" if r["unit"] == "bytes" and "GiB" in value else r["unit"]
        rows.append(dict(zip(cols, [r["name"], value, unit, _sized(r["help"]),
                                    _sized(fmt.public_source(r["source"]))])))
    overridden = [r["name"] for r in used if r["overridden"]]
    notes = [_("{n} assumptions were used by the estimates in this report.").format(n=len(rows))]
    if overridden:
        notes.append(_("Changed for this scenario: {names}.").format(names=", ".join(overridden)))
    return _table(rows, _("Assumptions used in this report"), notes, key="assumptions", columns=cols,
                  widths=[21, 10, 9, 26, 34])


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
            written = _("cannot hold the model")
        elif not st.fits:
            written = _("does not fit")
        else:
            written = _hours(st.hours) + ("" if st.meets_deadline else " " + _("(late)"))
        if rec.fits:
            ours = f"{_gpus(rec.gpus)} · {_hours(rec.hours)}" + ("" if rec.meets_deadline else " " + _("(late)"))
            if rec.cost_usd is not None:
                ours += f" · {fmt.usd(rec.cost_usd, with_unit=True)}"
        else:
            ours = _("does not fit")
        cores = _("{n} cores")
        if cl is None:
            needs = DASH
        else:
            net = (_("one node") if cl.nodes == 1 else
                   f"{_num(cl.network_gbps, 0)}{NBSP}Gbit/s" + (" RDMA" if cl.rdma_needed else ""))
            needs = (f"{cores.format(n=fmt.integer(cl.cpu_cores))} · {fmt.gib(cl.ram_bytes, 0, with_unit=True)} RAM"
                     f" · {fmt.gb(cl.storage_bytes, 0, with_unit=True)} · {net}")
        precision = "BF16" if r.precision == "bf16" else r.precision
        rows.append({
            _("Row"): _sized(f"{r.model_text} {precision} ({_method(r.method)}), {r.data}"),
            _("As written"): _sized(f"{r.gpus}{NBSP}× {r.gpu_text} · {r.strategy}"),
            _("Time as written"): written,
            _("Smallest that meets the day"): ours,
            _("Host as written"): _sized(f"{cores.format(n=r.cpu_cores)} · {fmt.gb(r.ram_bytes, 0, with_unit=True)} "
                                         f"RAM · {fmt.gb(r.ssd_bytes, 0, with_unit=True)} · "
                                         f"{_num(r.network_gbps, 0)}{NBSP}Gbit/s" + (" RDMA" if r.rdma else "")),
            _("Host needed"): needs,
        })
    notes = [_("Time as written: the row's GPU count and layout; 'late': longer than one day. Smallest that meets "
               "the day: the planner's GPU count of the same type. Host needed: CPU cores, host RAM, storage and "
               "network of the plan on the row's GPUs (or of the smallest plan when the row's GPUs cannot hold "
               "it).")]
    return _table(rows, _("Audit of the hand-made fine-tuning table"), notes, key="audit",
                  widths=[16, 20, 12, 18, 17, 17])


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
        rows.append({_("Category"): fmt.category_name(s.category), _("Cases"): _int(s.n),
                     _("Median |error| (%)"): _num(s.median_abs_error_pct, 1) if err else DASH,
                     _("Max |error| (%)"): _num(s.max_abs_error_pct, 1) if err else DASH,
                     _("Within 10 %"): _int(s.within_10) if err else DASH,
                     _("Within 20 %"): _int(s.within_20) if err else DASH,
                     _("Bounds satisfied"): f"{s.satisfied}/{s.n}" if s.satisfied is not None else DASH})
    notes = [_("Bounds: cases that only say a configuration fits or runs out of memory.")]
    return _table(rows, _("Validation against published measurements"), notes, key="validation")


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

"""Audit of a hand-made fine-tuning hardware table (the customer's seed table) against the planner.

The table is data (``params/audit/seed-table.yaml``): per row the model, precision, data size, GPU count
and type, CPU cores, RAM, SSD, network, the parallel strategy as written, and the original row text.
For each row the audit evaluates three plans with the planner's own code:

* ``stated``      — the row's layout as written (its GPU count, and its TP / DP / ZeRO where stated and
  consistent); micro-batch and checkpointing are chosen by the planner;
* ``best_here``   — the best layout on the row's GPU count and type;
* ``recommended`` — the smallest GPU count of the row's type that meets the deadline.

It then says, calmly and with numbers, whether the row's GPUs can hold the model, whether the stated
layout fits and how long it takes, and how the row's CPU, RAM, SSD and network compare with what the
plan needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.errors import ScenarioError
from llmsizing.resources import package_dir
from llmsizing.planner.layouts import TP_MAX
from llmsizing.planner.plans import plan_finetune
from llmsizing.planner.request import FinetunePlan
from llmsizing.units import GB, SECONDS_PER_HOUR, TB, fmt_hours
from llmsizing.weights import weight_bytes

SEED_TABLE_RELATIVE = Path("params") / "audit" / "seed-table.yaml"
ROW_KEYS = {"id", "model", "model_text", "precision", "method", "data", "gpus", "gpu", "gpu_text", "cpu_cores",
            "ram", "ssd", "network", "strategy", "row_text"}
TABLE_KEYS = {"source", "title", "deadline", "language", "rows"}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(GB|TB)\s*$", re.I)
_NET_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*Gbps\s*(RDMA)?\s*$", re.I)
_TP_RE = re.compile(r"TP\s*=\s*([0-9]+)", re.I)
_DP_RE = re.compile(r"DP\s*=\s*([0-9]+)", re.I)
_ZERO_RE = re.compile(r"ZeRO-?([0-3])", re.I)
WEIGHTS_SHARE_NOTE = 0.9     # say so when the weights alone take more than this share of the row's GPU memory


def default_table_path() -> Path:
    """``params/audit/seed-table.yaml`` under the working directory, else the copy shipped in the package."""
    here = Path.cwd() / SEED_TABLE_RELATIVE
    if here.is_file():
        return here
    return package_dir("examples") / "audit" / SEED_TABLE_RELATIVE.name


def _size_bytes(text: Any, where: str) -> float:
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ScenarioError(f"{where}: size {text!r} must read like '512GB' or '2TB'")
    return float(m.group(1)) * (GB if m.group(2).upper() == "GB" else TB)


def parse_network(text: Any, where: str = "network") -> tuple[float, bool]:
    """'25Gbps RDMA' → (25.0, True); '1Gbps' → (1.0, False)."""
    m = _NET_RE.match(str(text))
    if not m:
        raise ScenarioError(f"{where}: network {text!r} must read like '25Gbps' or '25Gbps RDMA'")
    return float(m.group(1)), bool(m.group(2))


def parse_strategy(text: str) -> dict[str, int | None]:
    """TP, DP and ZeRO stage as written ('TP=8 + DP=16 + ZeRO-3'); None where the text does not say."""
    tp = _TP_RE.search(text)
    dp = _DP_RE.search(text)
    z = _ZERO_RE.search(text)
    recommended_only = bool(re.search(r"ZeRO-3 for .* recommended", text))
    return {"tp": int(tp.group(1)) if tp else None, "dp": int(dp.group(1)) if dp else None,
            "zero": int(z.group(1)) if (z and not recommended_only) else None}


@dataclass(frozen=True)
class SeedRow:
    """One row of the hand-made table, parsed."""

    id: str
    model: str
    model_text: str
    precision: str
    method: str
    data: str
    gpus: int
    gpu: str
    gpu_text: str
    cpu_cores: int
    ram_bytes: float
    ssd_bytes: float
    network_gbps: float
    rdma: bool
    strategy: str
    row_text: str
    tp: int | None
    dp: int | None
    zero: int | None


def load_seed_table(path: str | Path | None = None) -> tuple[dict, list[SeedRow]]:
    """Read and check the table (strict keys, like the catalogs); returns (table settings, rows)."""
    p = Path(path) if path is not None else default_table_path()
    data = catalog.read_yaml_file(p)
    catalog._check_keys(data, TABLE_KEYS, str(p))
    if not isinstance(data["rows"], list) or not data["rows"]:
        raise ScenarioError(f"{p}: key 'rows' must be a non-empty list")
    rows = []
    for i, r in enumerate(data["rows"]):
        where = f"{p}: rows[{i}]"
        catalog._check_keys(r, ROW_KEYS, where)
        if r["method"] not in ("full", "lora", "qlora"):
            raise ScenarioError(f"{where}: method {r['method']!r} is not one of full, lora, qlora")
        if isinstance(r["gpus"], bool) or not isinstance(r["gpus"], int) or r["gpus"] < 1:
            raise ScenarioError(f"{where}: gpus must be a positive integer")
        catalog.load_model(r["model"])
        catalog.load_gpu(r["gpu"])
        net, rdma = parse_network(r["network"], where)
        lay = parse_strategy(str(r["strategy"]))
        for k in ("tp", "dp"):
            if lay[k] is not None and not 1 <= lay[k] <= 1_000_000:
                raise ScenarioError(f"{where}: strategy {r['strategy']!r}: {k.upper()}={lay[k]} must be a positive "
                                    f"GPU count")
        if isinstance(r["cpu_cores"], bool) or not isinstance(r["cpu_cores"], int) or r["cpu_cores"] < 1:
            raise ScenarioError(f"{where}: cpu_cores must be a positive integer, got {r['cpu_cores']!r}")
        rows.append(SeedRow(
            id=str(r["id"]), model=r["model"], model_text=str(r["model_text"]), precision=str(r["precision"]),
            method=r["method"], data=str(r["data"]), gpus=r["gpus"], gpu=r["gpu"], gpu_text=str(r["gpu_text"]),
            cpu_cores=int(r["cpu_cores"]), ram_bytes=_size_bytes(r["ram"], where), ssd_bytes=_size_bytes(r["ssd"], where),
            network_gbps=net, rdma=rdma, strategy=str(r["strategy"]), row_text=str(r["row_text"]),
            tp=lay["tp"], dp=lay["dp"], zero=lay["zero"]))
    settings = {k: data[k] for k in ("source", "title", "deadline", "language")}
    return settings, rows


@dataclass(frozen=True)
class AuditRow:
    """The audit of one row: its three plans and what they say about it."""

    row: SeedRow
    weights_bytes: float             # base weights in the row's precision (bf16, or NF4 for 4-bit)
    gpu_memory_total_bytes: float    # row GPUs × memory per GPU
    layout_consistent: bool
    layout_note: str
    stated: FinetunePlan
    best_here: FinetunePlan
    recommended: FinetunePlan
    verdict: str

    def to_dict(self) -> dict:
        """A flat, DataFrame-friendly row (sizes in bytes, times in hours)."""
        r, s, b, c = self.row, self.stated, self.best_here, self.recommended
        cl = (b if b.fits else c).cluster
        return {
            "id": r.id, "model": r.model, "model_text": r.model_text, "precision": r.precision, "method": r.method,
            "data": r.data, "gpus": r.gpus, "gpu": r.gpu, "strategy": r.strategy, "row_text": r.row_text,
            "weights_bytes": int(self.weights_bytes), "gpu_memory_total_bytes": int(self.gpu_memory_total_bytes),
            "weights_fit_in_total_gpu_memory": self.weights_bytes <= self.gpu_memory_total_bytes,
            "layout_consistent": self.layout_consistent, "layout_note": self.layout_note,
            "stated_fits": s.fits, "stated_layout": s.layout.to_dict(),
            "stated_memory_per_gpu_bytes": int(s.memory.total) if s.memory is not None else None,
            "stated_hours": s.hours, "stated_meets_deadline": s.meets_deadline,
            "best_here_fits": b.fits, "best_here_layout": b.layout.to_dict(), "best_here_hours": b.hours,
            "best_here_meets_deadline": b.meets_deadline,
            "recommended_gpus": c.gpus if c.fits else None, "recommended_hours": c.hours,
            "recommended_meets_deadline": c.meets_deadline, "recommended_layout": c.layout.to_dict(),
            "recommended_cost_usd": c.cost_usd,
            "row_cpu_cores": r.cpu_cores, "plan_cpu_cores": cl.cpu_cores if cl else None,
            "row_ram_bytes": int(r.ram_bytes), "plan_ram_bytes": cl.ram_bytes if cl else None,
            "row_ssd_bytes": int(r.ssd_bytes), "plan_storage_bytes": cl.storage_bytes if cl else None,
            "row_network_gbps": r.network_gbps, "row_rdma": r.rdma,
            "plan_network_gbps": cl.network_gbps if cl else None,
            "plan_rdma_needed": cl.rdma_needed if cl else None,
            "deadline_hours": s.deadline_s / SECONDS_PER_HOUR, "verdict": self.verdict,
        }


def _stated_layout(row: SeedRow, node_gpus: int) -> tuple[dict, bool, str]:
    """Pinned layout parts for the stated plan, whether the text is self-consistent, and a note."""
    tp, dp, zero = row.tp, row.dp, row.zero
    notes = []
    implied = (tp or 1) * (dp or 1) if (tp or dp) else row.gpus
    consistent = implied == row.gpus
    if not consistent:
        notes.append(f"TP={tp or 1} × DP={dp or 1} = {implied} GPUs, but the row has {row.gpus}")
    pins: dict[str, Any] = {"offload": "none"}
    if tp is not None:
        if tp > min(TP_MAX, node_gpus):
            notes.append(f"TP={tp} spans more than one {node_gpus}-GPU node; tensor parallelism needs the NVLink "
                         f"domain, so the audit lets the planner choose the layout")
        elif row.gpus % tp == 0:
            pins["tp"] = tp
    elif dp is not None or row.gpus == 1:
        pins["tp"] = 1
    if zero is not None:
        pins["zero"] = zero
    elif dp is not None and tp is None:
        pins["zero"] = 0          # "DP=n": plain data parallelism (DDP)
    return pins, consistent, "; ".join(notes)


def audit_row(row: SeedRow, *, deadline: str | float = "24h", language: str = "en",
              assumptions: Assumptions | Mapping | None = None) -> AuditRow:
    """Evaluate one row: stated layout, best layout on its GPUs, and the planner's recommendation."""
    a = Assumptions.of(assumptions)
    spec = catalog.load_model(row.model)
    gpu = catalog.load_gpu(row.gpu)
    common = dict(deadline=deadline, language=language, assumptions=a)
    pins, consistent, note = _stated_layout(row, gpu.node_gpus_max)
    stated = plan_finetune(spec, row.method, gpu, row.data, gpus=row.gpus, **pins, **common)
    best = plan_finetune(spec, row.method, gpu, row.data, gpus=row.gpus, **common)
    rec = plan_finetune(spec, row.method, gpu, row.data, **common)
    wbytes = weight_bytes(spec, "nf4-dq" if row.method == "qlora" else "bf16")
    total_mem = row.gpus * gpu.memory_bytes
    verdict = _verdict(row, stated, best, rec, wbytes, total_mem, note)
    return AuditRow(row, wbytes, total_mem, consistent, note, stated, best, rec, verdict)


def _gib(x: float) -> str:
    return f"{x / 2**30:,.0f} GiB"


def _verdict(row: SeedRow, stated: FinetunePlan, best: FinetunePlan, rec: FinetunePlan, wbytes: float,
             total_mem: float, note: str) -> str:
    dl = stated.deadline_s / SECONDS_PER_HOUR
    parts = []
    gpus_text = f"{row.gpus} × {row.gpu_text.split(' (')[0]}"
    if wbytes > total_mem:
        parts.append(f"cannot hold the weights: {row.model_text} in {row.precision} is {_gib(wbytes)}, "
                     f"{gpus_text} have {_gib(total_mem)} in all")
    elif wbytes > WEIGHTS_SHARE_NOTE * total_mem:
        parts.append(f"the {row.precision} weights alone ({_gib(wbytes)}) fill {wbytes / total_mem:.0%} of the "
                     f"{_gib(total_mem)} of {gpus_text}, leaving almost nothing for activations, adapters and "
                     f"buffers")
    if note:
        parts.append(note)
    if stated.fits:
        parts.append(f"as written it fits ({_gib(stated.memory.total)} per GPU) and takes "
                     f"{fmt_hours(stated.hours)}{' — within' if stated.meets_deadline else ' — over'} the {dl:g} h")
    elif wbytes <= total_mem:
        reason = stated.fit_reason.split(": ", 1)[-1]
        parts.append(f"as written (nothing offloaded) it does not fit: {reason}")
    if best.fits and (not stated.fits or best.hours < 0.9 * stated.hours):
        lay = best.layout
        parts.append(f"best on these {row.gpus} GPUs: tp={lay.tp}, ZeRO-{lay.zero}"
                     f"{', offload ' + lay.offload if lay.offload != 'none' else ''}, "
                     f"{fmt_hours(best.hours)}")
    elif not best.fits:
        parts.append(f"no layout fits on {row.gpus} GPUs")
    if rec.fits:
        if rec.meets_deadline:
            parts.append(f"the planner needs {rec.gpus} × {row.gpu} for {fmt_hours(rec.hours)}"
                         + (f" (${rec.cost_usd:,.0f})" if rec.cost_usd is not None else ""))
        else:
            parts.append(f"no {row.gpu} count meets {dl:g} h; best {fmt_hours(rec.hours)} on {rec.gpus}")
    return "; ".join(parts) + "."


def audit_table(path: str | Path | None = None, *, deadline: str | float | None = None,
                language: str | None = None, assumptions: Assumptions | Mapping | None = None) -> list[AuditRow]:
    """Audit every row of the table (``deadline`` and ``language`` default to the table's own)."""
    settings, rows = load_seed_table(path)
    dl = deadline if deadline is not None else settings.get("deadline") or "24h"
    lang = language if language is not None else settings.get("language") or "en"
    return [audit_row(r, deadline=dl, language=lang, assumptions=assumptions) for r in rows]


def audit_rows(path: str | Path | None = None, **kwargs: Any) -> list[dict]:
    """``audit_table`` as flat dicts (for a DataFrame)."""
    return [r.to_dict() for r in audit_table(path, **kwargs)]

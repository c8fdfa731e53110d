"""The report's tables as data: ``tables.xlsx`` (one sheet per table) and one CSV per table.

The notebook's last cell calls :func:`save_tables` with every table the report showed (the
sections record them on the study). Cells that are numbers in the report ("1,234.5") become
numbers in the workbook and the CSVs; units stay in the column headers, as in the report.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from llmsizing.report.tables import Table

__all__ = ["TABLES_DIR", "XLSX_FILE", "numeric_frame", "save_report_tables", "save_tables", "sheet_name"]

XLSX_FILE = "tables.xlsx"
TABLES_DIR = "tables"

_NUMBER = re.compile(r"^[-+]?[0-9]{1,3}(?:,[0-9]{3})*(?:\.[0-9]+)?$|^[-+]?[0-9]+(?:\.[0-9]+)?$")
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def _cell(v: Any) -> Any:
    if isinstance(v, str):
        text = v.replace("\u00a0", " ").strip()
        if _NUMBER.match(text):
            n = float(text.replace(",", ""))
            return int(n) if n.is_integer() and "." not in text else n
        return text.replace("\u200b", "")
    return v


def numeric_frame(table: Table) -> pd.DataFrame:
    """The table's cells with every number-shaped cell as a number."""
    return table.df.apply(lambda col: col.map(_cell))


def sheet_name(table: Table, taken: set[str]) -> str:
    """A unique Excel sheet name (at most 31 characters) from the table's key."""
    base = _BAD_SHEET_CHARS.sub("-", table.key or "table")[:28] or "table"
    name, i = base, 2
    while name.lower() in taken:
        name = f"{base[:27]}-{i}"
        i += 1
    taken.add(name.lower())
    return name


def save_tables(tables: list[Table], out_dir: str | Path) -> list[Path]:
    """Write ``out_dir/tables.xlsx`` and ``out_dir/tables/<sheet>.csv``; returns the files written."""
    out = Path(out_dir)
    csv_dir = out / TABLES_DIR
    csv_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    named = [(sheet_name(t, taken), t) for t in tables]
    written = []
    xlsx = out / XLSX_FILE
    with pd.ExcelWriter(xlsx, engine="openpyxl") as writer:
        for name, t in named:
            df = numeric_frame(t)
            df.to_excel(writer, sheet_name=name, index=False)
            ws = writer.sheets[name]
            for col in ws.columns:
                width = max(len(str(c.value or "")) for c in col)
                ws.column_dimensions[col[0].column_letter].width = min(60, max(8, width + 2))
            csv = csv_dir / f"{name}.csv"
            df.to_csv(csv, index=False, encoding="utf-8-sig")
            written.append(csv)
    written.insert(0, xlsx)
    return written


def save_report_tables(study: Any, results_path: str) -> None:
    """The notebook's last step: every table the report showed, beside results.json (nothing without a path)."""
    if results_path:
        save_tables(list(study.shown_tables), Path(results_path).resolve().parent)

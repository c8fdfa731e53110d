"""``reports/manifest.json`` (every report's status, inputs, headline numbers, history) and ``reports/index.html``."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from llmsizing import __version__
from llmsizing.refresh.files import iso, now_utc, write_atomic
from llmsizing.text import clean_text
from llmsizing.units import fmt_bytes, fmt_hours

__all__ = ["INDEX_FILE", "MANIFEST_FILE", "MANIFEST_SCHEMA", "format_value", "read_manifest", "render_index", "when",
           "write_manifest"]

MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.html"
MANIFEST_SCHEMA = 1


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of ``out_dir`` (an empty one when absent or unreadable)."""
    path = Path(out_dir) / MANIFEST_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"schema": MANIFEST_SCHEMA, "scenarios": {}}
    if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA or not isinstance(doc.get("scenarios"), dict):
        return {"schema": MANIFEST_SCHEMA, "scenarios": {}}
    return doc


def write_manifest(out_dir: Path, doc: Mapping[str, Any]) -> None:
    write_atomic(out_dir / MANIFEST_FILE, json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- index.html

#: Folder of the index template (``index.html.j2``).
INDEX_TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "report" / "templates" / "index"
#: Headline numbers shown per report in the index (the least nested first), and changed numbers
#: listed per report; the rest are in results.json and ``llmsizing diff``.
INDEX_HEADLINE_MAX = 10
INDEX_CHANGES_MAX = 25


def _index_headline(head: Mapping[str, Any]) -> list[tuple[str, str]]:
    keys = sorted(head, key=lambda k: (k.count(".") + k.count("["), list(head).index(k)))
    return [(k, format_value(k, head[k])) for k in keys[:INDEX_HEADLINE_MAX]]


def format_value(key: str, value: Any) -> str:
    """A headline number for people: bytes in GiB, hours as h/days, dollars, counts with separators."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return "n/a"
        leaf = key.rsplit(".", 1)[-1]
        if leaf.endswith("_bytes"):
            return fmt_bytes(value)
        if leaf == "hours" or leaf.endswith("_hours"):
            return fmt_hours(value)
        if leaf.endswith("_usd_per_hour"):
            return f"${value:,.2f}/h"
        if leaf.endswith("_usd"):
            return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"
        if leaf.endswith("_s"):
            return f"{value:,.3g} s"
        if isinstance(value, int):
            return f"{value:,}"
        return f"{value:,.4g}"
    return str(value)


def _fmt_delta(c: Mapping[str, Any]) -> str:
    rel = c.get("relative")
    if isinstance(rel, (int, float)):
        return f"{rel * 100:+.1f}%"
    return ""


def when(stamp: Any) -> str:
    """``2031-02-03T04:05:06Z`` -> ``2031-02-03 04:05 UTC`` (anything else unchanged)."""
    text = str(stamp or "")
    if len(text) == 20 and text[10] == "T" and text.endswith("Z"):
        return f"{text[:10]} {text[11:16]} UTC"
    return text


def _href(path: str | None) -> str | None:
    return quote(path, safe="/") if path else None


def _clean(value: Any) -> Any:
    """Every string of an index row through the one sanitizer (llmsizing.text): no ESC, BEL or bidi override
    from a params file's name or an error message reaches index.html; Jinja escapes HTML once."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clean(v) for v in value)
    return value


def render_index(out_dir: str | os.PathLike[str], manifest: Mapping[str, Any] | None = None) -> Path:
    """Write ``<out_dir>/index.html`` from the manifest: every report, its status and numbers.

    Every string from scenarios, results and error messages is escaped by Jinja's autoescape.
    """
    root = Path(out_dir)
    doc = manifest if manifest is not None else read_manifest(root)
    rows = []
    for name, e in sorted(doc.get("scenarios", {}).items()):
        paths = e.get("paths") or {}
        rows.append({
            "name": name,
            "title": e.get("title") or "",
            "customer": e.get("customer") or "",
            "kind": e.get("kind") or "",
            "params": e.get("params") or "",
            "status": e.get("status") or "unknown",
            "action": e.get("action") or "",
            "built_at": e.get("built_at"),
            "failed_at": e.get("failed_at"),
            "reason": e.get("reason"),
            "rebuild_reasons": e.get("rebuild_reasons") or [],
            "headline": _index_headline(e.get("headline") or {}),
            "headline_more": max(0, len(e.get("headline") or {}) - INDEX_HEADLINE_MAX),
            "links": [(label, _href(paths.get(key))) for key, label in
                      (("html", "HTML"), ("pdf", "PDF"), ("ipynb", "notebook"), ("results", "results.json"),
                       ("failed_notebook", "failed run"), ("failed_log", "build log")) if paths.get(key)],
            "changes": [{"key": c.get("key"), "before": format_value(str(c.get("key")), c.get("before")),
                         "after": format_value(str(c.get("key")), c.get("after")), "delta": _fmt_delta(c)}
                        for c in (e.get("changes") or [])[:INDEX_CHANGES_MAX]],
            "changes_more": max(0, len(e.get("changes") or []) - INDEX_CHANGES_MAX),
            "previous": e.get("previous"),
            "previous_href": _href((e.get("previous") or "") + "/" if e.get("previous") else None),
            "history": e.get("history") or [],
        })
    rows = [_clean(r) for r in rows]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(INDEX_TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    last = doc.get("last_refresh") or {}
    html = env.get_template("index.html.j2").render(
        rows=rows,
        generated_at=doc.get("generated_at") or iso(now_utc()),
        version=__version__,
        last=last,
        counts={"ok": sum(r["status"] == "ok" for r in rows), "failed": sum(r["status"] == "failed" for r in rows)},
        changed=sorted((r for r in rows if r["changes"]), key=lambda r: r["built_at"] or "", reverse=True),
    )
    root.mkdir(parents=True, exist_ok=True)
    target = root / INDEX_FILE
    write_atomic(target, html)
    return target

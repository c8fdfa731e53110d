"""``llmsizing assumptions [--json]``: every named assumption, its default, unit and source."""

from __future__ import annotations

import argparse

from llmsizing.assumptions import registry
from llmsizing.commands.output import print_json


def assumption_rows() -> list[dict]:
    """One row per registered assumption, sorted by category then name."""
    return [{"name": a.name, "default": a.value, "unit": a.unit, "category": a.category, "help": a.help,
             "source": a.source} for a in sorted(registry().values(), key=lambda a: (a.category, a.name))]


def _cmd_assumptions(args: argparse.Namespace) -> int:
    rows = assumption_rows()
    if args.json:
        print_json(rows)
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    category = None
    for r in rows:
        if r["category"] != category:
            category = r["category"]
            print(f"\n[{category}]" if category != rows[0]["category"] else f"[{category}]")
        print(f"  {r['name']:<{width}}  {r['default']!r} {r['unit']}")
        print(f"  {'':<{width}}  {r['help']}")
        print(f"  {'':<{width}}  source: {r['source']}")
    print("\nOverride any of these in a params file or a notebook's parameters cell:"
          "\n  assumptions: {name: value}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assumptions", help="list every assumption with its default and source",
                       description="List every named assumption the estimators read: name, default, unit, "
                                   "source. Override them per scenario with 'assumptions: {name: value}'.")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=_cmd_assumptions)

"""``llmsizing diff SCENARIO [--against VERSION] [--all] [--json]``: what changed since the previous report.

Compares ``reports/<scenario>/results.json`` with the same file in the newest (or the named)
``reports/<scenario>/history/<date-time>/`` that ``llmsizing refresh`` kept when it rebuilt
the report. By default only the headline numbers; ``--all`` compares every number.
"""

from __future__ import annotations

import argparse

from llmsizing.commands.output import print_json


def _cmd_diff(args: argparse.Namespace) -> int:
    # Imported here, not at the top: llmsizing.refresh brings the report runner and jinja2 (about
    # 50 ms), which every other command and `llmsizing --help` would pay for.
    from llmsizing.refresh.history import diff_report
    from llmsizing.refresh.index import format_value
    from llmsizing.refresh.plan import scenario_name

    name = scenario_name(args.scenario)
    doc = diff_report(args.out, name, args.against, args.all)
    if args.json:
        print_json(doc)
        return 0
    if doc["previous"] is None:
        print(f"{name}: {doc['note']}")
        return 0
    print(f"{name}: {doc['compared']}, {doc['previous']} -> {doc['current']}")
    if not doc["changes"]:
        print("  no change")
        return 0
    rows = [(c["key"], format_value(c["key"], c["before"]), format_value(c["key"], c["after"]),
             f"{c['relative'] * 100:+.1f}%" if c["relative"] is not None else "") for c in doc["changes"]]
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    for key, before, after, rel in rows:
        print(f"  {key:<{w[0]}}  {before:>{w[1]}}  ->  {after:>{w[2]}}  {rel}".rstrip())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff",
        help="what changed in a report's numbers since its previous version",
        description="Compare OUT/<scenario>/results.json with the newest earlier version kept by "
                    "'llmsizing refresh' under OUT/<scenario>/history/ (or the one named by --against).",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario name (or its params file)")
    p.add_argument("--against", metavar="VERSION", help="an earlier version: a folder name under history/")
    p.add_argument("--all", action="store_true", help="compare every number, not only the headline numbers")
    p.add_argument("--out", default="reports", metavar="DIR", help="reports folder (default: reports)")
    p.add_argument("--json", action="store_true", help="print the changes as JSON")
    p.set_defaults(handler=_cmd_diff)

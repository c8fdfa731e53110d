"""``llmsizing diff SCENARIO [--against VERSION] [--all] [--json]``: what changed since the previous report.

Compares ``reports/<scenario>/results.json`` with the same file in the newest (or the named)
``reports/<scenario>/history/<date-time>/`` that ``llmsizing refresh`` kept when it rebuilt
the report. By default only the headline numbers; ``--all`` compares every number.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _scenario_name(arg: str) -> str:
    """A scenario name, or the name inside a params file (``params/x.yaml``)."""
    p = Path(arg)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        from llmsizing.report.scenario import load_scenario

        return load_scenario(p).scenario_name
    return arg


def diff_report(out_dir: str | Path, scenario: str, against: str | None = None,
                everything: bool = False) -> dict:
    """The changes between a report and an earlier version of it, as a JSON-ready dict."""
    from llmsizing.errors import ScenarioError
    from llmsizing.refresh.build import HISTORY_DIR, read_json_file, diff_results, history_entries
    from llmsizing.report.runner import RESULTS_FILE

    root = Path(out_dir)
    current = root / scenario / RESULTS_FILE
    if not current.is_file():
        raise ScenarioError(f"no report for scenario {scenario!r}: {current} does not exist "
                            f"(run 'llmsizing refresh' or 'llmsizing run' first)")
    versions = history_entries(root, scenario)
    if against is not None:
        chosen = root / scenario / HISTORY_DIR / against
        if against not in [v.name for v in versions]:
            shown = ", ".join(v.name for v in versions) or "none"
            raise ScenarioError(f"scenario {scenario!r} has no earlier version {against!r}; versions: {shown}")
    elif versions:
        chosen = versions[-1]
    else:
        return {"scenario": scenario, "current": str(current), "previous": None, "changes": [],
                "versions": [], "note": "no earlier version: the report has not been rebuilt since it was first built"}
    before = read_json_file(chosen / RESULTS_FILE)
    if before is None:
        raise ScenarioError(f"{chosen / RESULTS_FILE} is missing or not JSON")
    after = read_json_file(current)
    changes = diff_results(before, after, everything=everything)
    return {"scenario": scenario, "current": str(current), "previous": str(chosen),
            "changes": [c.to_dict() for c in changes], "versions": [v.name for v in versions],
            "compared": "all results" if everything else "headline numbers"}


def _cmd_diff(args: argparse.Namespace) -> int:
    from llmsizing.refresh.build import format_value

    name = _scenario_name(args.scenario)
    doc = diff_report(args.out, name, args.against, args.all)
    if args.json:
        from llmsizing.commands.output import print_json

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

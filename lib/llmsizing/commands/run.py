"""``llmsizing run PARAMS.yaml... [--to html,pdf] [--out DIR]``: build customer reports."""

from __future__ import annotations

import argparse
import sys

from llmsizing.choices import REPORT_LANGUAGES
from llmsizing.commands.output import print_json
from llmsizing.report.runner import parse_formats, run_scenarios

_STAGES = {"execute": "executed the notebook", "html": "rendered HTML", "pdf": "typeset PDF"}


def _progress(scenario: str, stage: str, seconds: float) -> None:
    """One line per finished stage on a terminal (stderr)."""
    sys.stderr.write(f"{scenario}: {_STAGES.get(stage, stage)} ({seconds:.1f} s)\n")
    sys.stderr.flush()


def _cmd_run(args: argparse.Namespace) -> int:
    show = not args.json and sys.stderr.isatty() and sys.stdout.isatty()
    results = run_scenarios(args.params, out_dir=args.out, to=parse_formats(args.to),
                            report_language=args.report_language, progress=_progress if show else None)
    if args.json:
        print_json([{"scenario": r.scenario, "params": str(r.params_path), "report_dir": str(r.report_dir),
                     "files": {k: str(v) for k, v in r.files.items()}, "seconds": round(r.seconds, 3)}
                    for r in results])
        return 0
    for r in results:
        shown = ", ".join(str(r.files[k]) for k in ("pdf", "html", "results", "xlsx") if k in r.files)
        print(f"{r.scenario}: {shown} ({r.seconds:.1f} s)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="build reports from params files",
        description="Validate each params file, execute its notebook and write "
                    "OUT/<scenario>/report.{ipynb,html,pdf} and results.json. All files are validated "
                    "before the first report is built; a failed build leaves the previous report in place.",
    )
    p.add_argument("params", nargs="+", metavar="PARAMS.yaml", help="scenario files, e.g. params/deepseek-r1-family.yaml")
    p.add_argument("--to", default="html,pdf", metavar="FORMATS",
                   help="comma-separated output formats besides the notebook: html, pdf (default: html,pdf)")
    p.add_argument("--out", default="reports", metavar="DIR", help="reports folder (default: reports)")
    p.add_argument("--report-language", choices=REPORT_LANGUAGES, default=None,
                   help="write the reports in this language (en, zh), whatever the params files say")
    p.add_argument("--json", action="store_true", help="print what was built as JSON")
    p.set_defaults(handler=_cmd_run)

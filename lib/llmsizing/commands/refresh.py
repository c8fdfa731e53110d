"""``llmsizing refresh [PARAMS...] [-j N] [--force] [--wait | --wait-timeout SECONDS]``: keep every report current.

Exit codes: 0 every scenario is up to date or was rebuilt; 1 at least one scenario failed
(the others were still built; the failed ones keep their last good report); 2 bad arguments
or an unreadable catalog; 75 another refresh holds the lock (and ``--wait`` was not given or
ran out).
"""

from __future__ import annotations

import argparse
import math
import sys

from llmsizing.commands.output import print_json


def _cmd_refresh(args: argparse.Namespace) -> int:
    # Imported here, not at the top: llmsizing.refresh brings the report runner, jinja2 and
    # multiprocessing (about 50 ms), which every other command and `llmsizing --help` would pay for.
    from llmsizing.refresh.build import refresh
    from llmsizing.refresh.lock import EXIT_BUSY, RefreshBusy

    try:
        report = refresh(
            args.params or ["params"],
            args.out,
            jobs=args.jobs,
            force=args.force,
            wait=_wait(args),
            to=args.to,
            keep_history=args.keep_history,
            dry_run=args.dry_run,
            progress=None if args.quiet else sys.stderr,
        )
    except RefreshBusy as exc:
        sys.stderr.write(f"llmsizing refresh: {' '.join(str(exc).split())}\n")
        return EXIT_BUSY
    if args.json:
        print_json(report.to_dict())
    else:
        if report.dry_run:
            for name, reasons in report.reasons.items():
                print(f"would build {name}: {'; '.join(reasons)}")
            for name, error in report.failed.items():
                print(f"invalid     {name}: {error}")
        for name, reason in report.failed.items():
            if not report.dry_run:
                print(f"FAILED {name}: {reason}")
        print(report.summary())
    return report.exit_code


def _wait(args: argparse.Namespace) -> float:
    if args.wait_timeout is not None:
        return args.wait_timeout
    return math.inf if args.wait else 0.0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"-j takes a whole number of worker processes, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"-j must be at least 1, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "refresh",
        help="rebuild the reports whose inputs changed",
        description="Rebuild every scenario whose inputs changed since its last build (params file, notebook, "
                    "report template, the catalog entries it uses, assumptions, library), skip the rest, and "
                    "write OUT/index.html and OUT/manifest.json. A failing scenario keeps its last good report "
                    "and makes the exit code 1; the others are still built. Exit 75 when another refresh is "
                    "running (see --wait).",
    )
    p.add_argument("params", nargs="*", metavar="PARAMS",
                   help="params folders (every *.yaml in them) or files (default: params/)")
    p.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                   help="scenarios built at once, each in its own process (default: CPU count, at most 4)")
    p.add_argument("--force", action="store_true", help="rebuild every scenario, changed or not")
    p.add_argument("--wait", action="store_true",
                   help="if another refresh is running, wait for it to finish instead of exiting with code 75")
    p.add_argument("--wait-timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="like --wait, but exit with code 75 after waiting SECONDS")
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="say what would be rebuilt and why; build nothing, write nothing")
    p.add_argument("--to", default="html,pdf", metavar="FORMATS",
                   help="output formats besides the notebook: html, pdf (default: html,pdf)")
    p.add_argument("--out", default="reports", metavar="DIR", help="reports folder (default: reports)")
    p.add_argument("--keep-history", type=_count, default=20, metavar="N",
                   help="earlier versions kept per scenario under OUT/<scenario>/history/ (default: 20; 0 keeps none)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    p.set_defaults(handler=_cmd_refresh)

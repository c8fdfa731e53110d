"""The ``llmsizing`` command line.

Each subcommand lives in ``llmsizing/commands/<name>.py`` and exposes ``register(subparsers)``;
this module only wires them and turns library errors into one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Sequence

from llmsizing import __version__
from llmsizing.commands import (assumptions_cmd, catalog_cmds, completion, diff, finetune, fit, output, refresh,
                                run, serve, validate)
from llmsizing.errors import SizingError

COMMAND_MODULES = (catalog_cmds, serve, run, assumptions_cmd, refresh, diff, validate, finetune, fit, completion)

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line naming the problem, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="llmsizing", description="Size GPU hardware for serving and fine-tuning LLMs.")
    parser.add_argument("--version", action="version", version=f"llmsizing {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so every ``finally`` runs (build folders removed, refresh
    workers stopped, the lock released) before the process exits with 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _signals_unwind():
    """SIGTERM/SIGHUP raise :class:`Terminated` while a command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for s in saved:
        signal.signal(s, _raise_terminated)
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _signals_unwind():
            code = args.handler(args)
    except SizingError as exc:
        sys.stderr.write(f"llmsizing: error: {output.one_line(str(exc))}\n")
        return EXIT_USAGE
    except Terminated as exc:
        sys.stderr.write(f"llmsizing: stopped by signal {exc.signum}; unfinished work was removed\n")
        return 128 + exc.signum
    except KeyboardInterrupt:
        sys.stderr.write("llmsizing: interrupted; nothing was written\n")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # A path the file system refuses (too long, no permission, not a folder) or a full disk,
        # outside the places that already turn it into a SizingError.
        name = f" {output.one_line(str(exc.filename), 200)!r}" if exc.filename else ""
        sys.stderr.write(f"llmsizing: error: cannot access{name}: {output.one_line(exc.strerror or str(exc))}\n")
        return EXIT_USAGE
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())

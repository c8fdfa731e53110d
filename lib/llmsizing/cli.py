"""The ``llmsizing`` command line.

Each subcommand lives in ``llmsizing/commands/<name>.py`` and exposes ``register(subparsers)``;
this module only wires them and turns library errors into one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from typing import Any, Sequence

from . import __version__
from .errors import SizingError

COMMAND_MODULES = (
    "llmsizing.commands.catalog_cmds",
)

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
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    """Replace non-finite floats by None so the output is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """Print one strict JSON object to stdout."""
    sys.stdout.write(json.dumps(_clean(obj), indent=2, default=_json_default, allow_nan=False) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.handler(args)
    except SizingError as exc:
        msg = " ".join(str(exc).split())
        sys.stderr.write(f"llmsizing: error: {msg}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("llmsizing: interrupted; nothing was written\n")
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())

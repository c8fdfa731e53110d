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

from llmsizing import __version__
from llmsizing.errors import SizingError

COMMAND_MODULES = (
    "llmsizing.commands.catalog_cmds",
    "llmsizing.commands.serve",
    "llmsizing.commands.run",
    "llmsizing.commands.assumptions_cmd",
    "llmsizing.commands.refresh",
    "llmsizing.commands.diff",
    "llmsizing.commands.validate",
    "llmsizing.commands.finetune",
)

EXIT_USAGE = 2
#: Longest error message printed (a 10,000-character name in a message is shortened).
MAX_MESSAGE_CHARS = 2000


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


def _one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Collapse whitespace to one line; shorten a very long message in the middle; show bytes that
    are not valid UTF-8 (a file name from another system) as escapes instead of failing to print."""
    flat = " ".join(text.split()).encode("utf-8", "backslashreplace").decode("utf-8")
    if len(flat) <= limit:
        return flat
    half = limit // 2
    return f"{flat[:half]} ... {flat[-half:]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.handler(args)
    except SizingError as exc:
        sys.stderr.write(f"llmsizing: error: {_one_line(str(exc))}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("llmsizing: interrupted; nothing was written\n")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # A path the file system refuses (too long, no permission, not a folder) or a full disk,
        # outside the places that already turn it into a SizingError.
        name = f" {_one_line(str(exc.filename), 200)!r}" if exc.filename else ""
        sys.stderr.write(f"llmsizing: error: cannot access{name}: {_one_line(exc.strerror or str(exc))}\n")
        return EXIT_USAGE
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())

"""What every command prints: strict JSON on stdout, errors as one line on stderr."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, is_dataclass
from typing import Any

from llmsizing.text import for_terminal


def _json_default(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def strict_json(obj: Any) -> Any:
    """Replace non-finite floats by None so the output is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """Print one strict JSON object to stdout."""
    sys.stdout.write(json.dumps(strict_json(obj), indent=2, default=_json_default, allow_nan=False) + "\n")


#: Longest error message printed (a 10,000-character name in a message is shortened).
MAX_MESSAGE_CHARS = 2000


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Collapse whitespace to one line; shorten a very long message in the middle; show bytes that
    are not valid UTF-8 (a file name from another system) as escapes instead of failing to print."""
    flat = for_terminal(text)  # no ESC/BEL, bidi overrides or a forged second line reach the terminal
    if len(flat) <= limit:
        return flat
    half = limit // 2
    return f"{flat[:half]} ... {flat[-half:]}"

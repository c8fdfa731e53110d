"""Arguments several commands share: ``--set NAME=VALUE`` assumption overrides."""

from __future__ import annotations

import argparse
import re
from typing import Any, Sequence

from llmsizing.assumptions import Assumptions
from llmsizing.errors import ScenarioError
from llmsizing.units import parse_count, parse_scalar, parse_tokens


def number_text(text: str) -> str:
    """An argparse ``type`` for a count typed on the command line: any text that reads as a number
    (``8``, ``1e20``, a 400-digit integer) passes as text, to be range-checked by :func:`parse_counts`
    with ``units.parse_count``; other text ('three', 'nan') is argparse's "invalid int value"."""
    if not _NUMBER_RE.match(text):
        raise ValueError(text)
    return text


number_text.__name__ = "int"
_NUMBER_RE = re.compile(r"^\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*$")


def parse_counts(args: argparse.Namespace, *names: str) -> None:
    """Replace each ``args.<name>`` given as text by its count, checked against ``units.COUNT_RANGES``."""
    for name in names:
        value = getattr(args, name)
        if value is not None:
            setattr(args, name, parse_count(value, name.replace("_", "-")))




def add_set_argument(p: argparse.ArgumentParser) -> None:
    """``--set NAME=VALUE`` (repeatable): override a named assumption (see ``llmsizing assumptions``)."""
    p.add_argument("--set", dest="assumption_sets", action="append", default=[], metavar="NAME=VALUE",
                   help="override a named assumption, e.g. --set mfu_full_hopper=0.3 (repeatable; "
                        "'llmsizing assumptions' lists them)")


def assumption_overrides(sets: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=true"]`` → ``{"a": 1, "b": True}``, each name and value checked by ``Assumptions``."""
    out: dict[str, Any] = {}
    for item in sets:
        name, sep, value = str(item).partition("=")
        name = name.strip()
        if not sep or not name:
            raise ScenarioError(f"--set {item!r}: write NAME=VALUE, e.g. --set mfu_full_hopper=0.3")
        out[name] = parse_scalar(value.strip())
    Assumptions(out)  # one line naming the bad name or value, before anything runs
    return out


def tokens_arg(what: str):
    """An argparse ``type=`` for a token count (``4096``, ``4K``): ``units.parse_tokens`` naming ``what``."""
    def parse(text: str) -> int:
        try:
            return parse_tokens(text, what)
        except ScenarioError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = what
    return parse

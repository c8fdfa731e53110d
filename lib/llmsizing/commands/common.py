"""Arguments several commands share: ``--set NAME=VALUE`` assumption overrides."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from llmsizing.assumptions import Assumptions
from llmsizing.errors import ScenarioError
from llmsizing.units import parse_scalar, parse_tokens


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

"""The report notebooks' ``parameters`` cells, written from the one definition of the scenario keys.

papermill injects parameters after the cell tagged ``parameters``, and ``--help-notebook`` reads
it, so that cell must stay plain assignments of primitives::

    users: int = 200  # concurrent users, each with a full context in flight

Its lines follow :data:`~llmsizing.report.parameters.PARAMETERS` (names, order, types and help
of the notebook's kind) plus ``results_path``; the values are the notebook's example scenario
(a key the cell lacks gets the definition's default). After adding a scenario key::

    python -m llmsizing.report.notebooks --write     # rewrite the cells of notebooks/*.ipynb
    python -m llmsizing.report.notebooks             # check only: exit 1 when a cell drifted
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llmsizing.report.parameters import KINDS, parameters_for
from llmsizing.report.runner import notebooks_dir

__all__ = ["RESULTS_PATH_LINE", "cell_values", "main", "parameters_cell", "parameters_cell_source",
           "stale_notebooks", "write_parameters_cell"]

#: The one notebook parameter that is not a scenario key: where the notebook writes results.json.
RESULTS_PATH_LINE = 'results_path: str = ""  # results.json to write ("" writes none; llmsizing run sets it)'


def _literal(value: Any) -> str:
    """``value`` as Python source, strings in double quotes (as the notebooks write them)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def parameters_cell_source(kind: str, values: Mapping[str, Any] | None = None) -> str:
    """The ``parameters`` cell of ``notebooks/<kind>.ipynb``: one typed, commented line per key."""
    values = values or {}
    lines = [f"{p.name}: {p.type} = {_literal(values.get(p.name, p.default))}  # {p.help}"
             for p in parameters_for(kind)]
    return "\n".join([*lines, RESULTS_PATH_LINE])


def parameters_cell(nb: Mapping[str, Any]) -> Mapping[str, Any]:
    """The cell tagged ``parameters`` of a notebook (JSON as read from the .ipynb)."""
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    raise ValueError("notebook has no cell tagged 'parameters'")


def _source(cell: Mapping[str, Any]) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def cell_values(source: str) -> dict[str, Any]:
    """The literal value of every ``name: type = value`` line of a parameters cell."""
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.AnnAssign, ast.Assign)):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name) and node.value is not None:
                out[target.id] = ast.literal_eval(node.value)
    return out


def _expected(nb: Mapping[str, Any], kind: str) -> str:
    return parameters_cell_source(kind, cell_values(_source(parameters_cell(nb))))


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def stale_notebooks(folder: Path | None = None, kinds: Sequence[str] = KINDS) -> list[Path]:
    """Notebooks whose parameters cell differs from the definition (empty: all in step)."""
    folder = folder or notebooks_dir()
    stale = []
    for kind in kinds:
        path = folder / f"{kind}.ipynb"
        nb = _read(path)
        if _source(parameters_cell(nb)) != _expected(nb, kind):
            stale.append(path)
    return stale


def write_parameters_cell(path: Path, kind: str) -> bool:
    """Rewrite the parameters cell of ``path`` from the definition; True when it changed."""
    nb = _read(path)
    cell = parameters_cell(nb)
    new = _expected(nb, kind)
    if _source(cell) == new:
        return False
    lines = new.split("\n")
    cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m llmsizing.report.notebooks",
                                 description="Check (or --write) the notebooks' parameters cells against the "
                                             "definition of the scenario keys.")
    ap.add_argument("--write", action="store_true", help="rewrite the cells that drifted")
    ap.add_argument("--dir", type=Path, default=None, help="notebook folder (default: notebooks/)")
    args = ap.parse_args(argv)
    folder = args.dir or notebooks_dir()
    if args.write:
        for kind in KINDS:
            path = folder / f"{kind}.ipynb"
            if write_parameters_cell(path, kind):
                print(f"rewrote the parameters cell of {path}")
        return 0
    stale = stale_notebooks(folder)
    for path in stale:
        print(f"{path}: parameters cell differs from llmsizing.report.parameters.PARAMETERS "
              f"(run python -m llmsizing.report.notebooks --write)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

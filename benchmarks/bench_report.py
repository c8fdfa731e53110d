"""Report build time: the default report set against a bare papermill run of an empty notebook.

Prints the wall time to build every params file of the default set (`make report`:
params/deepseek-r1-family.yaml) into a temporary folder, the wall time of papermill executing a
one-cell empty notebook with the same kernel (the fixed cost of starting a kernel), and their
ratio. Run through `make bench` (benchmarks/run.py calls main()) or directly:

    .venv/bin/python benchmarks/bench_report.py [PARAMS.yaml ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill as pm
from nbformat.v4 import new_code_cell, new_notebook

from llmsizing.report.render import KERNEL_NAME
from llmsizing.report.runner import run_scenarios

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SET = (ROOT / "params" / "deepseek-r1-family.yaml",)


def bare_papermill_s(workdir: Path) -> float:
    """Seconds for papermill to execute an empty one-cell notebook (kernel start + teardown)."""
    src = workdir / "empty.ipynb"
    nb = new_notebook(cells=[new_code_cell("")])
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, src)
    t0 = time.perf_counter()
    pm.execute_notebook(str(src), str(workdir / "empty.out.ipynb"), kernel_name=KERNEL_NAME, progress_bar=False,
                        log_output=False)
    return time.perf_counter() - t0


def build_s(params: list[Path], workdir: Path) -> tuple[float, list]:
    """Seconds to build the reports (HTML and PDF) for ``params``, and what was built."""
    t0 = time.perf_counter()
    results = run_scenarios(params, workdir / "reports", ("html", "pdf"))
    return time.perf_counter() - t0, results


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    params = [Path(a) for a in args] or list(DEFAULT_SET)
    with tempfile.TemporaryDirectory(prefix="llmsizing-bench-") as tmp:
        work = Path(tmp)
        bare = bare_papermill_s(work)
        total, results = build_s(params, work)
    for r in results:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items())
        print(f"   report {r.scenario}: {r.seconds:.1f} s ({parts}; execute = kernel start + estimates + figures)")
    print(f"   build default report set ({len(params)} scenario{'s' if len(params) != 1 else ''}, HTML + PDF): "
          f"{total:.1f} s")
    print(f"   bare papermill run of an empty notebook: {bare:.2f} s")
    print(f"   ratio build / bare papermill: {total / bare:.1f}x")


if __name__ == "__main__":
    main()

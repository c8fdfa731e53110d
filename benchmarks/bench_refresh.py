"""``llmsizing refresh``: a full build, a refresh with nothing changed, and one after one catalog change.

Issue #7's bars: a refresh right after another, with nothing changed, finishes in under 2 s and
rebuilds nothing; changing one catalog entry rebuilds exactly the scenarios that use it.

The catalog change is made the supported way, without touching the source tree: a copy of one
GPU entry with one added comment line in a temporary ``LLMSIZING_CATALOG_DIR``. The GPU is
chosen so that some scenarios use it and some do not. The two refreshes after the first run
``llmsizing refresh`` as a user would (a fresh interpreter, so the time includes start-up).

    python benchmarks/bench_refresh.py [--params params/] [-j 2] [--keep DIR]

Uses the real params/ and notebooks/ when every notebook they need exists; otherwise the small
test scenarios and notebooks under tests/data/ (it says which).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llmsizing.catalog import CATALOG_DIR
from llmsizing.refresh.index import read_manifest
from llmsizing.refresh.plan import plan_refresh
from llmsizing.report.runner import notebooks_dir
from llmsizing.report.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
BAR_NO_CHANGE_S = 2.0


def _cli(args: list[str], env: dict[str, str]) -> tuple[float, dict, subprocess.CompletedProcess]:
    cmd = [sys.executable, "-m", "llmsizing.cli", "refresh", *args, "--json", "-q"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    elapsed = time.perf_counter() - t0
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError(f"refresh printed no JSON (exit {proc.returncode}): {proc.stderr.strip()[-800:]}") from None
    return elapsed, doc, proc


def _inputs(params: Path, notebook_dir: Path | None) -> tuple[Path, Path | None]:
    """Real params and notebooks if complete, else the test data (small, fast)."""
    nb_dir = notebook_dir or notebooks_dir()
    try:
        needed = {load_scenario(p).notebook for p in sorted(params.glob("*.yaml"))}
    except Exception:  # noqa: BLE001 - an invalid real scenario: fall back to the test data
        needed = {"<invalid params>"}
    if needed and all((nb_dir / n).is_file() for n in needed):
        return params, notebook_dir
    data = REPO / "tests" / "data"
    print(f"   (notebooks {sorted(needed)} not all in {nb_dir}; using tests/data/params and tests/data/notebooks)")
    return data / "params", data / "notebooks"


def _pick_gpu(params: Path, out: Path, notebook_dir: Path | None) -> tuple[str, list[str]]:
    """A GPU catalog file used by some scenarios but not all (the cheapest to rebuild), and its users."""
    plans = [p for p in plan_refresh([params], out, notebook_dir=notebook_dir) if not p.error]
    seconds = {n: e.get("seconds") or 0.0 for n, e in read_manifest(out)["scenarios"].items()}
    users: dict[str, list[str]] = {}
    for p in plans:
        for label in p.catalog_files:
            if label.startswith("gpus/"):
                users.setdefault(label, []).append(p.name)
    ranked = sorted(users.items(), key=lambda kv: (len(kv[1]) == len(plans), sum(seconds.get(n, 0) for n in kv[1]),
                                                   kv[0]))
    label, names = ranked[0]
    return label, sorted(names)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=REPO / "params")
    ap.add_argument("--notebooks", type=Path, default=None, help="notebook folder (default: notebooks/)")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="build into this folder and keep it")
    args = ap.parse_args(argv if argv is not None else [])

    params, notebook_dir = _inputs(args.params, args.notebooks)
    work = Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    out = args.keep or (work / "reports")
    env = {k: v for k, v in os.environ.items() if k != "LLMSIZING_CATALOG_DIR"}
    if notebook_dir is not None:
        env["LLMSIZING_NOTEBOOK_DIR"] = str(notebook_dir)
    common = [str(params), "--out", str(out), "-j", str(args.jobs)]
    try:
        t, doc, proc = _cli([*common, "--force"], env)
        print(f"   full build:            {t:7.2f} s  built {len(doc['built'])}, failed {len(doc['failed'])}"
              f" ({', '.join(doc['built'])})")
        for name, reason in doc["failed"].items():
            print(f"     failed {name}: {reason[:200]}")

        t, doc, _ = _cli(common, env)
        ok = "ok" if t < BAR_NO_CHANGE_S and not doc["built"] else "OVER THE BAR"
        print(f"   no-change refresh:     {t:7.2f} s  rebuilt {len(doc['built'])}, "
              f"up to date {len(doc['up_to_date'])}  [bar {BAR_NO_CHANGE_S:.0f} s: {ok}]")

        label, expected = _pick_gpu(params, out, notebook_dir)
        kind, fname = label.split("/", 1)
        extra = work / "catalog-extra"
        (extra / kind).mkdir(parents=True)
        text = (CATALOG_DIR / kind / fname).read_text(encoding="utf-8").rstrip("\n")
        (extra / kind / fname).write_text(text + "\n# benchmark: entry touched\n", encoding="utf-8")
        t, doc, _ = _cli(common, {**env, "LLMSIZING_CATALOG_DIR": str(extra)})
        exact = "exactly its users" if sorted(doc["built"]) == expected else f"EXPECTED {expected}"
        print(f"   one catalog change:    {t:7.2f} s  changed {label}; rebuilt {sorted(doc['built'])} "
              f"({exact}), up to date {sorted(doc['up_to_date'])}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Run every benchmark (benchmarks/bench_*.py) and print its figures.

Each benchmark module exposes ``main()`` that prints what it measured (wall times, ratios).
Speed bars live here, not in timed tests that could flake.
"""

import importlib.util
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    failures = 0
    for path in sorted(here.glob("bench_*.py")):
        print(f"== {path.stem}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = mod  # worker processes find the module's functions by name (pickling)
        t0 = time.perf_counter()
        try:
            spec.loader.exec_module(mod)
            mod.main()
        except Exception as exc:  # a failing benchmark is reported, the others still run
            failures += 1
            print(f"   FAILED: {type(exc).__name__}: {exc}")
        print(f"   ({time.perf_counter() - t0:.2f} s in all)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

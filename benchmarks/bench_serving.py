"""Serving sweep: 7 DeepSeek-R1 family models x {bf16, fp8, int8, int4} x 6 GPUs (issue #3).

Bar: the whole sweep (168 scenarios, each searching the smallest layout and estimating speed)
runs in under 2 s, catalog loading included. Prints the cold time (empty caches: catalog files
read, module lists and weight tables built) and the warm time (caches filled).

    python benchmarks/bench_serving.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "lib") not in sys.path:
    sys.path.insert(0, str(REPO / "lib"))

from llmsizing import architecture, catalog  # noqa: E402 - after the sys.path line above
from llmsizing.serving import sharding  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_sweep import serve_sweep  # noqa: E402

BAR_S = 2.0


def _clear_caches() -> None:
    for fn in (catalog.model_entries, catalog.gpu_catalog, catalog.precision_catalog, architecture.model_modules,
               architecture.mtp_modules, sharding.weight_table):
        fn.cache_clear()


def main() -> None:
    _clear_caches()
    t0 = time.perf_counter()
    rows = serve_sweep()
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    serve_sweep()
    warm = time.perf_counter() - t0
    fits = sum(1 for r in rows if r["fits"])
    print(f"   serve_sweep: {len(rows)} combinations, each with a reason ({fits} fit on some layout, "
          f"{len(rows) - fits} fit nowhere)")
    print(f"   cold {cold:.3f} s, warm {warm:.3f} s (bar {BAR_S:.1f} s): {'OK' if cold < BAR_S else 'TOO SLOW'}")


if __name__ == "__main__":
    main()

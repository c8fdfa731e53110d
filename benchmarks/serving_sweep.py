"""The serving sweep the benchmark times: every DeepSeek-R1 family model × weight format × GPU.

Used by ``bench_serving.py`` (speed bar) and ``tests/test_serving.py`` (coverage of every combination);
no report reads it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "lib") not in sys.path:
    sys.path.insert(0, str(REPO / "lib"))

from llmsizing import catalog  # noqa: E402 - after the sys.path line above
from llmsizing.choices import DEEPSEEK_R1_FAMILY  # noqa: E402
from llmsizing.errors import SizingError  # noqa: E402
from llmsizing.serving.estimate import serve  # noqa: E402

SWEEP_PRECISIONS = ("bf16", "fp8", "int8", "int4")
SWEEP_GPUS = ("h100-80gb", "a100-80gb", "l40s", "rtx-4090", "a10g", "h200")


def serve_sweep(models: Sequence[str] = DEEPSEEK_R1_FAMILY, precisions: Sequence[str] = SWEEP_PRECISIONS,
                gpus: Sequence[str] = SWEEP_GPUS, *, users: int | None = None, context_tokens: int | None = None,
                engine: str = "vllm", speed: bool = True,
                assumptions: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per (model, precision, GPU): the smallest layout that fits, or why nothing does.

    Rows: model, precision, gpu, fits, gpus, nodes, tensor_parallel, pipeline_parallel, memory per GPU
    (bytes), kv capacity, max users, decode tokens/s per user, TTFT, reason. A combination the engine
    cannot run at all (e.g. FP8 under transformers on an A100) gives fits false with the error as reason.
    """
    rows = []
    for m in models:
        spec = catalog.load_model(m)
        for p in precisions:
            for g in gpus:
                row: dict[str, Any] = {"model": spec.slug, "precision": p, "gpu": g}
                try:
                    est = serve(spec, g, precision=p, users=users, context_tokens=context_tokens, engine=engine,
                                speed=speed, assumptions=assumptions)
                except SizingError as exc:
                    row.update(weight_format=None, fits=False, gpus=None, nodes=None, tensor_parallel=None,
                               pipeline_parallel=None,
                               memory_per_gpu_total=None, weights_per_gpu=None, kv_cache_per_gpu=None,
                               kv_cache_capacity_tokens=None, max_concurrent_users=None,
                               decode_tokens_per_s_per_user=None, ttft_s=None, reason=str(exc))
                    rows.append(row)
                    continue
                row.update(weight_format=est.precision, fits=est.fits, gpus=est.layout.gpus if est.fits else None,
                           nodes=est.layout.nodes if est.fits else None,
                           tensor_parallel=est.layout.tensor_parallel if est.fits else None,
                           pipeline_parallel=est.layout.pipeline_parallel if est.fits else None,
                           memory_per_gpu_total=round(est.memory_per_gpu.total),
                           weights_per_gpu=round(est.memory_per_gpu.weights),
                           kv_cache_per_gpu=round(est.memory_per_gpu.kv_cache),
                           kv_cache_capacity_tokens=est.kv_cache_capacity_tokens,
                           max_concurrent_users=est.max_concurrent_users,
                           decode_tokens_per_s_per_user=est.decode_tokens_per_s_per_user, ttft_s=est.ttft_s,
                           reason=est.reason)
                rows.append(row)
    return rows

"""Short names for the common fine-tuning knobs, mapped onto the named assumptions they stand for.

The estimator reads one MFU per method and GPU class (``mfu_lora_hopper``, ...) and one
bytes-per-token figure per language and tokenizer (``bytes_per_token_zh_qwen2``, ...). A user who
measured "30 % MFU" on an H100 should not have to know that an H100 is "hopper":

* ``mfu=0.3`` sets ``mfu_<method>_<class>`` for the class of each GPU named (every class for
  ``--gpu any``);
* ``tokens_per_byte=0.25`` sets the assumption(s) that make ``dataset.bytes_per_token`` return
  exactly 1 / 0.25 = 4 bytes per token for the run's language and tokenizer.

The result is an ordinary overrides mapping; explicit ``--set NAME=VALUE`` entries win.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.dataset import tokenizer_family
from llmsizing.errors import ScenarioError
from llmsizing.training.compute import GPU_CLASSES, gpu_class

__all__ = ["alias_overrides", "mfu_overrides", "tokens_per_byte_overrides"]


def mfu_overrides(mfu: float, method: str, gpus: Sequence[str]) -> dict[str, float]:
    """``{mfu_<method>_<class>: mfu}`` for the class of each GPU in ``gpus`` ("any": every class)."""
    classes = (GPU_CLASSES if any(g.strip().lower() == "any" for g in gpus)
               else tuple(dict.fromkeys(gpu_class(catalog.load_gpu(g)) for g in gpus)))
    return {f"mfu_{method}_{cls}": float(mfu) for cls in classes}


def tokens_per_byte_overrides(tokens_per_byte: float, language: str, tokenizer: str,
                              assumptions: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The overrides that make bytes per token = 1 / ``tokens_per_byte`` for ``language`` and ``tokenizer``.

    en, zh: ``bytes_per_token_<lang>_<tok>``; mixed: both (so any Chinese share gives the same);
    code: ``code_bytes_per_token_vs_english`` = (1 / tokens_per_byte) / ``bytes_per_token_en_<tok>``.
    """
    if not tokens_per_byte > 0:
        raise ScenarioError(f"--tokens-per-byte must be a positive number, got {tokens_per_byte!r}")
    bpt = 1.0 / float(tokens_per_byte)
    if language in ("en", "zh"):
        return {f"bytes_per_token_{language}_{tokenizer}": bpt}
    if language == "mixed":
        return {f"bytes_per_token_en_{tokenizer}": bpt, f"bytes_per_token_zh_{tokenizer}": bpt}
    en = float(Assumptions(dict(assumptions or {}))[f"bytes_per_token_en_{tokenizer}"])
    return {"code_bytes_per_token_vs_english": bpt / en}


def alias_overrides(*, model: str, method: str, gpu: str | Sequence[str], language: str = "en",
                    tokenizer: str | None = None, mfu: float | None = None, tokens_per_byte: float | None = None,
                    assumptions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``assumptions`` plus the named assumptions ``mfu`` and ``tokens_per_byte`` stand for.

    Names already in ``assumptions`` (from ``--set``) are kept as given.
    """
    out: dict[str, Any] = {}
    if mfu is not None:
        gpus = gpu.split(",") if isinstance(gpu, str) else list(gpu)
        out.update(mfu_overrides(mfu, method, gpus))
    if tokens_per_byte is not None:
        tok = tokenizer or tokenizer_family(catalog.load_model(model))
        out.update(tokens_per_byte_overrides(tokens_per_byte, language, tok, assumptions))
    out.update(assumptions or {})
    Assumptions(out)  # one line naming a bad value (e.g. an MFU above 1), before anything runs
    return out

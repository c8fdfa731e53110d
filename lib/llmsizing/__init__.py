"""llmsizing: hardware sizing for serving and fine-tuning large language models.

The library holds all the knowledge (catalogs, formulas, planner); notebooks and the
command line are thin faces over it. Import is light: nothing heavy is imported here.

The Python API (:mod:`llmsizing.api`) is loaded on first use::

    from llmsizing import model, serve, finetune, plan
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Names of the Python API, loaded from :mod:`llmsizing.api` on first access (PEP 562).
API = ("model", "serve", "finetune", "plan")

__all__ = ["__version__", *API]


def __getattr__(name: str) -> Any:
    # Lazy: `import llmsizing` (and the CLI's start-up) does not pay for pandas and the planner.
    if name in API:
        return getattr(importlib.import_module("llmsizing.api"), name)
    raise AttributeError(f"module 'llmsizing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({"__version__", "API", *API})

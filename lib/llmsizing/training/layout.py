"""Parallel layout of a fine-tuning run: which tp / pp / ep / cp fit the model, and which layers a
pipeline stage holds. Below both ``activations.py`` and ``memory.py``, which use it.
"""

from __future__ import annotations

import math
from typing import Any

from llmsizing.errors import ScenarioError
from llmsizing.lora import lora_target_modules
from llmsizing.specs import ModelSpec


def check_layout(spec: ModelSpec, setup: Any) -> None:
    """Raise ``ScenarioError`` when the parallel layout does not fit the model's shape."""
    if spec.num_heads % setup.tp:
        raise ScenarioError(f"tp={setup.tp} does not divide the {spec.num_heads} attention heads of {spec.slug}")
    if setup.tp > 1 and not spec.is_mla and spec.num_kv_heads % setup.tp and setup.tp % spec.num_kv_heads:
        raise ScenarioError(f"tp={setup.tp} and the {spec.num_kv_heads} key/value heads of {spec.slug} do not divide "
                            "one another")
    if setup.pp > spec.num_layers:
        raise ScenarioError(f"pp={setup.pp} exceeds the {spec.num_layers} layers of {spec.slug}")
    if setup.ep > 1:
        if not spec.is_moe:
            raise ScenarioError(f"ep={setup.ep} but {spec.slug} has no experts; use ep=1")
        if spec.num_experts % setup.ep:
            raise ScenarioError(f"ep={setup.ep} does not divide the {spec.num_experts} experts of {spec.slug}")
        if (setup.dp * setup.tp) % setup.ep:
            raise ScenarioError(f"ep={setup.ep} must divide dp·tp={setup.dp * setup.tp} (experts are spread over "
                                "data/tensor-parallel ranks)")
    if setup.seq_len % setup.cp:
        raise ScenarioError(f"cp={setup.cp} does not divide seq_len={setup.seq_len}")
    if setup.method != "full":
        lora_target_modules(spec, setup.lora_targets)




def stage_layers(spec: ModelSpec, setup: Any, stage: int) -> range:
    """Decoder layers of pipeline stage ``stage``: contiguous blocks of ceil(L / pp)."""
    return stage_layers_of(spec.num_layers, setup.pp, stage)


def stage_layers_of(num_layers: int, pp: int, stage: int) -> range:
    """Decoder layers of stage ``stage`` of ``pp`` over ``num_layers``: contiguous blocks of ceil(L / pp)."""
    per = math.ceil(num_layers / pp)
    return range(stage * per, min(num_layers, (stage + 1) * per))

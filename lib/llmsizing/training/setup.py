"""What a fine-tuning run is: ``FinetuneSetup`` (method, precision, optimizer, layout, batch, framework), checked.

Every estimator of the training floor (memory, activations, compute) and the planner take one of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmsizing.choices import (ADAPTER_DTYPES, ATTENTION_KERNELS, BASE_WEIGHTS, FRAMEWORKS, LOSS_IMPLS, METHODS,
                               OFFLOADS, OPTIMIZER_IMPLS, OPTIMIZERS, QLORA_QUANTS, ZERO_BACKENDS, ZERO_STAGES, one_of)
from llmsizing.choices import TRAIN_PRECISIONS as PRECISIONS
from llmsizing.errors import ScenarioError
from llmsizing.training.frameworks import Terms, resolve_terms


class _DefaultQuant(str):
    """Marks ``qlora_quant`` as not given, so full fine-tuning can refuse an explicit one."""


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ScenarioError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class FinetuneSetup:
    """How a fine-tuning run is configured (method, precision, optimizer, batch, parallel layout).

    Fields beyond the contract (docs/training-contract.md): ``lora_dropout``, ``compiled``
    (torch.compile), ``optimizer_in_backward`` (torchtune ``optimizer_in_bwd``),
    ``grad_accumulation``, ``cp`` (context parallel degree), ``zero_backend`` (fsdp | deepspeed),
    ``activation_offload`` (torchtune ``enable_activation_offloading``: saved activations, or the
    checkpointed layer inputs, wait in pinned host memory and return one layer at a time),
    ``base_weights`` (auto | bf16 | fp32: dtype of the frozen LoRA base; fp32 when a model loaded in
    fp32 trains under autocast / FSDP mixed precision, which gathers bf16 copies for compute).
    """

    method: str = "lora"
    precision: str = "mixed-bf16"
    optimizer: str = "adamw"
    seq_len: int = 4096
    micro_batch: int = 1
    gradient_checkpointing: bool = True
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_targets: str = "all-linear"
    qlora_quant: str = _DefaultQuant("nf4-dq")
    chunked_cross_entropy: bool | None = None   # None: the framework's loss (frameworks.py)
    attention_kernel: str = "flash"
    zero: int = 0
    offload: str = "none"
    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    sequence_parallel: bool = False
    lora_dropout: float = 0.0
    compiled: bool = False
    optimizer_in_backward: bool = False
    grad_accumulation: int = 1
    cp: int = 1
    zero_backend: str = "fsdp"
    activation_offload: bool = False
    base_weights: str = "auto"
    framework: str = "plain-pytorch"
    optimizer_impl: str = "auto"
    adapter_dtype: str = "auto"
    kbit_prep: bool | None = None
    loss_impl: str = "auto"

    def __post_init__(self) -> None:
        one_of(self.method, METHODS, "method")
        one_of(self.framework, FRAMEWORKS, "framework")
        one_of(self.optimizer_impl, OPTIMIZER_IMPLS, "optimizer_impl")
        one_of(self.adapter_dtype, ADAPTER_DTYPES, "adapter_dtype")
        one_of(self.loss_impl, LOSS_IMPLS, "loss_impl")
        if self.chunked_cross_entropy is not None and not isinstance(self.chunked_cross_entropy, bool):
            raise ScenarioError(f"chunked_cross_entropy must be true, false or null, got {self.chunked_cross_entropy!r}")
        if self.kbit_prep is not None and not isinstance(self.kbit_prep, bool):
            raise ScenarioError(f"kbit_prep must be true, false or null, got {self.kbit_prep!r}")
        if self.precision in QLORA_QUANTS:
            raise ScenarioError(f"precision {self.precision!r} is a 4-bit storage format: train a 4-bit base with "
                                "method=qlora (qlora_quant=nf4|nf4-dq); full fine-tuning needs mixed-bf16, bf16 "
                                "or fp32")
        one_of(self.precision, PRECISIONS, "precision")
        one_of(self.optimizer, OPTIMIZERS, "optimizer")
        one_of(self.attention_kernel, ATTENTION_KERNELS, "attention_kernel")
        one_of(self.offload, OFFLOADS, "offload")
        one_of(self.zero_backend, ZERO_BACKENDS, "zero_backend")
        one_of(self.base_weights, BASE_WEIGHTS, "base_weights")
        one_of(self.qlora_quant, QLORA_QUANTS, "qlora_quant")
        if self.method == "full" and not isinstance(self.qlora_quant, _DefaultQuant):
            raise ScenarioError(f"qlora_quant={self.qlora_quant!r} with method=full: full fine-tuning cannot train a "
                                "4-bit quantized base; use method=qlora")
        for name in ("seq_len", "micro_batch", "tp", "pp", "dp", "ep", "cp", "grad_accumulation"):
            _positive_int(name, getattr(self, name))
        if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank <= 0:
            raise ScenarioError(f"lora_rank must be a positive integer, got {self.lora_rank!r}")
        if isinstance(self.lora_alpha, bool) or not isinstance(self.lora_alpha, (int, float)) or self.lora_alpha <= 0:
            raise ScenarioError(f"lora_alpha must be a positive number, got {self.lora_alpha!r}")
        if isinstance(self.zero, bool) or self.zero not in ZERO_STAGES:
            raise ScenarioError(f"zero stage must be 0, 1, 2 or 3, got {self.zero!r}")
        if self.offload == "optimizer" and self.zero < 1:
            raise ScenarioError("offload=optimizer needs ZeRO stage >= 1 (the offloaded states are a ZeRO partition)")
        if self.offload == "optimizer+params" and self.zero != 3:
            raise ScenarioError("offload=optimizer+params needs ZeRO stage 3 (parameters are offloaded as partitions)")
        if not isinstance(self.lora_dropout, (int, float)) or isinstance(self.lora_dropout, bool) \
                or not 0 <= self.lora_dropout < 1:
            raise ScenarioError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if self.optimizer_in_backward and self.grad_accumulation > 1:
            raise ScenarioError("optimizer_in_backward steps every parameter during backward; it needs "
                                "grad_accumulation=1")
        if not isinstance(self.lora_targets, str) or not self.lora_targets.strip():
            raise ScenarioError(f"lora_targets must be a non-empty string, got {self.lora_targets!r}")

    @property
    def terms(self) -> Terms:
        """The framework profile resolved for this setup (``frameworks.resolve_terms``)."""
        return resolve_terms(self)

    @property
    def gpus(self) -> int:
        """tp · pp · dp · cp (expert parallelism reuses data/tensor-parallel ranks)."""
        return self.tp * self.pp * self.dp * self.cp

    @property
    def tokens_per_gpu(self) -> int:
        """Tokens of one micro-batch on one GPU: micro_batch · seq_len / cp."""
        return self.micro_batch * self.seq_len // self.cp

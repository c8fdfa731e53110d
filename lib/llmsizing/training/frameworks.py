"""Framework profiles: which memory terms a training stack brings, each sourced from its code or docs.

The same model and batch take different memory under different stacks. A profile says, for one
stack, how it implements the pieces whose memory differs:

- ``optimizer_impl``: ``fused`` (torch ``AdamW(fused=True)``, apex/DeepSpeed ``FusedAdam``,
  bitsandbytes 8-bit/paged kernels: no step temporaries), ``foreach`` (torch's CUDA default,
  ``_multi_tensor_adamw``: one state-dtype temporary per parameter), ``forloop`` (single tensor:
  two temporaries of the largest parameter);
- ``adapter_dtype``: ``working`` (adapters in the model's dtype) or ``fp32`` (PEFT's default
  ``autocast_adapter_dtype=True``);
- ``kbit_prep``: QLoRA through ``peft.prepare_model_for_kbit_training`` (non-4-bit parameters in
  fp32, fp32 residual stream);
- ``loss_impl``: ``eager`` (whole fp32 logits), ``chunked`` (torchtune / LitGPT chunked output),
  ``fused-linear`` (Liger / Cut Cross-Entropy / Unsloth: logits never materialised);
- ``loss_fp32_upcast``: whether the loss upcasts the logits to fp32;
- ``bnb_saves_input``: bitsandbytes < 0.43.2 ``MatMul4Bit`` saves every 4-bit linear's input;
- ``main_grad_fp32``: Megatron's persistent fp32 main-gradient buffer;
- ``moe_eager_experts``: transformers' eager experts loop (SelectBackward copies of the fused
  expert tensors in full fine-tuning; fused expert tensors are not quantized under QLoRA);
- ``eval_full_logits``: the periodic validation step holds the whole logits unchunked (LitGPT).

A ``FinetuneSetup`` names its ``framework``; its ``optimizer_impl``, ``adapter_dtype``,
``kbit_prep`` and ``loss_impl`` fields override the profile where they are not ``auto``.
``plain-pytorch`` (fused AdamW, adapters in the working dtype, eager loss) is the library's
default and the CPU ground-truth harness's setup; the command line and scenarios default to
``hf-peft`` (``choices.DEFAULT_FRAMEWORK``), what most customers run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmsizing.choices import FRAMEWORKS, one_of


@dataclass(frozen=True)
class FrameworkProfile:
    """The memory-relevant implementation choices of one training stack."""

    name: str
    label: str
    optimizer_impl: str = "foreach"
    adapter_dtype: str = "working"
    kbit_prep: bool = False
    loss_impl: str = "eager"
    loss_fp32_upcast: bool = True
    bnb_saves_input: bool = False
    main_grad_fp32: bool = False
    moe_eager_experts: bool = True
    eval_full_logits: bool = False
    sources: tuple[str, ...] = ()


_HF = (
    "transformers training_args.py: optim default adamw_torch (torch.optim.AdamW, foreach on CUDA: "
    "torch/optim/optimizer.py _default_to_fused_or_foreach) before torch 2.8, adamw_torch_fused from torch 2.8",
    "peft tuners_utils.py _cast_adapter_dtype / get_peft_model(autocast_adapter_dtype=True): bf16 adapters -> fp32",
    "transformers loss_utils.py ForCausalLMLoss: logits.float() then cross_entropy",
    "transformers integrations/moe.py eager experts loop; quantizer_bnb_4bit quantizes nn.Linear only",
)
_KBIT = "peft utils/other.py prepare_model_for_kbit_training: non-4-bit parameters param.data.to(torch.float32)"

PROFILES: dict[str, FrameworkProfile] = {
    "hf-peft": FrameworkProfile(
        "hf-peft", "Hugging Face Trainer + PEFT", adapter_dtype="fp32", kbit_prep=True, sources=_HF + (_KBIT,)),
    "trl": FrameworkProfile(
        "trl", "TRL SFTTrainer (Trainer + PEFT)", adapter_dtype="fp32", kbit_prep=True,
        sources=_HF + ("trl sft_trainer.py: prepare_model_for_kbit_training for 4-bit models",)),
    "axolotl": FrameworkProfile(
        "axolotl", "Axolotl (Trainer + PEFT)", adapter_dtype="fp32", kbit_prep=True,
        sources=_HF + ("axolotl utils/models.py: prepare_model_for_kbit_training for qlora without FSDP, then "
                       "'LlamaRMSNorm layers are in fp32 after kbit_training ... convert them back to fp16/bf16 for "
                       "flash-attn compatibility' (norms and embed_tokens/lm_head back to the torch dtype)",)),
    "llama-factory": FrameworkProfile(
        "llama-factory", "LLaMA-Factory (Trainer + PEFT)", adapter_dtype="fp32", kbit_prep=False,
        sources=_HF + ("LLaMA-Factory model/model_utils/checkpointing.py prepare_model_for_training: own k-bit "
                       "preparation, layer norms upcast only with upcast_layernorm (default false)",)),
    "ms-swift": FrameworkProfile(
        "ms-swift", "ms-swift (Trainer + PEFT)", adapter_dtype="fp32", kbit_prep=False,
        sources=_HF + ("ms-swift swift/llm/train/tuner.py: get_peft_model on the loaded model, no k-bit cast",)),
    "unsloth": FrameworkProfile(
        "unsloth", "Unsloth", adapter_dtype="working", kbit_prep=False, loss_impl="fused-linear",
        sources=("unsloth kernels/cross_entropy_loss.py fused_linear_cross_entropy (logits not materialised); "
                 "unsloth models/_utils.py Unsloth_Offloaded_Gradient_Checkpointer",) + _HF[:1]),
    "torchtune": FrameworkProfile(
        "torchtune", "torchtune", optimizer_impl="fused", adapter_dtype="working", loss_impl="chunked",
        moe_eager_experts=False,
        sources=("torchtune recipes/configs/*: optimizer torch.optim.AdamW fused: True; dtype bf16 for the whole "
                 "model; loss CEWithChunkedOutputLoss",)),
    "litgpt": FrameworkProfile(
        "litgpt", "LitGPT", optimizer_impl="foreach", adapter_dtype="working", loss_impl="chunked",
        loss_fp32_upcast=False, bnb_saves_input=True, moe_eager_experts=False, eval_full_logits=True,
        sources=("litgpt finetune/lora.py: torch.optim.AdamW (foreach on CUDA); validate() computes the whole "
                 "logits and chunked_cross_entropy(..., chunk_size=0); lm_head_chunk_size=128 and "
                 "utils.chunked_cross_entropy without .float(); 'LitGPT only supports bitsandbytes v0.42.0' "
                 "(MatMul4Bit saved its input until bitsandbytes 0.43.2, PR #1270)",)),
    "deepspeed": FrameworkProfile(
        "deepspeed", "DeepSpeed ZeRO (Trainer + PEFT)", optimizer_impl="fused", adapter_dtype="fp32",
        sources=("deepspeed runtime/engine.py _configure_basic_optimizer: FusedAdam for Adam/AdamW "
                 "(DeepSpeedCPUAdam under offload)",) + _HF[1:]),
    "fsdp": FrameworkProfile(
        "fsdp", "PyTorch FSDP / FSDP2 (Trainer + PEFT)", adapter_dtype="fp32",
        sources=_HF + ("torch.distributed.fsdp: the optimizer is the caller's torch.optim.AdamW",)),
    "megatron": FrameworkProfile(
        "megatron", "Megatron-LM (mcore)", optimizer_impl="fused", main_grad_fp32=True, moe_eager_experts=False,
        sources=("Megatron-LM README distributed optimizer table 'bf16 param, fp32 grads: 18 = 6 + 12/d'; "
                 "megatron/core/distributed/param_and_grad_buffer.py (grad_dtype fp32 with "
                 "accumulate_allreduce_grads_in_fp32); megatron/core/optimizer uses apex/TE FusedAdam",)),
    "plain-pytorch": FrameworkProfile(
        "plain-pytorch", "plain PyTorch loop (fused AdamW, adapters in the working dtype)", optimizer_impl="fused",
        sources=("torch.optim.AdamW(fused=True); the CPU ground-truth harness tests/groundtruth/wholestep.py",)),
}
assert set(PROFILES) == set(FRAMEWORKS)


def framework_profile(name: str) -> FrameworkProfile:
    """The profile of framework ``name`` (one of ``choices.FRAMEWORKS``)."""
    one_of(name, FRAMEWORKS, "framework")
    return PROFILES[name]


@dataclass(frozen=True)
class Terms:
    """The profile resolved for one setup: which terms apply."""

    framework: str
    optimizer_impl: str
    adapter_fp32: bool
    kbit_prep: bool
    loss_impl: str
    loss_fp32_upcast: bool
    bnb_saves_input: bool
    main_grad_fp32: bool
    moe_eager_experts: bool
    eval_full_logits: bool = False


_BNB_OPTIMIZERS = ("adamw-8bit", "paged-adamw-8bit", "paged-adamw")


def resolve_terms(setup: Any) -> Terms:
    """The profile of ``setup.framework`` with the setup's explicit choices applied.

    bitsandbytes optimizers (8-bit, paged) step in one fused kernel per tensor whatever the stack;
    SGD has no Adam temporaries. k-bit preparation and the bitsandbytes version matter for QLoRA
    only; fp32 adapters for LoRA/QLoRA only (a mixed-bf16 setup already keeps fp32 adapter copies).
    """
    p = framework_profile(setup.framework)
    impl = p.optimizer_impl if setup.optimizer_impl == "auto" else setup.optimizer_impl
    if setup.optimizer in _BNB_OPTIMIZERS or setup.optimizer.startswith("sgd"):
        impl = "fused"
    adapter = p.adapter_dtype if setup.adapter_dtype == "auto" else setup.adapter_dtype
    kbit = p.kbit_prep if setup.kbit_prep is None else bool(setup.kbit_prep)
    if setup.kbit_prep is None and setup.zero == 3 and setup.zero_backend == "fsdp":
        # sharded QLoRA skips the k-bit preparation (TRL sft_trainer.py: `not is_sharded_qlora`;
        # axolotl: only without FSDP)
        kbit = False
    if setup.kbit_prep is None and p.name == "axolotl" and setup.attention_kernel == "flash":
        kbit = False   # axolotl casts norms, embedding and head back to bf16 for flash attention
    if setup.loss_impl != "auto":
        loss = setup.loss_impl
    elif setup.chunked_cross_entropy is not None:   # stated by the setup: chunked or one piece
        loss = "chunked" if setup.chunked_cross_entropy else "eager"
    else:
        loss = p.loss_impl
    return Terms(
        framework=p.name, optimizer_impl=impl,
        adapter_fp32=setup.method != "full" and adapter == "fp32" and setup.precision == "bf16",
        kbit_prep=setup.method == "qlora" and kbit, loss_impl=loss, loss_fp32_upcast=p.loss_fp32_upcast,
        bnb_saves_input=setup.method == "qlora" and p.bnb_saves_input,
        main_grad_fp32=p.main_grad_fp32 and setup.method == "full", moe_eager_experts=p.moe_eager_experts,
        eval_full_logits=p.eval_full_logits,
    )

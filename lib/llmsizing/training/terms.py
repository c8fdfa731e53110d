"""Whole-step memory terms beyond the saved activations and the ZeRO model states.

Each function is one term found by the whole-step CPU measurement (``tests/groundtruth/
wholestep.py``: live tensor storages through forward, loss, backward and the optimizer step) or by
the published out-of-sample runs, with the code that allocates it. ``finetune_memory`` decides in
which phase each term is alive; the framework profile (``frameworks.py``) decides whether it applies.
"""

from __future__ import annotations

import math

FP32 = 4


def optimizer_step_temp_bytes(impl: str, trainable_numel: float, largest_numel: float,
                              state_bytes: float) -> float:
    """Temporaries of one AdamW step on one GPU.

    - ``fused``: 0 (torch ``_fused_adamw``, apex/DeepSpeed FusedAdam: one kernel, no outputs);
    - ``foreach``: ``trainable_numel · state_bytes`` — ``torch/optim/adam.py::_multi_tensor_adam``
      makes ``exp_avg_sq_sqrt = torch._foreach_sqrt(exp_avg_sqs)``, one state-dtype tensor per
      parameter, all alive until ``_foreach_addcdiv_`` (the CUDA default,
      ``optimizer.py::_default_to_fused_or_foreach``);
    - ``forloop``: ``2 · largest_numel · state_bytes`` — ``_single_tensor_adam``:
      ``denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)``, two temporaries of one parameter.
    """
    if impl == "foreach":
        return trainable_numel * state_bytes
    if impl == "forloop":
        return 2 * largest_numel * state_bytes
    return 0.0


def backward_built_gradients_bytes(grads_total: float, grads_first_layer: float, grads_embedding: float) -> float:
    """Gradients alive while the first layer of the stage back-propagates (full fine-tuning, ZeRO ≤ 1).

    Autograd's ``AccumulateGrad`` (``torch/csrc/autograd/functions/accumulate_grad.h``) stores each
    ``.grad`` as soon as its node runs and nothing frees it before ``optimizer.step()``: during layer
    0's backward every gradient except layer 0's own and the embedding's is alive,
    ``G_total − G_layer0 − G_embedding``.
    """
    return max(0.0, grads_total - grads_first_layer - grads_embedding)


def adapter_weight_bytes(adapter_params: float, bytes_per_param: float) -> float:
    """LoRA adapter weights ``P_lora · bytes`` (PEFT ``LoraLayer.update_layer`` creates lora_A / lora_B).

    Needed when no fp32 master stands in for them (pure bf16 or fp32 training).
    """
    return adapter_params * bytes_per_param


def kbit_prep_extra_weight_bytes(non_quantized_params: float) -> float:
    """``peft.prepare_model_for_kbit_training`` casts every non-4-bit bf16 parameter (embedding,
    lm_head, norms) to fp32 (``peft/utils/other.py``: ``param.data = param.data.to(torch.float32)``):
    +2 B per parameter."""
    return 2.0 * non_quantized_params


def megatron_main_grad_bytes(trainable_local_params: float) -> float:
    """Megatron's fp32 main-gradient buffer, alive for the whole step and not sharded by the
    distributed optimizer: ``4 · P / (tp · pp)`` (Megatron-LM README, distributed optimizer table:
    'bf16 param, fp32 grads | 18 | 6 + 12/d'; ``megatron/core/distributed/param_and_grad_buffer.py``)."""
    return FP32 * trainable_local_params


def zero3_offload_resident_bytes(largest_module_params: float, a: dict) -> float:
    """DeepSpeed ZeRO-3 with parameter offload keeps the largest module gathered, counted as
    ``ds_offload_largest_module_bytes_per_param`` × its parameters (DeepSpeed
    ``runtime/zero/stage3.py::estimate_zero3_model_states_mem_needs``: ``largest_layer_memory =
    4 * largest_layer_params`` when ``offload_param``); the embedding or head is the largest module."""
    return a["ds_offload_largest_module_bytes_per_param"] * largest_module_params


def moe_select_backward_bytes(experts_tensor_bytes: float, a: dict) -> float:
    """Full fine-tuning through transformers' eager experts loop: ``gate_up_proj[e]`` is a select
    whose ``SelectBackward0`` allocates a zero-filled gradient of the whole fused (E, 2·I, h) tensor
    for every expert visited, and ``AccumulateGrad`` adds it (``tools/autograd/derivatives.yaml``
    ``select_backward_symint``): ``moe_select_backward_copies`` such tensors live during an MoE
    layer's backward, besides the accumulated gradient."""
    return a["moe_select_backward_copies"] * experts_tensor_bytes


def deepspeed_zero3_fp32_grad_bytes(grad_partition_params: float, a: dict) -> float:
    """DeepSpeed ZeRO-3 steps one sub-group at a time on an fp32 copy of its gradient partition
    (``runtime/zero/stage3.py::_prepare_fp32_grad_for_sub_group``: ``flatten(averaged_gradients).to(fp32)``):
    ``4 · min(P / dp, ds_sub_group_size)`` at the optimizer step (DeepSpeed's own estimator counts
    18 B/param/N for this reason)."""
    return FP32 * min(grad_partition_params, a["ds_sub_group_size"])


def eval_full_logits_bytes(vocab: float, tokens: float, act_bytes: float) -> float:
    """A validation step that computes the whole logits and an unchunked loss under ``no_grad``
    (LitGPT ``finetune/*.py::validate``: ``logits = model(input_ids)`` then
    ``chunked_cross_entropy(logits[..., :-1, :], targets[..., 1:], chunk_size=0)``): the logits, the
    contiguous copy ``reshape`` makes of the shifted slice and ``cross_entropy``'s log-softmax, all in
    the activation dtype: ``3 · a · V · T``."""
    return 3 * act_bytes * vocab * tokens


def fused_linear_ce_bytes(vocab: float, hidden: float, tokens: float, act_bytes: float) -> float:
    """Fused linear cross-entropy (Liger ``LigerFusedLinearCrossEntropyLoss``, Apple Cut
    Cross-Entropy, Unsloth): logits are computed a chunk of rows at a time and never kept for all
    tokens. Liger (``liger_kernel/ops/fused_linear_cross_entropy.py``) sizes the chunk so that it
    holds about as many elements as the input: ``inc = ceil(V / h)``, ``chunk =
    next_power_of_2(ceil(T / inc))``; alive are the chunk's logits and their fp32 gradient,
    ``chunk · V · (a + 4)``, and the input gradient for all tokens, ``T · h · a``.
    """
    inc = math.ceil(vocab / hidden)
    chunk = min(tokens, 2 ** math.ceil(math.log2(max(1, math.ceil(tokens / inc)))))
    return chunk * vocab * (act_bytes + FP32) + tokens * hidden * act_bytes

"""Assumptions of the fine-tuning memory model (``training.py``, ``activations.py``).

Byte counts per optimizer state, the allocator and communication overheads, the ZeRO-3 /
FSDP gather buffers and bitsandbytes behaviour. Utilisation (MFU) assumptions live in
``training_compute.py``. Calibration against published measurements:
``tests/test_training_calibration.py``.
"""

from llmsizing.assumptions import Assumption

_C = "training-memory"

ASSUMPTIONS = (
    # ------------------------------------------------------------------ optimizer states
    Assumption(
        "master_weight_bytes", 4, "bytes/param",
        "Micikevicius et al. 2018, Mixed Precision Training, arXiv:1710.03740 §3.1 (fp32 master copy); "
        "Rajbhandari et al. 2020, ZeRO, arXiv:1910.02054 §3.1 (K = 12 = 4 master + 4 momentum + 4 variance)",
        "fp32 master copy of each trainable parameter kept by the optimizer in mixed-precision training.", _C,
    ),
    Assumption(
        "adam_state_bytes_fp32", 8, "bytes/param",
        "Kingma & Ba 2015 (two moments per parameter); torch.optim.AdamW keeps exp_avg and exp_avg_sq in the "
        "parameter's dtype (fp32 master in mixed precision)",
        "AdamW first and second moments in fp32.", _C,
    ),
    Assumption(
        "adam_8bit_state_bytes", 2, "bytes/param",
        "Dettmers et al. 2022, 8-bit Optimizers via Block-wise Quantization, arXiv:2110.02861 §2 (two uint8 "
        "states); bitsandbytes/optim/optimizer.py Optimizer2State.init_state (state1/state2 uint8)",
        "bitsandbytes 8-bit AdamW: two 8-bit moments per parameter.", _C,
    ),
    Assumption(
        "adam_8bit_block_size", 256, "params",
        "bitsandbytes/optim/optimizer.py Optimizer2State.init_state: blocksize = 256, one fp32 absmax per block "
        "and state (absmax1, absmax2)",
        "Block size of the block-wise 8-bit optimizer states (one fp32 scale per block per state).", _C,
    ),
    Assumption(
        "adam_8bit_min_size", 4096, "params",
        "bitsandbytes Optimizer8bit(min_8bit_size=4096): tensors with fewer elements keep 32-bit states",
        "Parameters smaller than this keep fp32 optimizer states under 8-bit AdamW.", _C,
    ),
    Assumption(
        "moe_select_backward_copies", 2, "tensors",
        "whole-step CPU measurement (tests/groundtruth/test_wholestep.py::test_moe_eager_experts_select_backward_"
        "copies): transformers' eager experts loop, SelectBackward0 of gate_up_proj[e] allocates a zero-filled "
        "(E, 2I, h) gradient and AccumulateGrad's add makes another, besides the accumulated .grad",
        "Whole fused expert-tensor copies alive during an MoE layer's backward in full fine-tuning (eager experts).",
        _C,
    ),
    Assumption(
        "ds_offload_largest_module_bytes_per_param", 4, "bytes/param",
        "DeepSpeed runtime/zero/stage3.py estimate_zero3_model_states_mem_needs: with offload_param "
        "gpu_mem = largest_layer_memory = 4 * largest_layer_params",
        "GPU bytes per parameter of the largest module (embedding or head) ZeRO-3 keeps under parameter offload.",
        _C,
    ),
    # ------------------------------------------------------------------ activations
    Assumption(
        "dropout_mask_bytes", 1, "bytes/element",
        "PyTorch native_dropout returns a torch.bool mask (1 byte per element) that autograd saves",
        "Bytes per element of a saved dropout mask (LoRA dropout > 0).", _C,
    ),
    Assumption(
        "norm_upcast_bytes", 4, "bytes/element",
        "transformers LlamaRMSNorm.forward: hidden_states.to(torch.float32) then pow(2) and the rsqrt multiply "
        "save the fp32 copy; torchtune RMSNorm does the same (x.float())",
        "Bytes per element of the fp32 copy an eager RMSNorm saves for backward.", _C,
    ),
    Assumption(
        "logits_upcast_fp32", True, "bool",
        "transformers loss_utils.ForCausalLMLoss: logits = logits.float() before cross_entropy; torchtune "
        "CEWithChunkedOutputLoss: logits_chunk.float(); Megatron computes the vocab-parallel loss in fp32",
        "The loss upcasts the logits to fp32 (False: the loss runs in the activation dtype).", _C,
    ),
    Assumption(
        "ce_chunks", 8, "chunks",
        "torchtune CEWithChunkedOutputLoss(num_output_chunks=8); TransformerDecoder.set_num_output_chunks",
        "Number of sequence chunks of chunked cross-entropy (fp32 upcast one chunk at a time).", _C,
    ),
    Assumption(
        "moe_routing_imbalance", 1.0, "factor",
        "Balanced routing (auxiliary-loss or bias balancing, DeepSeek-V3 arXiv:2412.19437 §2.1.2); raise to size "
        "the busiest expert-parallel rank",
        "Tokens routed to the busiest rank relative to the average (scales expert activations).", _C,
    ),
    Assumption(
        "paged_states_resident", True, "bool",
        "bitsandbytes paged optimizers (Dettmers et al. 2023, QLoRA §3 'Paged Optimizers'; bitsandbytes "
        "functional.get_paged -> cudaMallocManaged): unified memory stays on the GPU until it runs short, then "
        "pages to host; PyTorch's allocator does not see it (torchtune issue #1278: nvidia-smi shows it, "
        "max_memory_reserved does not)",
        "Count paged optimizer states in device memory while they fit (False: assume they live on the host).",
        _C,
    ),
    # ------------------------------------------------------------------ QLoRA
    Assumption(
        "dequant_workspace_copies", 1, "weights",
        "bitsandbytes autograd MatMul4Bit: forward and backward each dequantize the 4-bit weight to a bf16 "
        "temporary (F.dequantize_4bit) and save only the packed weight; torchao NF4Tensor linear does the same",
        "bf16 copies of the largest quantized weight alive at once during QLoRA forward/backward.", _C,
    ),
    # ------------------------------------------------------------------ data parallel / ZeRO
    Assumption(
        "ddp_gradient_as_bucket_view", False, "bool",
        "torch.nn.parallel.DistributedDataParallel(gradient_as_bucket_view=False) is the default; the docs say "
        "setting it True saves memory equal to the total gradient size, i.e. the buckets are a second copy",
        "Whether DDP gradients are views into its all-reduce buckets (False: buckets are a full extra copy).", _C,
    ),
    Assumption(
        "zero_fp32_grad_partition", False, "bool",
        "ZeRO paper Figure 1 counts 2 B fp16 gradients (K = 12); DeepSpeed stage_1_and_2.py also converts the "
        "gradient partition to fp32 before the step (estimate_zero2_model_states_mem_needs: 2 + 18/N after "
        "DeepSpeed PR #5099)",
        "Count DeepSpeed's fp32 copy of the gradient partition (4 B/param / dp) at the optimizer step.", _C,
    ),
    Assumption(
        "ds_stage3_prefetch_bucket_size", 50_000_000, "params",
        "DeepSpeed runtime/zero/config.py: stage3_prefetch_bucket_size default 5e7 (Hugging Face 'auto' sets "
        "0.9·hidden²)",
        "Parameters DeepSpeed ZeRO-3 prefetches ahead of the module being computed.", _C,
    ),
    Assumption(
        "ds_stage3_max_live_parameters", 1_000_000_000, "params",
        "DeepSpeed runtime/zero/config.py: stage3_max_live_parameters default 1e9",
        "Upper bound on gathered (full) parameters DeepSpeed ZeRO-3 keeps alive per GPU.", _C,
    ),
    Assumption(
        "ds_sub_group_size", 1_000_000_000, "params",
        "DeepSpeed runtime/zero/config.py: sub_group_size default 1e9 (ZeRO-3 steps the optimizer per sub-group)",
        "Parameters per DeepSpeed ZeRO-3 optimizer sub-group (bounds the fp32 gradient copy at the step).", _C,
    ),
    Assumption(
        "ds_reduce_bucket_size", 500_000_000, "params",
        "DeepSpeed runtime/zero/config.py: reduce_bucket_size default 5e8 (Hugging Face 'auto' sets hidden²)",
        "Gradient elements DeepSpeed ZeRO-2/3 buffers before reduce-scatter.", _C,
    ),
    Assumption(
        "fsdp_offload_keeps_4bit_shards", True, "bool",
        "Published FSDP + QLoRA runs with CPU parameter offload measure about the NF4 shard per GPU plus "
        "activations (Answer.AI fsdp_qlora / axolotl Llama-3-70B on 2 GPUs, 21 GB; P. Schmid 'FSDP + Q-LoRA' "
        "Llama-3-70B on 4xA10G, 22 GB; PEFT docs 'FSDP + QLoRA' 2x24 GB): the 4-bit (bf16 quant_storage) "
        "shards stay on the GPU; unverified on a GPU here",
        "Under FSDP with parameter offload, keep QLoRA's packed 4-bit shards on the GPU (False: offload them).",
        _C,
    ),
    Assumption(
        "fsdp_prefetch_units", 1, "units",
        "torch FSDP backward_prefetch=BACKWARD_PRE and limit_all_gathers=True: at most one unit gathered ahead "
        "of the one computing (torch/distributed/fsdp docs)",
        "FSDP units (decoder layers) all-gathered ahead of the current one.", _C,
    ),
    # ------------------------------------------------------------------ ranges
    Assumption(
        "memory_range_min_cases", 3, "cases",
        "a class (method x framework) needs a few residuals before its extremes mean anything; below, the method's "
        "or all out-of-sample residuals are used (training/ranges.py)",
        "Fewest out-of-sample cases a class needs to get its own memory range.", _C,
    ),
    Assumption(
        "memory_range_floor_fraction", 0.05, "fraction",
        "the whole-step CPU measurement agrees with the estimate within 5% on the tiny models "
        "(tests/groundtruth/test_wholestep.py): no range is narrower than the model's own error there",
        "Smallest half-width of a memory range, as a fraction of the estimate.", _C,
    ),
    # ------------------------------------------------------------------ device-level overheads
    Assumption(
        "allocator_fragmentation_fraction", 0.05, "fraction of allocated",
        "PyTorch caching allocator (CUDA semantics notes): reserved exceeds allocated by block rounding "
        "(512 B / 2 MiB) and cached free blocks; torchtune PR #961 reports peak reserved 'similar' to 20.2 GB "
        "allocated for Llama-2-7B; calibrated in tests/test_training_calibration.py",
        "max_memory_reserved ≈ max_memory_allocated × (1 + this).", _C,
    ),
    Assumption(
        "allocator_large_segment_bytes", 20_971_520, "bytes",
        "c10/cuda/CUDACachingAllocator.cpp: kLargeBuffer = 20 MiB segments for requests of 1-10 MiB, larger "
        "requests rounded up to kRoundLarge = 2 MiB; the last segment of the peak is on average partly empty",
        "Caching-allocator rounding at the peak: one large segment (reserved - allocated beyond fragmentation).",
        _C,
    ),
    Assumption(
        "allocator_expandable_segments", False, "bool",
        "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True (PyTorch CUDA semantics notes, 'Optimizing memory usage "
        "with PYTORCH_CUDA_ALLOC_CONF'): one segment grows with cuMemMap instead of caching many, so freed "
        "blocks fragment less; off by default",
        "Whether the run sets expandable_segments:True (uses allocator_fragmentation_fraction_expandable).", _C,
    ),
    Assumption(
        "allocator_fragmentation_fraction_expandable", 0.02, "fraction of allocated",
        "PyTorch CUDA semantics notes: expandable segments avoid the fragmentation of many cached segments; "
        "rounding to 2 MiB pages remains (the value is the 512 B / 2 MiB rounding share, not fitted)",
        "max_memory_reserved ≈ max_memory_allocated × (1 + this) with expandable segments.", _C,
    ),
    Assumption(
        "nccl_buffer_bytes", 536_870_912, "bytes",
        "NCCL environment docs: NCCL_BUFFSIZE 4 MiB per channel and peer, up to 32 channels on NVLink systems, "
        "plus NVLS/proxy buffers; PyTorch users report 0.3-1 GiB of non-PyTorch memory per rank with NCCL",
        "Device memory NCCL communicators take per process when more than one GPU trains.", _C,
    ),
    Assumption(
        "cpu_offload_pinned_buffer_fraction", 0.0, "fraction of offloaded bytes",
        "DeepSpeed ZeRO-Offload keeps fp32 master, gradients and Adam states in pinned host memory "
        "(estimate_zero2/3_model_states_mem_needs multiply host bytes by additional_buffer_factor=1.5); 0 counts "
        "the states exactly, 0.5 reproduces DeepSpeed's estimator",
        "Extra host RAM for pinned staging buffers, as a fraction of the offloaded bytes.", _C,
    ),
)

"""Assumptions of the dataset sizing, the deadline planner and the cluster bill of materials.

Three groups: ``dataset`` (how bytes of text become tokens), ``planner`` (search space,
communication and pipeline model, I/O) and ``cluster`` (CPU cores, host RAM, storage,
network). Every value is a point estimate with its source; the report lists the ones a plan
used (``Assumptions.used``) and a scenario may override any of them.

Bytes per token are for raw UTF-8 text. English is ~1 byte per character; a Chinese (CJK)
character is 3 bytes in UTF-8, so "characters per token" figures for Chinese are multiplied
by 3 here.
"""

from llmsizing.assumptions import Assumption

_KRELL = ("Krell et al. 2021, 'Efficient Sequence Packing without Cross-contamination' (arXiv:2107.02027): "
          "padding to the maximum length wastes up to ~50% of tokens on Wikipedia at 512 tokens; packing "
          "reaches >99% useful tokens")
_ARENA = ("tokenizer-arena README (huggingface.co/spaces/eson/tokenizer-arena and xu-song/tokenizer-arena), "
          "10k cc100 documents per language, column t_bytes/t_tokens")
_LLAMA3 = ("Llama 3 Herd of Models (arXiv:2407.21783) §3.2 tokenizer: 'improves compression rates on a sample of "
           "English data from 3.17 to 3.94 characters per token' vs the Llama 2 tokenizer")
_DEEPSEEK_API = ("DeepSeek API docs, 'Token & Token Usage' (api-docs.deepseek.com/quick_start/token_usage): "
                 "'1 English character ≈ 0.3 token; 1 Chinese character ≈ 0.6 token' (DeepSeek-V3/R1 tokenizer)")

ASSUMPTIONS = (
    # ------------------------------------------------------------------ memory fit
    Assumption(
        "planner_memory_margin_fraction", 0.05, "fraction",
        "policy, not a measurement: headroom above the high end of the estimate's out-of-sample range "
        "(training/ranges.py) for what no published case covers (allocator spikes, other processes on the GPU)",
        "The planner accepts a layout when estimate × range high ratio × (1 + this) fits the GPU's memory.",
        "planner"),
    Assumption(
        "planner_fit_on_range_high", True, "bool",
        "issue 12: under-estimating memory is the worst error, so plans are sized on the high end of the range; "
        "off only where a published layout is timed rather than sized (validation of throughput cases)",
        "Decide 'fits' on the high end of the memory range plus the margin (False: on the estimate itself).",
        "planner"),
    # ------------------------------------------------------------------ dataset: bytes per token
    Assumption(
        "bytes_per_token_en_llama3", 3.94, "bytes/token", _LLAMA3,
        "English text, Llama 3 tokenizer (128K vocab; DeepSeek-R1-Distill-Llama).", "dataset"),
    Assumption(
        "bytes_per_token_zh_llama3", 3.2, "bytes/token", _ARENA + ": llama3 on cc100-zh-Hans 3.2 (1.24 chars/token)",
        "Simplified Chinese text, Llama 3 tokenizer.", "dataset"),
    Assumption(
        "bytes_per_token_en_llama2", 3.17, "bytes/token", _LLAMA3 + " (3.17 for the Llama 2 tokenizer)",
        "English text, 32K SentencePiece vocabularies (Llama 2, Mistral 7B, Mixtral, MPT-style).", "dataset"),
    Assumption(
        "bytes_per_token_zh_llama2", 1.8, "bytes/token", _ARENA + ": llama (32000 vocab) on cc100-zh-Hans 1.8",
        "Simplified Chinese text, 32K SentencePiece vocabularies (byte fallback for most CJK characters).",
        "dataset"),
    Assumption(
        "bytes_per_token_en_qwen2", 4.0, "bytes/token",
        "Qwen technical report (arXiv:2309.16609) §2.2: the Qwen/Qwen2 BPE starts from tiktoken cl100k_base; "
        "OpenAI help 'What are tokens': 1 token ≈ 4 characters of English for cl100k",
        "English text, Qwen2/Qwen2.5 tokenizer (151K vocab; DeepSeek-R1-Distill-Qwen). cl100k-like.", "dataset"),
    Assumption(
        "bytes_per_token_zh_qwen2", 4.5, "bytes/token",
        "secondary sources on the Qwen tokenizer: 1 token ≈ 1.5-1.8 Chinese characters (blog.moontak.com/id/542977); "
        "1.5 chars × 3 bytes. Low confidence: re-measure on the customer's text",
        "Simplified Chinese text, Qwen2/Qwen2.5 tokenizer.", "dataset"),
    Assumption(
        "bytes_per_token_en_deepseek_v3", 3.33, "bytes/token", _DEEPSEEK_API + " (1 / 0.3)",
        "English text, DeepSeek-V3/R1 tokenizer (129K vocab).", "dataset"),
    Assumption(
        "bytes_per_token_zh_deepseek_v3", 5.0, "bytes/token", _DEEPSEEK_API + " (3 bytes / 0.6 tokens)",
        "Simplified Chinese text, DeepSeek-V3/R1 tokenizer.", "dataset"),
    Assumption(
        "bytes_per_token_en_gemma", 3.82, "bytes/token", _ARENA + ": gemma_7b (256000 vocab) on cc100-en 3.82",
        "English text, Gemma 256K SentencePiece vocabulary.", "dataset"),
    Assumption(
        "bytes_per_token_zh_gemma", 3.2, "bytes/token",
        "not measured here; taken equal to the Llama 3 figure (both large multilingual vocabularies)",
        "Simplified Chinese text, Gemma tokenizer (low confidence).", "dataset"),
    Assumption(
        "code_bytes_per_token_vs_english", 0.85, "ratio",
        "rule of thumb: source code carries more whitespace/symbol tokens than prose; 0.85 of the English figure "
        "(low confidence, measure on the customer's repository)",
        "Bytes per token of source code as a fraction of the same tokenizer's English figure.", "dataset"),
    Assumption(
        "mixed_zh_fraction", 0.5, "fraction",
        "the customer's request mixes Chinese and English material; half and half by bytes unless told",
        "Share of Chinese bytes in 'mixed' text (the rest English); tokens per byte average by bytes.", "dataset"),
    Assumption(
        "tokens_per_sample", 2048, "tokens",
        "SFT samples range from ~300 tokens (instruction pairs) to 4-16K (R1-style reasoning traces); 2048 is a "
        "middle value. Pass a token count ('1B tokens') when known",
        "Tokens in one training sample when the data size is given in samples.", "dataset"),
    Assumption(
        "packing_efficiency", 0.98, "fraction", _KRELL,
        "Share of real (non-pad) tokens when samples are packed into full sequences.", "dataset"),
    Assumption(
        "padding_efficiency", 0.5, "fraction", _KRELL,
        "Share of real tokens when each sample is padded to the batch's sequence length instead.", "dataset"),
    Assumption(
        "tokenized_bytes_per_token", 4, "bytes",
        "token ids stored as int32: the vocabularies here (128K-152K) exceed uint16's 65,536",
        "Bytes per token of the pre-tokenized dataset on disk.", "dataset"),
    # ------------------------------------------------------------------ planner: search space
    Assumption(
        "global_batch_tokens", 4194304, "tokens",
        "Llama 3 405B pre-training starts at 4M tokens per step (arXiv:2407.21783 §3.4.1); fine-tuning recipes use "
        "0.1-1M (Tulu 3 SFT: 128 × 4096). The cap bounds data parallelism: dp × micro_batch × seq_len ≤ this",
        "Largest global batch (tokens per optimizer step) the planner spreads over data-parallel replicas.",
        "planner"),
    Assumption(
        "max_micro_batch", 8, "sequences",
        "micro-batches above 8 sequences of 4K tokens rarely fit next to fine-tuning states; search 1, 2, 4, 8",
        "Largest micro-batch the planner tries (powers of two from 1).", "planner"),
    Assumption(
        "max_pipeline_stages", 1, "stages",
        "fine-tuning stacks (DeepSpeed ZeRO, PyTorch FSDP, Unsloth, LLaMA-Factory) do not combine pipeline "
        "parallelism with ZeRO-2/3 (DeepSpeed docs: ZeRO-2/3 are incompatible with pipeline parallelism), so "
        "the default search uses none; Megatron-style runs may raise it to 16 (DeepSeek-V3 trains with PP16, "
        "arXiv:2412.19437 §3.2) or pass --pp",
        "Largest pipeline-parallel degree the planner tries (a pinned --pp is always tried).", "planner"),
    Assumption(
        "max_pipeline_stages_large", 16, "stages",
        "Megatron-LM / NeMo runs combine pipeline parallelism with a ZeRO-1 distributed optimizer; Llama 3 405B "
        "trained with PP16 (arXiv:2407.21783 §3.3.2, Table 4), DeepSeek-V3 with PP16 (arXiv:2412.19437 §3.2)",
        "Largest pipeline-parallel degree tried on a GPU count where no layout without pipeline parallelism "
        "fits or is valid (the large-model regime).", "planner"),
    Assumption(
        "pipeline_virtual_stages_max", 4, "chunks",
        "Megatron-LM's interleaved 1F1B schedule splits each GPU's layers into v model chunks and divides the "
        "bubble by v (Narayanan et al. 2021, arXiv:2104.04473 §2.2.2); Llama 3 405B used an interleaved "
        "schedule (arXiv:2407.21783 §3.3.2); v = 2-4 is common in NeMo performance recipes",
        "Most virtual pipeline stages (model chunks per GPU) the step-time model assumes with pipeline "
        "parallelism (at least one layer per chunk).", "planner"),
    Assumption(
        "planner_expert_parallel", "8,64", "GPUs",
        "EP8 stays inside one 8-GPU NVLink node; DeepSeek-V3 pre-training used EP64 across 8 nodes "
        "(arXiv:2412.19437 §3.2)",
        "Expert-parallel degrees the planner tries for MoE models besides none (comma-separated); --ep pins "
        "another.", "planner"),
    Assumption(
        "planner_search_tolerance", 0.02, "fraction",
        "search setting, not a physical quantity: layouts within 2% of the fastest are equivalent at the "
        "precision of these estimates; the deadline test itself is exact",
        "The layout search stops when no remaining layout can be faster by more than this fraction.",
        "planner"),
    Assumption(
        "max_gpus", 16384, "GPUs",
        "Llama 3 405B trained on up to 16,384 H100s (arXiv:2407.21783 §3.3); beyond that, fine-tuning is not the "
        "bottleneck anyone plans for",
        "Largest GPU count the planner considers.", "planner"),
    # ------------------------------------------------------------------ planner: communication
    Assumption(
        "nccl_intra_node_efficiency", 0.8, "fraction",
        "nccl-tests all_reduce_perf on 8×H100 NVSwitch reports bus bandwidth ~360-370 GB/s of 450 GB/s per "
        "direction (NVIDIA nccl-tests PERFORMANCE.md defines busbw; ml-engineering network/README.md)",
        "Achieved NCCL bus bandwidth as a fraction of the GPU's intra-node link bandwidth.", "planner"),
    Assumption(
        "nccl_inter_node_efficiency", 0.8, "fraction",
        "multi-node all-reduce bus bandwidth reaches ~80-90% of the NIC line rate on InfiniBand/EFA "
        "(ml-engineering network/README.md, nccl-tests); 0.8 also covers TCP-based fabrics only roughly",
        "Achieved NCCL bus bandwidth as a fraction of each GPU's share of the node's network bandwidth.", "planner"),
    Assumption(
        "dp_comm_overlap", 0.8, "fraction",
        "PyTorch DDP/FSDP bucket gradients and reduce them during the backward pass (Li et al. 2020, "
        "arXiv:2006.15704); the last buckets stay exposed",
        "Share of one micro-step's backward time that can hide data-parallel gradient communication.", "planner"),
    Assumption(
        "zero3_comm_overlap", 0.7, "fraction",
        "ZeRO-3/FSDP prefetch the next layer's parameters while computing the current one (Rajbhandari et al. "
        "2020, arXiv:1910.02054; FSDP paper arXiv:2304.11277)",
        "Share of compute time that can hide ZeRO-3 parameter all-gathers and gradient reduce-scatters.",
        "planner"),
    Assumption(
        "tp_comm_overlap", 0.0, "fraction",
        "Megatron tensor-parallel all-reduces sit on the critical path unless TP-comm overlap is enabled "
        "(Narayanan et al. 2021, arXiv:2104.04473 §3.3)",
        "Share of tensor-parallel communication hidden behind compute.", "planner"),
    Assumption(
        "ep_comm_overlap", 0.5, "fraction",
        "DeepSeek-V3's DualPipe hides nearly all expert all-to-all (arXiv:2412.19437 §3.2.1); generic "
        "frameworks hide far less; 0.5 sits between",
        "Share of expert-parallel all-to-all time hidden behind compute.", "planner"),
    Assumption(
        "pcie_host_device_bytes_per_s", 25e9, "bytes/s",
        "PCIe 4.0 x16 is 31.5 GB/s per direction; ~80% achieved in pinned-memory copies",
        "Host-to-GPU copy bandwidth per GPU (offloaded optimizer states and parameters).", "planner"),
    Assumption(
        "cpu_adam_params_per_s_per_core", 5e7, "params/s",
        "DeepSpeed PR #735: CPU-Adam steps an 11.6B-parameter model in 8.2 s (~1.4e9 params/s on a multi-core "
        "host); divided by ~28 cores",
        "Parameters one CPU core updates per second with DeepSpeed CPU-Adam (offloaded optimizer).", "planner"),
    # ------------------------------------------------------------------ planner: I/O
    Assumption(
        "storage_read_bytes_per_s_per_node", 2e9, "bytes/s",
        "local NVMe RAID or a parallel file system delivers 2-10 GB/s per node; 2 GB/s is conservative",
        "Rate at which one node reads the base model at start-up.", "planner"),
    Assumption(
        "storage_write_bytes_per_s_per_node", 1e9, "bytes/s",
        "sharded checkpoint writes (torch.distributed.checkpoint) to NVMe or network storage: ~1-5 GB/s per node",
        "Rate at which one node writes its checkpoint shards.", "planner"),
    Assumption(
        "checkpoint_interval_hours", 4.0, "h",
        "Llama 3 405B saw an unexpected interruption about every 3 hours at 16K GPUs (arXiv:2407.21783 §3.3.4); "
        "fine-tuning jobs commonly save every few hours and at the end",
        "A run saves a checkpoint at the end and once per this many hours of training before it.", "planner"),
    Assumption(
        "checkpoints_kept", 3, "checkpoints",
        "Hugging Face Trainer 'save_total_limit' is commonly 2-3",
        "Checkpoints kept on disk at once (storage sizing).", "cluster"),
    # ------------------------------------------------------------------ cluster: CPU, RAM, storage, network
    Assumption(
        "cpu_cores_per_gpu", 4, "vCPUs",
        "one training process plus 2-3 DataLoader workers per GPU (PyTorch DataLoader docs); cloud 8-GPU "
        "instances offer 12-26 vCPUs per GPU",
        "vCPUs each GPU's training process and its data loading need.", "cluster"),
    Assumption(
        "cpu_cores_base_per_node", 4, "vCPUs",
        "operating system, NCCL proxy threads, logging and monitoring agents",
        "vCPUs a node needs besides the training processes.", "cluster"),
    Assumption(
        "tokenization_bytes_per_s_per_core", 1e6, "bytes/s",
        "Hugging Face tokenizers docs: 'less than 20 seconds to tokenize a GB of text on a server's CPU' (~50 MB/s "
        "on a many-core server, i.e. 1-2 MB/s per core)",
        "Raw text one vCPU tokenizes per second with a Rust BPE tokenizer.", "cluster"),
    Assumption(
        "tokenization_time_fraction", 0.1, "fraction",
        "tokenization runs before training on the same nodes; give it a tenth of the deadline",
        "Share of the deadline allowed for tokenizing the raw dataset.", "cluster"),
    Assumption(
        "host_ram_base_per_node_bytes", 68719476736, "bytes",
        "64 GiB for the operating system, page cache floor, container runtime and monitoring",
        "Host RAM a node needs besides the training processes.", "cluster"),
    Assumption(
        "host_ram_per_gpu_bytes", 17179869184, "bytes",
        "16 GiB per training process: PyTorch host-side state, DataLoader workers with prefetched batches, "
        "pinned staging buffers",
        "Host RAM per GPU process, before offloaded states and checkpoint staging.", "cluster"),
    Assumption(
        "host_ram_per_gpu_memory", 1.0, "ratio",
        "rule of thumb: at least as much host RAM as GPU memory, to stage checkpoints and state dicts "
        "(NVIDIA DGX H100: 2 TB host RAM for 640 GB of GPU memory, 3.2×)",
        "Floor on host RAM per node as a multiple of the node's GPU memory.", "cluster"),
    Assumption(
        "instance_ram_usable_fraction", 0.9, "fraction",
        "the kernel, drivers and hypervisor keep ~5-10% of an instance's RAM",
        "Share of an instance's RAM available to training (offloaded states must fit in it).", "cluster"),
    Assumption(
        "storage_headroom_fraction", 0.2, "fraction",
        "logs, temporary files, evaluation outputs, and a file system kept below ~80% full",
        "Extra storage over the computed need.", "cluster"),
    Assumption(
        "rdma_required_above_gbps", 100.0, "Gbps",
        "NCCL over TCP sockets saturates well below 100 Gbps per node; beyond it InfiniBand/RoCE/EFA (GPUDirect "
        "RDMA) is needed (NCCL docs, NCCL_NET / NCCL_IB_*)",
        "Inter-node bandwidth per node above which the plan calls for RDMA.", "cluster"),
    Assumption(
        "default_node_network_gbps", 100.0, "Gbps",
        "a PCIe-card server without a catalog instance is assumed to have one 100 GbE port",
        "Network bandwidth per node of PCIe GPUs when no cloud instance of the GPU type is in the catalog.",
        "cluster"),
    Assumption(
        "default_network_gbps_per_gpu_server", 400.0, "Gbps",
        "NVIDIA DGX H100/B200 reference designs pair each GPU with a 400 Gb/s ConnectX-7 InfiniBand NIC "
        "(AWS p5 and Azure ND H100 v5 also give 400 Gbps per GPU)",
        "Network bandwidth per GPU of SXM/OAM server nodes without a catalog instance (RDMA).", "cluster"),
)

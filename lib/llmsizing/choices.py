"""Every vocabulary the library, the scenarios and the command line accept, in one place.

A choice list is defined here once; estimators validate against it, the CLI builds its ``choices=``
from it and the scenario validator checks keys against it, so a value one face accepts every face
accepts. Adding a method, optimizer, engine or precision starts here.
"""

from __future__ import annotations

from llmsizing.errors import ScenarioError

# ---------------------------------------------------------------- fine-tuning
METHODS = ("full", "lora", "qlora")
TRAIN_PRECISIONS = ("mixed-bf16", "bf16", "fp32")
OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit", "paged-adamw", "sgd", "sgd-momentum")
ATTENTION_KERNELS = ("flash", "sdpa", "eager")
OFFLOADS = ("none", "optimizer", "optimizer+params")
ZERO_STAGES = (0, 1, 2, 3)
ZERO_BACKENDS = ("fsdp", "deepspeed")
QLORA_QUANTS = ("nf4", "nf4-dq")
BASE_WEIGHTS = ("auto", "bf16", "fp32")
# training stacks with their own memory behaviour (training/frameworks.py); hf-peft is the CLI/scenario default
FRAMEWORKS = ("hf-peft", "trl", "llama-factory", "ms-swift", "axolotl", "unsloth", "torchtune", "litgpt",
              "deepspeed", "fsdp", "megatron", "plain-pytorch")
DEFAULT_FRAMEWORK = "hf-peft"
OPTIMIZER_IMPLS = ("auto", "fused", "foreach", "forloop")
ADAPTER_DTYPES = ("auto", "working", "fp32")
LOSS_IMPLS = ("auto", "eager", "chunked", "fused-linear")
#: what a fine-tuning plan minimises: cost (the cheapest plan that meets the deadline), time (the fastest),
#: gpus (the fewest GPUs that meet the deadline)
OPTIMIZE = ("cost", "time", "gpus")

# ---------------------------------------------------------------- hardware catalogs
#: how an instance's price is bought (catalog key ``price_kind``); plans use on-demand unless asked
PRICE_KINDS = ("on-demand", "committed-1y", "committed-3y", "spot", "capacity-block")
CURRENCIES = ("USD", "CNY")
CONFIDENCE_LEVELS = ("high", "medium", "low")
RDMA_KINDS = ("none", "efa", "infiniband", "roce", "gpudirect-tcpx", "gpudirect-tcpxo")

# ---------------------------------------------------------------- serving
ENGINES = ("vllm", "sglang", "tensorrt-llm", "transformers", "llama.cpp")
SPECULATIVE = ("none", "mtp", "eagle")
KV_PRECISIONS = ("auto", "bf16", "fp16", "fp8", "q8_0", "q4_0")
MLA_MODES = ("latent", "decompressed")

# ---------------------------------------------------------------- data
LANGUAGES = ("en", "zh", "code", "mixed")
#: Languages a report can be written in (gettext catalogs under report/locale/).
REPORT_LANGUAGES = ("en", "zh")
TOKENIZER_FAMILIES = ("llama3", "llama2", "qwen2", "deepseek_v3", "gemma")

# ---------------------------------------------------------------- the first customer's request
# The DeepSeek-R1 family (the original model and its six distills), in the order the request lists them,
# and the data sizes of its hand-made fine-tuning table.
DEEPSEEK_R1_FAMILY = (
    "deepseek-r1",
    "deepseek-r1-distill-qwen-1.5b",
    "deepseek-r1-distill-qwen-7b",
    "deepseek-r1-distill-qwen-14b",
    "deepseek-r1-distill-qwen-32b",
    "deepseek-r1-distill-llama-8b",
    "deepseek-r1-distill-llama-70b",
)
CUSTOMER_DATA_SIZES = ("1K", "1M", "1GB", "10GB", "100GB", "1TB")


def one_of(value: object, choices: tuple, what: str) -> None:
    """Raise ``ScenarioError`` naming ``value`` and the valid ``choices`` unless ``value`` is one of them."""
    if value not in choices:
        raise ScenarioError(f"{what} {value!r} is not one of: {', '.join(str(c) for c in choices)}")

"""Other methods as ``llmsizing validate`` scores them: where each applies, and its estimate for a case.

The methods' formulas are the other tools' own, reimplemented as published (sources in the
docstrings of the two modules holding them): ``others_estimators`` (accelerate, DeepSpeed ZeRO,
the 1.2x rule, LLaMA-Factory) and ``others_calculators`` (llm-analysis, Vidur, gpu_poor). This
module only maps a validation case onto each tool's inputs. Where a method does not model a case
(LoRA in a full-fine-tuning formula, KV capacity in a weights formula, an architecture it cannot
describe), its adapter returns None and the case is not scored for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from llmsizing import architecture as A
from llmsizing.specs import GpuSpec, ModelSpec
from llmsizing.validation.others_calculators import (
    GpuPoorConfig,
    LlmAnalysisModel,
    gpu_poor_ggml_bytes,
    gpu_poor_inference_bytes,
    gpu_poor_training_bytes,
    llm_analysis_kv_bytes_per_token,
    llm_analysis_kv_capacity_tokens,
    llm_analysis_training_peak_bytes,
    llm_analysis_train_tokens_per_s_per_gpu,
    llm_analysis_weight_bytes_per_gpu,
    vidur_kv_capacity_tokens,
    vidur_param_bytes_per_device,
)
from llmsizing.validation.others_estimators import (
    accelerate_model_elements,
    accelerate_total_bytes,
    accelerate_training_bytes,
    deepspeed_largest_layer_params,
    deepspeed_zero2_gpu_bytes,
    deepspeed_zero3_gpu_bytes,
    llamafactory_bytes,
    rule_inference_bytes,
)
from llmsizing.weights import weight_bytes

# ============================================================================ adapters: where each applies


@dataclass(frozen=True)
class Inputs:
    """What an adapter sees of a case: the case, its model and GPU, and the setup fields."""

    case: Any                 # validation.cases.Case
    spec: ModelSpec
    gpu: GpuSpec | None

    @property
    def s(self) -> Mapping[str, Any]:
        return self.case.setup

    @property
    def q(self) -> str:
        return self.case.quantity

    def get(self, key: str, default: Any = None) -> Any:
        return self.case.setup.get(key, default)


_MEMORY_Q = ("allocated", "reserved", "device")
_FILE_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "float16", "q8_0": "int8", "int8": "int8",
               "q4_k_m": "int4", "int4": "int4"}
_WEIGHT_BITS = {"fp32": None, "fp16": 16, "bf16": 16, "q8_0": 8, "int8": 8, "fp8": 8, "fp8-block128": 8,
                "q4_k_m": 4, "int4": 4}


def _accelerate(x: Inputs) -> float | None:
    fp32 = accelerate_model_elements(x.spec) * 4.0
    if x.case.estimator == "finetune" and x.get("method") == "full" and x.case.gpus == 1:
        dtype = "float32" if x.get("precision") == "fp32" else "float16"
        return accelerate_training_bytes(fp32, dtype)
    if x.case.estimator == "weights" and x.q in ("file_bytes", "weight_bytes") and not x.get("tp", 1) > 1:
        dtype = _FILE_DTYPE.get(x.get("precision"))
        return accelerate_total_bytes(fp32, dtype) if dtype else None
    return None


def _deepspeed(x: Inputs) -> float | None:
    if x.case.estimator != "finetune" or x.get("method") != "full" or x.q not in _MEMORY_Q:
        return None
    zero, offload, n = int(x.get("zero", 0)), x.get("offload", "none"), x.case.gpus
    p = A.params_transformers(x.spec)
    if zero == 2:
        return deepspeed_zero2_gpu_bytes(p, n, offload != "none")
    if zero == 3:
        return deepspeed_zero3_gpu_bytes(p, deepspeed_largest_layer_params(x.spec), n, offload != "none",
                                         offload == "optimizer+params")
    return None


def _rule(x: Inputs) -> float | bool | None:
    if x.case.estimator != "serve":
        return None
    if x.q == "fits":
        need = rule_inference_bytes(weight_bytes(x.spec, x.get("precision", "bf16"), include_mtp=True))
        return need <= x.case.gpus * x.gpu.memory_bytes
    if x.q in _MEMORY_Q:
        return rule_inference_bytes(weight_bytes(x.spec, x.get("precision", "bf16"))) / x.case.gpus
    return None


def _llm_analysis_optimizer(setup: Mapping[str, Any]) -> tuple[float, float, float]:
    """(weight bits, master bytes, other optimizer bytes) a user would enter for the setup."""
    precision, opt = setup.get("precision", "mixed-bf16"), setup.get("optimizer", "adamw")
    if precision == "fp32":
        return 32, 4, {"adamw": 8, "sgd": 0, "sgd-momentum": 4}.get(opt, 2)
    if precision == "bf16":
        return 16, 2, {"adamw": 4, "sgd": 0, "sgd-momentum": 2}.get(opt, 2)
    return 16, 4, {"adamw": 8, "sgd": 0, "sgd-momentum": 4}.get(opt, 2)


def _llm_analysis(x: Inputs) -> float | None:
    m = LlmAnalysisModel.from_spec(x.spec)
    if m is None:
        return None
    est, s = x.case.estimator, x.s
    tp, pp = int(s.get("tp", 1)), int(s.get("pp", 1))
    if est == "params":
        return None if s.get("include_mtp") else m.total_params()
    if est == "weights":
        bits = _WEIGHT_BITS.get(s.get("precision"))
        if bits is None:
            return None
        return llm_analysis_weight_bytes_per_gpu(m, bits, 16, tp)
    if est == "serve" and x.q in _MEMORY_Q:
        bits = _WEIGHT_BITS.get(s.get("precision"))
        if bits is None:
            return None
        kv_bytes = 1.0 if str(s.get("kv_precision", "")).startswith("fp8") else 2.0
        tokens = int(s.get("users", 1)) * int(s.get("context", 0))
        return (llm_analysis_weight_bytes_per_gpu(m, bits, 16, tp)
                + tokens * llm_analysis_kv_bytes_per_token(m, kv_bytes, tp))
    if est == "serve" and x.q in ("kv_tokens", "kv_blocks"):
        bits = _WEIGHT_BITS.get(s.get("precision"))
        if bits is None:
            return None
        kv_bytes = 1.0 if str(s.get("kv_precision", "")).startswith("fp8") else 2.0
        tokens = llm_analysis_kv_capacity_tokens(m, x.gpu.memory_label_gb, bits, kv_bytes, tp)
        return tokens / s.get("block_size", 16) if x.q == "kv_blocks" else tokens
    if s.get("method") != "full" or s.get("offload", "none") != "none":
        return None
    full_recompute = bool(s.get("gradient_checkpointing", True))
    if est == "finetune" and x.q in _MEMORY_Q:
        wbits, master, other = _llm_analysis_optimizer(s)
        dp = max(1, x.case.gpus // (tp * pp))
        return llm_analysis_training_peak_bytes(
            m, batch=int(s.get("micro_batch", 1)), seq=int(s["seq_len"]), full_recompute=full_recompute,
            zero=int(s.get("zero", 0)), dp=dp, tp=tp, weight_bits=wbits, master_bytes=master, other_op_bytes=other)
    if est in ("throughput", "time"):
        # llm-analysis takes the GPU's fp16 tensor peak (its gpu_configs' peak_fp16_TFLOPS)
        return llm_analysis_train_tokens_per_s_per_gpu(
            m, batch=int(s.get("micro_batch", 1)), seq=int(s["seq_len"]), full_recompute=full_recompute,
            peak_flop_per_s=x.gpu.tensor_flop_per_s("fp16"), tp=tp, pp=pp)
    return None


def _vidur(x: Inputs) -> float | None:
    spec, s = x.spec, x.s
    if spec.is_moe or spec.is_mla or spec.family == "mpt":
        return None
    if str(s.get("precision", "bf16")) not in ("bf16", "fp16") or str(s.get("kv_precision", "bf16")) not in ("bf16", "fp16"):
        return None  # fp16 only
    tp, pp = int(s.get("tp", 1)), int(s.get("pp", 1))
    if x.case.estimator == "weights" and x.q == "weight_bytes_per_rank":
        return vidur_param_bytes_per_device(spec, tp, pp)
    if x.case.estimator == "serve" and x.q in ("kv_tokens", "kv_blocks"):
        tokens = vidur_kv_capacity_tokens(spec, x.gpu.memory_label_gb, tp, pp)
        return tokens / s.get("block_size", 16) if x.q == "kv_blocks" else tokens
    return None


def _gpu_poor(x: Inputs) -> float | None:
    c = GpuPoorConfig.from_spec(x.spec)
    if c is None:
        return None
    s = x.s
    if x.case.estimator == "params" and not s.get("include_mtp"):
        return c.params()
    if x.case.estimator == "weights" and x.q == "file_bytes":
        if s.get("precision") in ("fp16", "bf16"):
            return c.params() * 2.0  # HF / vLLM inference, no quantization
        return gpu_poor_ggml_bytes(c, s.get("precision"))
    if x.case.estimator == "serve" and x.q in _MEMORY_Q and x.case.gpus == 1 and s.get("engine") == "transformers":
        if s.get("precision", "bf16") not in ("bf16", "fp16"):
            return None
        return gpu_poor_inference_bytes(c, int(s.get("context", 0)))
    if x.case.estimator == "finetune" and x.case.gpus == 1 and x.q in _MEMORY_Q:
        opt = "sgd" if str(s.get("optimizer", "adamw")).startswith("sgd") else "adam"
        return gpu_poor_training_bytes(c, method=s.get("method", "lora"), optimizer=opt, context=int(s["seq_len"]),
                                       batch=int(s.get("micro_batch", 1)),
                                       gradient_checkpointing=bool(s.get("gradient_checkpointing", True)))
    return None


def _llamafactory(x: Inputs) -> float | None:
    s = x.s
    if x.case.estimator != "finetune" or x.case.gpus != 1 or x.q not in _MEMORY_Q:
        return None
    method = s.get("method")
    if method == "full":
        rule = "full-pure" if s.get("precision") == "bf16" else "full-amp"
    elif method == "lora":
        rule = "lora"
    else:
        rule = "qlora-4bit"
    return llamafactory_bytes(A.params_total(x.spec), rule)


@dataclass(frozen=True)
class Method:
    """One other method: its name in tables, where it comes from, and what it covers."""

    name: str
    label: str
    source: str
    applies_to: str
    adapter: Callable[[Inputs], Any]


METHODS: tuple[Method, ...] = (
    Method("accelerate", "accelerate estimate-memory",
           "huggingface/accelerate src/accelerate/commands/estimate.py",
           "single-GPU full fine-tuning memory ('Training using Adam'); weight/file sizes at float32/float16/int8/int4",
           _accelerate),
    Method("deepspeed", "DeepSpeed ZeRO estimators",
           "deepspeedai/DeepSpeed runtime/zero/stage_1_and_2.py, stage3.py estimate_zero{2,3}_model_states_mem_needs",
           "full fine-tuning memory with ZeRO-2 or ZeRO-3 / FSDP (model states only), with and without offload",
           _deepspeed),
    Method("rule-1.2x", "1.2 x weights",
           "EleutherAI Transformer Math 101; accelerate model-memory-usage Space",
           "inference memory per GPU and serving feasibility", _rule),
    Method("llm-analysis", "llm-analysis", "cli99/llm-analysis llm_analysis/analysis.py",
           "parameter counts, weights per GPU, KV capacity, inference memory, full fine-tuning memory without "
           "offload, training throughput (dense and top-k MoE without MLA or shared experts)", _llm_analysis),
    Method("vidur", "Vidur memory planner",
           "microsoft/vidur scheduler/utils/memory_planner.py, utils/param_counter.py",
           "KV capacity and weights per device of dense fp16/bf16 models", _vidur),
    Method("gpu_poor", "gpu_poor", "RahulSChand/gpu_poor src/App.js",
           "parameter counts, GGML/F16 file sizes, single-GPU fine-tuning and HF inference memory (dense models)",
           _gpu_poor),
    Method("llamafactory", "LLaMA-Factory rule", "hiyouga/LLaMA-Factory README 'Hardware Requirement'",
           "single-GPU fine-tuning memory (full AMP / pure bf16, LoRA, QLoRA 4-bit)", _llamafactory),
)
METHOD_NAMES = tuple(m.name for m in METHODS)


def estimate(method: str | Method, case: Any, spec: ModelSpec, gpu: GpuSpec | None) -> Any:
    """The method's estimate for a case in the case's base unit (bool for ``fits``), or None where it does not apply.

    Throughput adapters return tokens/s per GPU; ``run.py`` converts to the case's quantity like ours.
    """
    m = method if isinstance(method, Method) else {x.name: x for x in METHODS}[method]
    return m.adapter(Inputs(case, spec, gpu))

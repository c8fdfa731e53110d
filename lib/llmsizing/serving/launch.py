"""The command that starts a serving deployment, built from a ``serve`` answer.

Flags come only from each engine's documented list (``engine_flags.yaml``, with its source); a test
checks every printed flag against that list. transformers has no server command (None).
"""

from __future__ import annotations

import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from llmsizing.catalog import read_yaml_file

FLAGS_FILE = Path(__file__).with_name("engine_flags.yaml")

# KV-cache dtype names each engine takes (our name -> the engine's)
_KV_NAMES = {"vllm": {"fp8": "fp8"}, "sglang": {"fp8": "fp8_e4m3"}, "llama.cpp": {"q8_0": "q8_0", "q4_0": "q4_0",
                                                                                "bf16": "bf16"}}


@lru_cache(maxsize=1)
def engine_flags() -> dict[str, dict[str, Any]]:
    """Documented flags per engine: {engine: {program, source, flags}}."""
    return read_yaml_file(FLAGS_FILE)


def _gguf_name(d: Mapping[str, Any]) -> str:
    return f"{d['model']}-{d['precision'].upper()}.gguf"


def launch_argv(d: Mapping[str, Any], hf_id: str | None = None) -> list[str] | None:
    """argv that starts the deployment ``d`` (a ``serve --json`` dict), or None for transformers."""
    engine = d["engine"]
    model = hf_id or d["model"]
    tp, pp, ep = d["tensor_parallel"], d.get("pipeline_parallel", 1), d.get("expert_parallel", 1)
    ctx = d.get("max_model_len") or d["context_tokens"]
    kv = d.get("kv_precision")
    frac = d.get("memory_fraction")
    spec = d.get("speculative")
    adp = d.get("attention_dp", False)
    if engine == "vllm":
        if adp:  # DP attention: one engine per GPU, experts across them
            argv = ["vllm", "serve", model, "--tensor-parallel-size", "1", "--data-parallel-size", str(tp)]
        else:
            argv = ["vllm", "serve", model, "--tensor-parallel-size", str(tp)]
        if pp > 1:
            argv += ["--pipeline-parallel-size", str(pp)]
        if ep > 1:
            argv += ["--enable-expert-parallel"]
        argv += ["--max-model-len", str(ctx), "--gpu-memory-utilization", f"{frac:g}"]
        if kv in _KV_NAMES["vllm"]:
            argv += ["--kv-cache-dtype", _KV_NAMES["vllm"][kv]]
        if spec in ("mtp", "eagle"):
            argv += ["--speculative-config",
                     '{"method": "%s", "num_speculative_tokens": %d}' % (
                         "deepseek_mtp" if spec == "mtp" else "eagle", d.get("speculative_tokens", 1))]
        return argv
    if engine == "sglang":
        argv = ["python", "-m", "sglang.launch_server", "--model-path", model, "--tp-size", str(tp * pp)]
        if adp:
            argv += ["--enable-dp-attention", "--dp-size", str(tp)]
        if ep > 1:
            argv += ["--ep-size", str(ep)]
        if d.get("disaggregated"):
            argv += ["--disaggregation-mode", "decode"]
        argv += ["--context-length", str(ctx), "--mem-fraction-static", f"{frac:g}"]
        if kv in _KV_NAMES["sglang"]:
            argv += ["--kv-cache-dtype", _KV_NAMES["sglang"][kv]]
        if spec in ("mtp", "eagle"):
            argv += ["--speculative-algorithm", "EAGLE", "--speculative-num-steps",
                     str(d.get("speculative_tokens", 1))]
        return argv
    if engine == "tensorrt-llm":
        argv = ["trtllm-serve", model, "--backend", "pytorch", "--tp_size", str(tp), "--pp_size", str(pp)]
        if ep > 1:
            argv += ["--ep_size", str(ep)]
        argv += ["--max_seq_len", str(ctx), "--kv_cache_free_gpu_memory_fraction", f"{frac:g}"]
        if adp or spec in ("mtp", "eagle"):
            # attention DP and MTP are LLM-API options, passed in a YAML file (trtllm-serve docs)
            argv += ["--extra_llm_api_options", "extra_llm_api_options.yaml"]
        return argv
    if engine == "llama.cpp":
        users = max(1, d.get("users", 1))
        argv = ["llama-server", "-m", _gguf_name(d), "-c", str(users * d["context_tokens"]), "-np", str(users),
                "-ngl", "999"]
        if kv in _KV_NAMES["llama.cpp"]:
            argv += ["--cache-type-k", _KV_NAMES["llama.cpp"][kv], "--cache-type-v", _KV_NAMES["llama.cpp"][kv]]
        return argv
    return None


def launch_command(d: Mapping[str, Any], hf_id: str | None = None) -> str | None:
    """The shell command (quoted) that starts the deployment, or None where the engine has no server."""
    argv = launch_argv(d, hf_id)
    return None if argv is None else shlex.join(argv)


def undocumented_flags(argv: list[str], engine: str) -> list[str]:
    """Flags in ``argv`` that the engine's documented list does not contain (empty when all are known)."""
    info = engine_flags()[engine]
    known = set(info["flags"])
    args = argv[len(info["program"].split()):]
    return [x for x in args if x.startswith("-") and x not in known]

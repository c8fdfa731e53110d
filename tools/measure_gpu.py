#!/usr/bin/env python3
"""Measure training and generation steps on a CUDA GPU and write them as validation cases.

Builds a model from a Hugging Face config with random weights (transformers; PEFT for LoRA; no
download), runs a few training steps or a generation, and records what the estimator predicts:

- peak allocated and reserved memory (``torch.cuda.max_memory_allocated`` / ``max_memory_reserved``);
- device-level used memory after the timed steps (``torch.cuda.mem_get_info``: total − free, which
  holds the CUDA context and everything the caching allocator kept);
- tokens/s (trained tokens per second, or generated tokens per second for a generation);

with the exact configuration (model config, dtype, batch, sequence length, method, LoRA rank and
targets, checkpointing, optimizer, torch/transformers/peft versions, GPU name). Each run writes one
YAML file under ``lib/llmsizing/validation/measured/`` holding its cases in the validation-set
format (``cases.yaml`` header): ``llmsizing validate`` then scores them with the published cases.

Examples::

    python tools/measure_gpu.py train --model llama-3.1-8b --layers 4 --method lora --seq-len 2048 --micro-batch 2
    python tools/measure_gpu.py train --config path/to/config.json --method full --precision bf16 --no-checkpointing
    python tools/measure_gpu.py generate --model qwen3-8b --layers 8 --batch 4 --prompt 1024 --new-tokens 128

``--layers N`` keeps the architecture but only N decoder layers (random weights, same per-layer
shapes), so large models fit one GPU; the case records the reduced config. Importable without
CUDA; without a GPU the command prints why and exits with status 2.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "lib") not in sys.path:
    sys.path.insert(0, str(ROOT / "lib"))

OUT_DIR = ROOT / "lib" / "llmsizing" / "validation" / "measured"
NO_GPU = ("measure_gpu: no CUDA GPU is available (torch.cuda.is_available() is False); nothing was measured. "
          "Run this on a machine with an NVIDIA GPU and a CUDA build of torch.")
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
LAYER_KEYS = ("num_hidden_layers", "n_layers", "n_layer")


# ----------------------------------------------------------------------------- configuration


def load_config(model: str | None, config: str | None, layers: int | None) -> tuple[dict[str, Any], str]:
    """The Hugging Face config dict to build (catalog model or config.json), optionally with fewer layers."""
    if config:
        cfg = json.loads(Path(config).read_text(encoding="utf-8"))
        name = str(cfg.get("_name_or_path") or Path(config).stem)
    elif model:
        from llmsizing.catalog import model_entries, read_yaml_file, load_model

        spec = load_model(model)
        cfg = dict(read_yaml_file(model_entries()[spec.slug].path)["config"])
        name = spec.slug
    else:
        raise SystemExit("measure_gpu: give --model (catalog slug) or --config (config.json)")
    cfg = copy.deepcopy(cfg)
    cfg.pop("quantization_config", None)
    if layers:
        key = next((k for k in LAYER_KEYS if k in cfg), None)
        if key is None:
            raise SystemExit("measure_gpu: --layers: the config has no layer-count field")
        cfg[key] = int(layers)
        for k in ("layer_types",):
            if isinstance(cfg.get(k), list):
                cfg[k] = cfg[k][:layers]
        if "first_k_dense_replace" in cfg:
            cfg["first_k_dense_replace"] = min(cfg["first_k_dense_replace"], max(0, layers - 1))
        if "max_window_layers" in cfg:
            cfg["max_window_layers"] = min(cfg["max_window_layers"], layers)
        name = f"{name}-{layers}layers"
    return cfg, name


def gpu_slug(device_name: str) -> str | None:
    """The GPU catalog slug for a CUDA device name ('NVIDIA H100 80GB HBM3' -> h100-80gb), or None."""
    from llmsizing.catalog import list_gpus

    norm = re.sub(r"[^a-z0-9]+", " ", device_name.lower()).strip()
    best, score = None, 0
    for g in list_gpus():
        for cand in (g.name, g.slug, *g.aliases):
            c = re.sub(r"[^a-z0-9]+", " ", cand.lower()).strip()
            words = [w for w in c.split() if w != "nvidia"]
            if words and all(w in norm.split() for w in words) and len(words) > score:
                best, score = g.slug, len(words)
    return best


def environment() -> dict[str, Any]:
    import torch

    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpu_name": torch.cuda.get_device_name(0),
           "gpu_total_bytes": torch.cuda.mem_get_info()[1]}
    for mod in ("transformers", "peft", "bitsandbytes"):
        try:
            env[mod] = __import__(mod).__version__
        except ImportError:
            env[mod] = None
    return env


def build_model(cfg: dict[str, Any], precision: str, attention: str):
    import torch
    import transformers

    c = {k: v for k, v in cfg.items() if not k.startswith("_") and k not in ("architectures", "torch_dtype", "dtype")}
    model_type = c.pop("model_type")
    hf = transformers.AutoConfig.for_model(model_type, **c)
    dtype = getattr(torch, DTYPES["bf16" if precision == "mixed-bf16" else precision])
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(hf, torch_dtype=dtype, attn_implementation=attention)
    return model.cuda()


def _lora_targets(model, targets: str):
    names = {n.split(".")[-1] for n, m in model.named_modules() if m.__class__.__name__ == "Linear"}
    names.discard("lm_head")
    if targets == "all-linear":
        return "all-linear"
    if targets == "attention":
        return sorted(n for n in names if n in ("q_proj", "k_proj", "v_proj", "o_proj", "Wqkv", "out_proj"))
    if targets == "q,v":
        return ["q_proj", "v_proj"]
    return [t.strip() for t in targets.split(",") if t.strip()]


def _optimizer(params, name: str):
    import torch

    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-5, fused=True)
    if name in ("adamw-8bit", "paged-adamw-8bit", "paged-adamw"):
        import bitsandbytes as bnb

        cls = {"adamw-8bit": bnb.optim.AdamW8bit, "paged-adamw-8bit": bnb.optim.PagedAdamW8bit,
               "paged-adamw": bnb.optim.PagedAdamW}[name]
        return cls(params, lr=1e-5)
    if name in ("sgd", "sgd-momentum"):
        return torch.optim.SGD(params, lr=1e-5, momentum=0.9 if name == "sgd-momentum" else 0.0)
    raise SystemExit(f"measure_gpu: optimizer {name!r} is not supported here")


def _memory(torch) -> dict[str, int]:
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    return {"allocated": torch.cuda.max_memory_allocated(), "reserved": torch.cuda.max_memory_reserved(),
            "device": total - free}


# ----------------------------------------------------------------------------- measurements


def measure_training(cfg: dict[str, Any], setup: dict[str, Any], steps: int, warmup: int) -> dict[str, Any]:
    """Peak memory and tokens/s of ``steps`` training steps after ``warmup`` steps (one GPU)."""
    import torch

    precision = setup["precision"]
    attention = {"flash": "sdpa", "sdpa": "sdpa", "eager": "eager"}[setup["attention_kernel"]]
    model = build_model(cfg, precision, attention)
    if setup["method"] == "lora":
        import peft

        model = peft.get_peft_model(model, peft.LoraConfig(
            r=setup["lora_rank"], lora_alpha=setup["lora_alpha"], lora_dropout=setup.get("lora_dropout", 0.0),
            target_modules=_lora_targets(model, setup["lora_targets"]), task_type="CAUSAL_LM"))
    elif setup["method"] != "full":
        raise SystemExit("measure_gpu: train measures method full or lora (QLoRA needs a quantized checkpoint)")
    if setup["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if setup["method"] == "lora":
            model.enable_input_require_grads()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _optimizer(params, setup["optimizer"])
    b, s = setup["micro_batch"], setup["seq_len"]
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (b, s), device="cuda")

    def step():
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    mem = _memory(torch)
    return {**mem, "tokens_per_s": b * s * steps / elapsed, "steps": steps, "warmup": warmup,
            "trainable_params": sum(p.numel() for p in params),
            "params_total": sum(p.numel() for p in model.parameters())}


def measure_generation(cfg: dict[str, Any], precision: str, batch: int, prompt: int, new_tokens: int,
                       attention: str) -> dict[str, Any]:
    """Peak memory and generated tokens/s of one ``generate`` call (greedy, no early stop)."""
    import torch

    model = build_model(cfg, precision, {"flash": "sdpa", "sdpa": "sdpa", "eager": "eager"}[attention])
    model.eval()
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt), device="cuda")
    kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        model.generate(ids[:, : min(prompt, 16)], max_new_tokens=4, do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        model.generate(ids, **kw)
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
    mem = _memory(torch)
    return {**mem, "tokens_per_s": batch * new_tokens / elapsed, "seconds": elapsed}


# ----------------------------------------------------------------------------- cases


def cases_for(kind: str, name: str, cfg: dict[str, Any], gpu: str | None, setup: dict[str, Any],
              measured: dict[str, Any], env: dict[str, Any], argv: list[str]) -> list[dict[str, Any]]:
    """Validation cases (``cases.yaml`` format) for one measurement: memory ×3 and tokens/s."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base_id = f"M-{kind}-{name}-{stamp}"
    published = {"model": name, "environment": env, "command": " ".join(shlex.quote(a) for a in argv),
                 "measured_raw": measured, "config": cfg}
    common = dict(calibration_id=None, supported=gpu is not None,
                  reason="" if gpu else f"GPU '{env['gpu_name']}' is not in the GPU catalog",
                  confidence="high", source=f"tools/measure_gpu.py on {env['gpu_name']} ({stamp})",
                  quote="", origin="gpu-measured", published=published)
    if kind == "train":
        mem_cat, est = "finetune-memory", "finetune"
        speed = dict(category="throughput", quantity="tokens_per_s_per_gpu", unit="tokens/s", estimator="throughput")
    else:
        mem_cat, est = "serving-memory", "serve"
        speed = dict(category="serving-speed", quantity="decode_tokens_per_s", unit="tokens/s", estimator="serve")
    out = []
    notes = {"allocated": "torch.cuda.max_memory_allocated over the timed steps",
             "reserved": "torch.cuda.max_memory_reserved over the timed steps",
             "device": "torch.cuda.mem_get_info total - free after the timed steps (CUDA context included)"}
    for q in ("allocated", "reserved", "device"):
        out.append(dict(id=f"{base_id}/{q}", category=mem_cat, quantity=q,
                        measured={"value": round(measured[q] / 2**30, 4), "unit": "GiB"}, estimator=est,
                        model_config=cfg, gpu=gpu, gpus=1, setup=setup, extra={}, notes=notes[q], **common))
    out.append(dict(id=f"{base_id}/tokens-per-s", category=speed["category"], quantity=speed["quantity"],
                    measured={"value": round(measured["tokens_per_s"], 2), "unit": speed["unit"]},
                    estimator=speed["estimator"], model_config=cfg, gpu=gpu, gpus=1, setup=setup, extra={},
                    notes="wall-clock over the timed steps with torch.cuda.synchronize", **common))
    for c in out:
        if not c["supported"]:
            for k in ("estimator", "model_config", "gpu", "gpus", "setup", "extra"):
                c.pop(k, None)
    return out


def write_cases(cases: list[dict[str, Any]], out_dir: Path = OUT_DIR) -> Path:
    """One YAML file per run (a list of cases), named after the first case id."""
    import yaml

    class _NoAlias(yaml.SafeDumper):
        def ignore_aliases(self, data):  # the loader refuses YAML aliases
            return True

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", cases[0]["id"].rsplit("/", 1)[0])
    path = out_dir / f"{stem}.yaml"
    path.write_text(yaml.dump(cases, Dumper=_NoAlias, sort_keys=False, width=120), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="measure_gpu.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="kind", required=True)
    for kind in ("train", "generate"):
        s = sub.add_parser(kind)
        s.add_argument("--model", help="catalog model slug, HF id or alias")
        s.add_argument("--config", help="path to a Hugging Face config.json")
        s.add_argument("--layers", type=int, help="keep only this many decoder layers")
        s.add_argument("--precision", default="bf16",
                       choices=["bf16", "fp32"] if kind == "train" else ["bf16", "fp16", "fp32"])
        s.add_argument("--attention", default="flash", choices=["flash", "sdpa", "eager"])
        s.add_argument("--gpu", help="GPU catalog slug (default: matched from the CUDA device name)")
        s.add_argument("--out", type=Path, default=OUT_DIR, help="directory for the case file")
        s.add_argument("--dry-run", action="store_true", help="print the cases instead of writing them")
        if kind == "train":
            s.add_argument("--method", default="lora", choices=["full", "lora"])
            s.add_argument("--optimizer", default="adamw",
                           choices=["adamw", "adamw-8bit", "paged-adamw-8bit", "paged-adamw", "sgd", "sgd-momentum"])
            s.add_argument("--seq-len", type=int, default=2048)
            s.add_argument("--micro-batch", type=int, default=1)
            s.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=True)
            s.add_argument("--lora-rank", type=int, default=16)
            s.add_argument("--lora-alpha", type=int, default=32)
            s.add_argument("--lora-targets", default="all-linear")
            s.add_argument("--steps", type=int, default=5)
            s.add_argument("--warmup", type=int, default=2)
        else:
            s.add_argument("--batch", type=int, default=1)
            s.add_argument("--prompt", type=int, default=512)
            s.add_argument("--new-tokens", type=int, default=128)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("measure_gpu: torch is not installed; nothing was measured.", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        return 2
    cfg, name = load_config(args.model, args.config, args.layers)
    env = environment()
    gpu = args.gpu or gpu_slug(env["gpu_name"])
    if args.kind == "train":
        setup = dict(method=args.method, precision=args.precision, optimizer=args.optimizer, seq_len=args.seq_len,
                     micro_batch=args.micro_batch, gradient_checkpointing=args.checkpointing,
                     attention_kernel=args.attention)
        if args.method == "lora":
            setup.update(lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, lora_targets=args.lora_targets)
        measured = measure_training(cfg, setup, args.steps, args.warmup)
    else:
        setup = dict(engine="transformers", precision=args.precision, kv_precision=args.precision
                     if args.precision != "fp32" else "fp16", users=args.batch, context=args.prompt + args.new_tokens,
                     prompt_tokens=args.prompt, max_model_len=args.prompt + args.new_tokens, tp=1)
        measured = measure_generation(cfg, args.precision, args.batch, args.prompt, args.new_tokens, args.attention)
    cases = cases_for(args.kind, name, cfg, gpu, setup, measured, env, [Path(__file__).name, *(argv or sys.argv[1:])])
    if args.dry_run:
        import yaml

        print(yaml.safe_dump(cases, sort_keys=False, width=120))
        return 0
    path = write_cases(cases, args.out)
    print(f"measure_gpu: wrote {len(cases)} cases to {path}")
    for c in cases:
        print(f"  {c['id']}: {c['measured']['value']} {c['measured']['unit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

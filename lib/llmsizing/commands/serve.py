"""``llmsizing serve MODEL --gpu GPU ...``: memory, GPU count, KV capacity and speed for N users."""

from __future__ import annotations

from llmsizing.choices import ENGINES, MLA_MODES
from llmsizing.commands.common import add_set_argument, assumption_overrides, number_text, parse_counts
from llmsizing.commands.output import print_json
from llmsizing.planner.cluster import serving_cluster
from llmsizing.serving.estimate import serve
from llmsizing.units import fmt_gib, parse_tokens

def _fmt_rate(x: float | None, unit: str) -> str:
    return "n/a (does not fit)" if x is None else f"{x:,.3g} {unit}"


def render_table(d: dict) -> str:
    """The readable (non-JSON) output of ``serve``."""
    mem = d["memory_per_gpu"]
    gib = lambda b: fmt_gib(b)  # noqa: E731
    lines = [
        f"{d['model']} on {d['gpu']} with {d['engine']}: {d['precision']} weights, {d['kv_precision']} KV cache"
        + (f", MLA cache {d['mla_cache']}" if d.get("mla_cache") else ""),
        f"{d['users']} users x {d['context_tokens']:,} tokens ({d['prompt_tokens']:,} prompt + "
        f"{d['output_tokens']:,} answer)",
        "",
        f"{'Layout':18} {d['gpus']} GPUs = {d['nodes']} node(s) x {d['gpus_per_node']}, tensor parallel "
        f"{d['tensor_parallel']}, pipeline parallel {d['pipeline_parallel']}, expert parallel {d['expert_parallel']}",
        f"{'Fits':18} {'yes' if d['fits'] else 'NO'}: {d['reason']}",
    ]
    if d.get("needs"):
        n = d["needs"]
        lines.append(f"{'Needs':18} {n['gpus']} GPUs ({n['nodes']} node(s)), tensor parallel {n['tensor_parallel']}, "
                     f"pipeline parallel {n['pipeline_parallel']}")
    lines += [
        "",
        "Memory per GPU (most loaded GPU)",
        f"  {'weights':24} {gib(mem['weights']):>12}",
        f"  {'KV cache (' + str(d['users']) + ' users)':24} {gib(mem['kv_cache']):>12}",
        f"  {'activations':24} {gib(mem['activations']):>12}",
        f"  {'overhead (CUDA, NCCL)':24} {gib(mem['overhead']):>12}",
        f"  {'total':24} {gib(mem['total']):>12}   of {gib(d['gpu_memory_bytes'])} per GPU "
        f"(engine budget {gib(d['usable_memory_bytes'])})",
        "",
        f"{'KV capacity':18} {d['kv_cache_capacity_tokens']:,} tokens per replica "
        f"= {d['max_concurrent_users']} users at {d['context_tokens']:,} tokens",
        f"{'Decode (estimate)':18} {_fmt_rate(d['decode_tokens_per_s_per_user'], 'tokens/s per user')} at "
        f"{d['users']} concurrent users (mean context {d['decode_context_tokens']:,} tokens)",
        f"{'TTFT (estimate)':18} {_fmt_rate(d['ttft_s'], 's')} for a {d['prompt_tokens']:,}-token prompt",
    ]
    for note in d.get("notes", []):
        lines.append(f"Note: {note}")
    lines.append("Speeds are roofline estimates with named efficiency factors (llmsizing assumptions), "
                 "not measurements.")
    return "\n".join(lines)


def _cmd_serve(args) -> int:
    parse_counts(args, "gpus", "users")
    est = serve(
        args.model, args.gpu, gpus=args.gpus, precision=args.precision, kv_precision=args.kv_precision,
        users=args.users, context_tokens=parse_tokens(args.context, "context") if args.context is not None else None,
        prompt_tokens=parse_tokens(args.prompt_tokens, "prompt tokens") if args.prompt_tokens is not None else None,
        engine=args.engine, gpu_memory_utilization=args.gpu_memory_utilization, gpu_memory=args.gpu_memory,
        mla_cache=args.mla_cache,
        max_model_len=parse_tokens(args.max_model_len, "max model length") if args.max_model_len is not None else None,
        enforce_eager=args.enforce_eager, assumptions=assumption_overrides(args.assumption_sets),
    )
    d = est.to_dict()
    # instances, $/hour and $/million output tokens for the layout (fits or not: what it would cost)
    d["cluster"] = serving_cluster(d).to_dict() if d.get("gpus") else None
    if args.json:
        print_json(d)
    else:
        print(render_table(d))
        c = d["cluster"]
        if c and c["cost_usd_per_hour"] is not None:
            per_m = c["cost_usd_per_million_output_tokens"]
            print(f"Cost (catalog price) {c['nodes']} × {c['instance_name']}: USD {c['cost_usd_per_hour']:,.2f} per hour"
                  + (f", USD {per_m:,.2f} per million output tokens at {d['users']} users" if per_m else ""))
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="size GPUs for serving a model to N concurrent users",
                       description="Memory per GPU, GPU count and layout, KV-cache capacity and (estimated) "
                                   "speed for serving MODEL to --users concurrent users at --context tokens each.")
    p.add_argument("model", help="catalog slug, Hugging Face id, or path to a config.json")
    p.add_argument("--gpu", required=True, help="GPU catalog slug (llmsizing gpus)")
    p.add_argument("--gpus", type=number_text, default=None,
                   help="evaluate this many GPUs (default: the smallest layout that fits)")
    p.add_argument("--precision", default=None,
                   help="weights: bf16, fp16, fp8 (the model's FP8 checkpoint, e.g. 128x128 blocks for "
                        "DeepSeek-R1), int8, int4, or a catalog format (q4_k_m, ...); default: the checkpoint's")
    p.add_argument("--kv-precision", default=None, help="KV cache: bf16, fp16, fp8 (llama.cpp: q8_0, q4_0); "
                                                       "default: the model dtype")
    p.add_argument("--users", type=number_text, default=None, help="concurrent users (default 3)")
    p.add_argument("--context", default=None,
                   help="tokens per user, prompt + answer: 32768 or 32K (default 32K = 4K prompt + 28K answer)")
    p.add_argument("--prompt-tokens", default=None, help="prompt tokens per request (default: context / 8, at most 4K)")
    p.add_argument("--engine", choices=ENGINES, default="vllm", help="serving engine (default vllm)")
    p.add_argument("--gpu-memory-utilization", type=float, default=None,
                   help="vLLM gpu_memory_utilization / SGLang mem_fraction_static (default: the engine's)")
    p.add_argument("--gpu-memory", default=None, help="override the GPU's memory, e.g. 24GiB or 80GB")
    p.add_argument("--mla-cache", choices=MLA_MODES, default=None,
                   help="DeepSeek MLA cache: latent (vLLM, SGLang) or decompressed per-head K/V")
    p.add_argument("--max-model-len", default=None, help="engine max_model_len (default: the context)")
    p.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs (vLLM --enforce-eager)")
    add_set_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (sizes in bytes)")
    p.set_defaults(handler=_cmd_serve)

"""``llmsizing serve MODEL --gpu GPU ...``: memory, GPU count, KV capacity and speed for N users."""

from __future__ import annotations

import argparse

from llmsizing.choices import ENGINES, MLA_MODES, SPECULATIVE
from llmsizing.commands.common import add_set_argument, assumption_overrides, number_text, parse_counts
from llmsizing.commands.output import print_json
from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.planner.cluster import node_for_gpus, nodes_for, serving_cluster
from llmsizing.errors import ScenarioError
from llmsizing.serving.estimate import serve
from llmsizing.serving.targets import cheapest_deployment
from llmsizing.units import fmt_gib, parse_latency_s, parse_tokens

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
        f"{'TTFT (estimate)':18} {_fmt_rate(d['ttft_s'], 's')} mean for a {d['prompt_tokens']:,}-token prompt "
        f"at this load (p90 {_fmt_rate(d.get('ttft_s_p90'), 's')})",
    ]
    if d.get("tpot_s"):
        lines.append(f"{'TPOT (estimate)':18} {d['tpot_s']['mean'] * 1e3:,.1f} ms mean, {d['tpot_s']['p90'] * 1e3:,.1f} ms "
                     f"p90; output {d['output_tokens_per_s']:,.0f} tokens/s in all (prompts prefilled in chunks "
                     "between decode steps)")
    if d.get("launch_command"):
        lines.append(f"{'Launch':18} {d['launch_command']}")
    for note in d.get("notes", []):
        lines.append(f"Note: {note}")
    lines.append("Speeds are roofline estimates with named efficiency factors (llmsizing assumptions), "
                 "not measurements.")
    return "\n".join(lines)


def _users(text: str) -> int | str:
    """--users: a positive integer or 'max' (the max-throughput point)."""
    if str(text).strip().lower() == "max":
        return "max"
    try:
        return number_text(text)  # range-checked by parse_counts in _cmd_serve
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value {text!r}: a positive integer or 'max'") from None


def _cmd_serve(args) -> int:
    parse_counts(args, "gpus", "ep")
    if args.users != "max":
        parse_counts(args, "users")
    if args.gpu == "any" or args.ttft is not None or args.tpot is not None:
        return _cmd_serve_targets(args)
    overrides = assumption_overrides(args.assumption_sets)
    est = serve(
        args.model, args.gpu, gpus=args.gpus, precision=args.precision, kv_precision=args.kv_precision,
        users=args.users, attention_dp=args.attention_dp, ep=args.ep, speculative=args.speculative,
        disaggregate=args.disaggregate, context_tokens=parse_tokens(args.context, "context") if args.context is not None else None,
        prompt_tokens=parse_tokens(args.prompt_tokens, "prompt tokens") if args.prompt_tokens is not None else None,
        engine=args.engine, gpu_memory_utilization=args.gpu_memory_utilization, gpu_memory=args.gpu_memory,
        mla_cache=args.mla_cache,
        max_model_len=parse_tokens(args.max_model_len, "max model length") if args.max_model_len is not None else None,
        enforce_eager=args.enforce_eager, assumptions=overrides,
    )
    d = est.to_dict()
    # instances, $/hour and $/million output tokens for the layout (fits or not: what it would cost)
    d["cluster"] = serving_cluster(d, overrides).to_dict() if d.get("gpus") else None
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


def price_per_hour(gpu: str, gpus: int) -> float | None:
    """Catalog price (USD per hour) of the nodes ``gpus`` GPUs of type ``gpu`` need (the planner's instance
    choice); None when no instance with that GPU is priced."""
    node = node_for_gpus(catalog.load_gpu(gpu), gpus, Assumptions())
    return None if node.price_usd_per_hour is None else nodes_for(gpus, node) * node.price_usd_per_hour


def _cmd_serve_targets(args) -> int:
    """--gpu any and/or --ttft/--tpot: the cheapest deployment that meets the targets, with its launch command."""
    if not isinstance(args.users, int):
        raise ScenarioError("--ttft/--tpot and --gpu any need a number of --users (the load to meet them at)")
    ttft = parse_latency_s(args.ttft, "--ttft") if args.ttft is not None else None
    tpot = parse_latency_s(args.tpot, "--tpot") if args.tpot is not None else None
    gpus = None if args.gpu == "any" else [g.strip() for g in args.gpu.split(",")]
    best, tried = cheapest_deployment(
        args.model, gpus, users=args.users, ttft_s=ttft, tpot_s=tpot, price=price_per_hour, engine=args.engine,
        context_tokens=parse_tokens(args.context, "context") if args.context is not None else None,
        prompt_tokens=parse_tokens(args.prompt_tokens, "prompt tokens") if args.prompt_tokens is not None else None,
        assumptions=assumption_overrides(args.assumption_sets))
    d = best.to_dict() if best else {"model": args.model, "fits": False, "launch_command": None,
                                     "reason": "no GPU type, precision and layout tried meets the targets"}
    d["targets"] = {"ttft_s": ttft, "tpot_s": tpot, "users": args.users}
    d["candidates"] = [c.to_dict() for c in tried]
    if best:
        d["cluster"] = serving_cluster(d).to_dict()
    if args.json:
        print_json(d)
    elif best:
        print(render_table(d))
        print(f"Chosen: the cheapest of {len(tried)} deployments tried that meets the targets "
              f"(TTFT {ttft if ttft is not None else '-'} s, TPOT {tpot if tpot is not None else '-'} s at "
              f"{args.users} users)")
    else:
        print(d["reason"])
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="size GPUs for serving a model to N concurrent users",
                       description="Memory per GPU, GPU count and layout, KV-cache capacity and (estimated) "
                                   "speed for serving MODEL to --users concurrent users at --context tokens each.")
    p.add_argument("model", help="catalog slug, Hugging Face id, or path to a config.json")
    p.add_argument("--gpu", required=True, help="GPU catalog slug (llmsizing gpus), or 'any' to pick the cheapest")
    p.add_argument("--gpus", type=number_text, default=None,
                   help="evaluate this many GPUs (default: the smallest layout that fits)")
    p.add_argument("--precision", default=None,
                   help="weights: native (the checkpoint's own, default), bf16, fp16, fp8 (the model's FP8 checkpoint, e.g. 128x128 blocks for "
                        "DeepSeek-R1), int8, int4, or a catalog format (q4_k_m, ...); default: the checkpoint's")
    p.add_argument("--kv-precision", default=None, help="KV cache: bf16, fp16, fp8 (llama.cpp: q8_0, q4_0); "
                                                       "default: the model dtype")
    p.add_argument("--users", type=_users, default=None,
                   help="concurrent users (default 3), or 'max' for the max-throughput point")
    p.add_argument("--attention-dp", action="store_true",
                   help="attention data parallel over the GPUs (MoE models; SGLang --enable-dp-attention)")
    p.add_argument("--ep", type=number_text, default=None, help="expert-parallel size (with --attention-dp)")
    p.add_argument("--speculative", choices=SPECULATIVE, default=None, help="speculative decoding: mtp or eagle")
    p.add_argument("--disaggregate", default=None, metavar="P:D",
                   help="prefill/decode disaggregation: P prefill GPUs and D decode GPUs")
    p.add_argument("--ttft", default=None, help="time-to-first-token target, e.g. 2s or 500ms (mean)")
    p.add_argument("--tpot", default=None, help="time-per-output-token target, e.g. 50ms (mean)")
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

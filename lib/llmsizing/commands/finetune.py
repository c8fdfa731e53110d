"""``llmsizing finetune MODEL ...``: the smallest cluster that fine-tunes a model by a deadline;
``llmsizing audit [TABLE]``: the customer's hand-made table checked against the planner."""

from __future__ import annotations

import argparse
import re

from llmsizing.units import SECONDS_PER_HOUR, fmt_count, fmt_gb, fmt_gib, fmt_hours
from llmsizing.choices import (DEFAULT_FRAMEWORK, FRAMEWORKS, LANGUAGES, METHODS, OFFLOADS, OPTIMIZE, OPTIMIZERS,
                               TOKENIZER_FAMILIES, TRAIN_PRECISIONS, ZERO_STAGES)
from llmsizing.commands.common import add_set_argument, assumption_overrides, number_text, parse_counts, tokens_arg
from llmsizing.commands.output import print_json
from llmsizing.errors import ScenarioError
from llmsizing.planner.audit import audit_table, default_table_path
from llmsizing.planner.plans import gpu_choices, plan_finetune, rank_plans
from llmsizing.training.aliases import alias_overrides



def _cmd_finetune(args: argparse.Namespace) -> int:
    parse_counts(args, "gpus", "micro_batch", "tp", "pp", "ep", "lora_rank")
    if args.method == "full":
        for flag, value in (("--lora-targets", args.lora_targets), ("--lora-rank", args.lora_rank)):
            if value is not None:
                raise ScenarioError(f"{flag} applies to --method lora and qlora only; --method full trains every "
                                    f"weight (drop {flag}, or choose --method lora)")
    kw = dict(deadline=args.deadline, epochs=args.epochs, language=args.language, tokenizer=args.tokenizer,
              packing=not args.padding, gpus=args.gpus, seq_len=args.seq_len, micro_batch=args.micro_batch,
              gradient_checkpointing=args.gradient_checkpointing, precision=args.precision,
              optimizer=args.optimizer, zero=args.zero, offload=args.offload, tp=args.tp, pp=args.pp, ep=args.ep,
              lora_rank=16 if args.lora_rank is None else args.lora_rank,
              lora_targets=args.lora_targets or "all-linear", framework=args.framework,
              gpu_memory=args.gpu_memory, optimize=args.optimize, global_batch=args.global_batch,
              assumptions=alias_overrides(
                  model=args.model, method=args.method, gpu=args.gpu, language=args.language,
                  tokenizer=args.tokenizer, mfu=args.mfu, tokens_per_byte=args.tokens_per_byte,
                  assumptions=assumption_overrides(args.assumption_sets)))
    choices = gpu_choices(args.gpu)
    if len(choices) == 1 and args.gpu.strip().lower() != "any":
        d = plan_finetune(args.model, args.method, choices[0], args.data, **kw).to_dict()
        ranking = None
    else:
        plans = rank_plans(args.model, args.method, choices, args.data, **kw)
        d = plans[0].to_dict()
        ranking = [_rank_row(p) for p in plans]
        d["ranking"] = ranking
    if args.json:
        print_json(d)
    else:
        print(render_plan(d))
        if ranking:
            print("\n" + render_ranking(ranking, args.optimize))
    return 0


def _rank_row(p) -> dict:
    inst = p.instance()
    return {"gpu": p.gpu, "gpus": p.gpus, "fits": p.fits, "meets_deadline": p.meets_deadline, "hours": p.hours,
            "gpu_hours": p.gpu_hours, "cost_usd": p.cost_usd,
            "instance": inst["name"] if inst else None, "provider": inst["provider"] if inst else None,
            "price_kind": inst["price_kind"] if inst else None}


def render_ranking(rows: list[dict], optimize: str) -> str:
    """The GPU types ranked (``--gpu any`` or a comma list)."""
    lines = [f"GPU types ranked by {optimize} (fitting and on time first; no price: after the priced ones)"]
    for i, r in enumerate(rows, 1):
        if not r["fits"]:
            lines.append(f"{i:>3}. {r['gpu']:18} does not fit")
            continue
        cost = f"USD {r['cost_usd']:,.0f}" if r["cost_usd"] is not None else "no price"
        where = f" on {r['instance']} ({r['provider']})" if r["instance"] else " (generic nodes)"
        lines.append(f"{i:>3}. {r['gpu']:18} {r['gpus']:>6} GPUs  {fmt_hours(r['hours']):>10}  {cost:>14}"
                     f"{'' if r['meets_deadline'] else '  LATE'}{where}")
    return "\n".join(lines)


def render_plan(d: dict) -> str:
    """The readable (non-JSON) output of ``finetune``."""
    lay, mem, cl, t = d["layout"], d["memory_per_gpu"], d["cluster"], d["time"]
    lines = [
        f"{d['model']} — {d['method']} fine-tuning on {d['gpu']} ({d['precision']}, {d['optimizer']}, "
        f"sequences of {d['seq_len']:,} tokens)",
        f"{'Data':14} {d['dataset']['explanation']}",
        "",
        f"{'GPUs':14} {d['gpus']} = tp {lay['tp']} × pp {lay['pp']} × dp {lay['dp']}"
        + (f", ep {lay['ep']}" if lay["ep"] > 1 else "")
        + f"; ZeRO-{lay['zero']}, offload {lay['offload']}, micro-batch {d['micro_batch']} × "
        f"{d['grad_accum']} accumulation, checkpointing {'on' if d['gradient_checkpointing'] else 'off'}",
        f"{'Fits':14} {'yes' if d['fits'] else 'NO — ' + d['fit_reason']}",
    ]
    if mem:
        rng = d.get("memory_per_gpu_range")
        if rng:
            lines.append(f"{'Range/GPU':14} {fmt_gib(rng['low'])} to {fmt_gib(rng['high'])} (device level, "
                         f"{d['framework']}; from out-of-sample residuals of {rng['basis']}, n={rng['n']})"
                         + (" — TIGHT: the range crosses the GPU's memory" if d.get("tight") else ""))
        lines.append(f"{'Memory/GPU':14} {fmt_gib(mem.get('total', 0))} of {fmt_gib(d['gpu_memory_bytes'])}: "
                     f"weights {fmt_gib(mem.get('weights', 0))}, gradients {fmt_gib(mem.get('gradients', 0))}, "
                     f"optimizer {fmt_gib(mem.get('optimizer', 0))}, activations {fmt_gib(mem.get('activations', 0))}, "
                     f"overhead {fmt_gib(mem.get('overhead', 0))}")
    if t:
        lines += [
            f"{'Time':14} {fmt_hours(d['hours'])} ({d['gpu_hours']:,.1f} GPU-hours) for a {d['deadline_hours']:g} h "
            f"deadline: {'meets it' if d['meets_deadline'] else 'MISSES it'}",
            f"{'':14} compute {fmt_hours(t['compute_s'] / SECONDS_PER_HOUR)}, communication "
            f"{fmt_hours(t['comm_s'] / SECONDS_PER_HOUR)}, pipeline bubble {fmt_hours(t['bubble_s'] / SECONDS_PER_HOUR)}, "
            f"I/O {fmt_hours(t['io_s'] / SECONDS_PER_HOUR)}; scaling efficiency {t['scaling_efficiency']:.0%}",
            f"{'FLOP':14} {d['train_flop']:.3g} = {fmt_count(d['train_tokens'])} tokens × "
            f"{d['train_flop_per_token']:.3g} FLOP/token",
        ]
    if d["limit"]:
        lines.append(f"{'Limit':14} {d['limit']}")
    if not d["fits"] and d.get("would_fit"):
        lines.append(f"{'Would fit':14} {d['would_fit']}")
    if cl:
        node, inst = cl["node"], d.get("instance")
        price = ""
        if inst and inst["price_usd_per_hour"] is not None:
            price = (f", USD {inst['price_usd_per_hour']:,.2f}/h {inst['price_kind']}, {inst['region']}, "
                     f"price of {inst['price_date']}")
        elif inst:
            price = ", no public price"
        lines += [
            "",
            f"{'Nodes':14} {cl['nodes']} × {node['instance_name'] or 'generic node'}"
            + (f" ({node['provider']})" if node.get("provider") else "")
            + f" ({cl['gpus_per_node']} GPUs each{price})",
            f"{'CPU':14} {cl['cpu_cores_per_node']:,} vCPUs per node, {cl['cpu_cores']:,} in all",
            f"{'RAM':14} {fmt_gib(cl['ram_bytes_per_node'])} per node, {fmt_gib(cl['ram_bytes'])} in all",
            f"{'Storage':14} {fmt_gb(cl['storage_bytes'])} shared in all ({fmt_gb(cl['storage_bytes_per_node'])} per node)",
            f"{'Network':14} {cl['network_gbps']:,.0f} Gbit/s per node"
            + (" (RDMA: InfiniBand, RoCE or EFA)" if cl["rdma_needed"] else "")
            + f"; the run needs {cl['network_parts']['needed_gbps']:,.3g} Gbit/s",
            f"{'Cost':14} " + (f"USD {d['cost_usd']:,.0f} ({inst['price_kind']}: {cl['nodes']} × "
                               f"USD {inst['price_usd_per_hour']:,.2f}/h × {fmt_hours(d['hours'])})"
                               if d["cost_usd"] is not None and inst else "no price"),
        ]
        for n in cl["notes"]:
            lines.append(f"{'':14} note: {n}")
    for n in d["notes"]:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _cmd_audit(args: argparse.Namespace) -> int:
    rows = audit_table(args.table, deadline=args.deadline, language=args.language,
                       assumptions=assumption_overrides(args.assumption_sets))
    if args.json:
        print_json({"table": str(args.table or default_table_path()), "rows": [r.to_dict() for r in rows],
                    "stated_fits": sum(r.stated.fits for r in rows),
                    "stated_meets_deadline": sum(r.stated.meets_deadline for r in rows)})
        return 0
    for r in rows:
        d = r.to_dict()
        state = ("fits, " + fmt_hours(d["stated_hours"])) if d["stated_fits"] else "does NOT fit"
        print(f"{d['id']:16} {d['gpus']:>4} × {d['gpu']:10} {d['data']:>5}  as written: {state}")
        print(f"{'':16} {d['verdict']}")
    return 0


def _bool_flag(p: argparse.ArgumentParser, name: str, help_: str) -> None:
    p.add_argument(f"--{name}", dest=name.replace("-", "_"), action=argparse.BooleanOptionalAction, default=None,
                   help=help_)


# Let values such as "-5GB" or "-1h" reach the validators (which name the accepted forms) instead of
# argparse reading them as unknown options; this command has no options that start with "-<digit>".
_NEGATIVE_VALUE = re.compile(r"^-\.?[0-9]")


def register(sub) -> None:
    p = sub.add_parser("finetune", help="smallest cluster that fine-tunes a model by a deadline",
                       description="Plan a fine-tuning run: GPU count and layout that fit in memory and meet the "
                                   "deadline, the cluster (nodes, CPU, RAM, storage, network) and its cost. "
                                   "Without --gpus the planner chooses the count.")
    p.add_argument("model", help="catalog slug, Hugging Face id, or path to a config.json")
    p.add_argument("--method", choices=METHODS, default="lora", help="fine-tuning method (default lora)")
    p.add_argument("--gpu", required=True,
                   help="GPU catalog slug (see 'llmsizing gpus'), a comma list, or 'any': plan each and rank them")
    p.add_argument("--gpu-memory", default=None, help="override the GPU's memory, e.g. 24GiB")
    p.add_argument("--gpus", type=number_text, default=None, help="evaluate exactly this many GPUs")
    p.add_argument("--optimize", choices=OPTIMIZE, default="cost",
                   help="what the plan minimises among those that meet the deadline: cost (default; whole "
                        "instances billed), time, or gpus (the fewest)")
    p.add_argument("--data", default="1GB",
                   help="dataset: bytes of text ('1GB', bare '1G' = bytes), '15.6T tokens' or '1K samples'")
    p.add_argument("--epochs", default="1", help="passes over the data (positive number, default 1)")
    p.add_argument("--deadline", default="24h", help="wall-clock deadline, e.g. 24h, 2d, 90m (default 24h)")
    p.add_argument("--language", choices=LANGUAGES, default="en", help="language of the text (bytes → tokens)")
    p.add_argument("--tokenizer", choices=TOKENIZER_FAMILIES, default=None, help="tokenizer family (default: the model's)")
    p.add_argument("--padding", action="store_true", help="pad each batch instead of packing sequences")
    p.add_argument("--seq-len", type=tokens_arg("seq-len"), default=4096,
                   help="training sequence length in tokens: 4096 or 4K (default 4096)")
    p.add_argument("--micro-batch", type=number_text, default=None, help="sequences per GPU per micro-step (default: search)")
    _bool_flag(p, "gradient-checkpointing", "recompute activations in backward (default: search)")
    p.add_argument("--precision", choices=TRAIN_PRECISIONS, default="mixed-bf16", help="training precision")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="optimizer")
    p.add_argument("--framework", choices=FRAMEWORKS, default=DEFAULT_FRAMEWORK,
                   help=f"training stack whose memory behaviour to assume (default {DEFAULT_FRAMEWORK}: Hugging Face "
                        "Trainer + PEFT)"),
    p.add_argument("--zero", type=int, choices=ZERO_STAGES, default=None, help="ZeRO stage (default: search)")
    p.add_argument("--offload", choices=OFFLOADS, default=None, help="CPU offload (default: search)")
    p.add_argument("--tp", type=number_text, default=None, help="tensor-parallel degree (default: search)")
    p.add_argument("--pp", type=number_text, default=None,
                   help="pipeline-parallel degree (default: 1, searched up to 16 where nothing else fits)")
    p.add_argument("--global-batch", type=int, default=None,
                   help="sequences per optimizer step (default: global_batch_tokens / seq-len)")
    p.add_argument("--ep", type=number_text, default=None, help="expert-parallel degree, MoE only (default: search)")
    p.add_argument("--lora-rank", type=number_text, default=None, help="LoRA rank (default 16)")
    p.add_argument("--lora-targets", default=None, help="all-linear | attention | q,v | module names")
    add_set_argument(p)
    p.add_argument("--mfu", type=float, default=None, metavar="F",
                   help="model-FLOP utilisation, e.g. 0.3: sets mfu_<method>_<GPU generation> for the --gpu given "
                        "(an H100 is hopper, an A100 ampere, ...)")
    p.add_argument("--tokens-per-byte", type=float, default=None, metavar="F",
                   help="tokens per byte of the training text, e.g. 0.25: sets the bytes_per_token_<language>_"
                        "<tokenizer> assumption(s) of this run")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_finetune)
    p._negative_number_matcher = _NEGATIVE_VALUE

    a = sub.add_parser("audit", help="check the customer's hand-made fine-tuning table against the planner",
                       description="For each row of a hardware table (default params/audit/seed-table.yaml): does "
                                   "the stated layout fit, how long does it take, and what the planner recommends.")
    a.add_argument("table", nargs="?", default=None, help="table YAML (default params/audit/seed-table.yaml)")
    a.add_argument("--deadline", default=None, help="override the table's deadline, e.g. 24h")
    a.add_argument("--language", choices=LANGUAGES, default=None, help="override the table's text language")
    add_set_argument(a)
    a.add_argument("--json", action="store_true", help="print one JSON object (rows: one object per table row)")
    a.set_defaults(handler=_cmd_audit)
    a._negative_number_matcher = _NEGATIVE_VALUE

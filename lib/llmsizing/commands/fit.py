"""``llmsizing fit``: models × GPU types — what fits, for serving and for fine-tuning, and what it costs.

Serving: the smallest layout that holds the model for ``--users`` at ``--context`` (``serving.estimate.serve``),
its instances and USD per hour (``planner.cluster.serving_cluster``). Fine-tuning: the plan the planner
recommends for ``--method`` on ``--data`` by ``--deadline`` (``planner.plans.plan_finetune``, cheapest by
default), its GPUs, hours and cost. One row per (model, GPU); nothing is estimated here.
"""

from __future__ import annotations

import argparse

from llmsizing import catalog
from llmsizing.choices import DEEPSEEK_R1_FAMILY, METHODS, OPTIMIZE
from llmsizing.commands.common import add_set_argument, assumption_overrides
from llmsizing.commands.output import print_json
from llmsizing.errors import ScenarioError
from llmsizing.planner.cluster import serving_cluster
from llmsizing.planner.plans import gpu_choices, plan_finetune
from llmsizing.serving.estimate import serve
from llmsizing.units import fmt_hours, parse_tokens

DEFAULT_GPUS = "h100-80gb,h200,a100-80gb,l40s"


def fit_row(model: str, gpu: str, *, users: int, context_tokens: int, method: str, data: str, deadline: str,
            optimize: str, assumptions) -> dict:
    """One (model, GPU) cell: serving (fits, GPUs, USD/h) and fine-tuning (fits, GPUs, hours, USD)."""
    row: dict = {"model": model, "gpu": gpu}
    try:
        est = serve(model, gpu, users=users, context_tokens=context_tokens, speed=False, assumptions=assumptions)
        d = est.to_dict()
        cl = serving_cluster(d, assumptions) if d.get("gpus") else None
        row["serving"] = {"fits": bool(d.get("fits")), "gpus": d.get("gpus"),
                          "instance": cl.instance_name if cl else None,
                          "cost_usd_per_hour": cl.cost_usd_per_hour if cl else None}
    except ScenarioError as exc:
        row["serving"] = {"fits": False, "gpus": None, "instance": None, "cost_usd_per_hour": None,
                          "error": str(exc)}
    try:
        p = plan_finetune(model, method, gpu, data, deadline=deadline, optimize=optimize, assumptions=assumptions)
        inst = p.instance()
        row["finetune"] = {"fits": p.fits, "meets_deadline": p.meets_deadline, "gpus": p.gpus if p.fits else None,
                           "hours": p.hours, "cost_usd": p.cost_usd, "instance": inst["name"] if inst else None}
    except ScenarioError as exc:
        row["finetune"] = {"fits": False, "meets_deadline": False, "gpus": None, "hours": None, "cost_usd": None,
                           "instance": None, "error": str(exc)}
    return row


def _cmd_fit(args: argparse.Namespace) -> int:
    models = [catalog.load_model(m.strip()).slug for m in args.models.split(",") if m.strip()]
    gpus = gpu_choices(args.gpus)
    context = parse_tokens(args.context, "context")
    a = assumption_overrides(args.assumption_sets)
    rows = [fit_row(m, g, users=args.users, context_tokens=context, method=args.method, data=args.data,
                    deadline=args.deadline, optimize=args.optimize, assumptions=a) for m in models for g in gpus]
    if args.json:
        print_json({"users": args.users, "context_tokens": context, "method": args.method, "data": args.data,
                    "deadline": args.deadline, "optimize": args.optimize, "rows": rows})
        return 0
    print(f"Serving {args.users} users × {context:,} tokens; fine-tuning ({args.method}) on {args.data} "
          f"by {args.deadline}, cheapest plan ({args.optimize})")
    print(f"{'model':34} {'GPU':16} {'serving':>24}   {'fine-tuning':>34}")
    for r in rows:
        s, f = r["serving"], r["finetune"]
        sv = ("no" if not s["fits"] else f"{s['gpus']} GPUs" + (f", USD {s['cost_usd_per_hour']:,.2f}/h"
                                                                  if s["cost_usd_per_hour"] is not None else ""))
        if not f["fits"]:
            ft = "does not fit"
        else:
            ft = (f"{f['gpus']} GPUs, {fmt_hours(f['hours'])}"
                  + (f", USD {f['cost_usd']:,.0f}" if f["cost_usd"] is not None else ", no price")
                  + ("" if f["meets_deadline"] else ", late"))
        print(f"{r['model']:34} {r['gpu']:16} {sv:>24}   {ft:>34}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("fit", help="models × GPU types: what fits for serving and fine-tuning, with cost",
                       description="For each model and GPU type: the smallest serving layout and its USD/h, and "
                                   "the recommended fine-tuning plan (GPUs, hours, cost).")
    p.add_argument("--models", default=",".join(DEEPSEEK_R1_FAMILY), help="comma list of models (default: the "
                   "DeepSeek-R1 family)")
    p.add_argument("--gpus", default=DEFAULT_GPUS, help=f"comma list of GPU types or 'any' (default {DEFAULT_GPUS})")
    p.add_argument("--users", type=int, default=3, help="concurrent serving users (default 3)")
    p.add_argument("--context", default="32K", help="tokens per user (default 32K)")
    p.add_argument("--method", choices=METHODS, default="lora", help="fine-tuning method (default lora)")
    p.add_argument("--data", default="1GB", help="fine-tuning data (default 1GB of text)")
    p.add_argument("--deadline", default="24h", help="fine-tuning deadline (default 24h)")
    p.add_argument("--optimize", choices=OPTIMIZE, default="cost", help="fine-tuning objective (default cost)")
    add_set_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_fit)

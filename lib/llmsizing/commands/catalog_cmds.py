"""``llmsizing models``, ``llmsizing gpus``, ``llmsizing model MODEL``."""

from __future__ import annotations

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing.units import GiB, fmt_count
from llmsizing.commands.output import print_json
from llmsizing.facts import model_summary


def _cmd_models(args) -> int:
    models = catalog.list_models()
    if args.json:
        print_json([{"model": s.slug, "hf_id": s.hf_id, "family": s.family, "params_total": A.params_total(s),
                     "params_active": A.params_active(s)} for s in models])
        return 0
    print(f"{'slug':34} {'family':12} {'params':>10} {'active':>10}  hf_id")
    for s in models:
        print(f"{s.slug:34} {s.family:12} {fmt_count(A.params_total(s)):>10} {fmt_count(A.params_active(s)):>10}  {s.hf_id}")
    return 0


def _cmd_gpus(args) -> int:
    gpus = catalog.list_gpus()
    if args.json:
        print_json([{"gpu": g.slug, "name": g.name, "memory_bytes": g.memory_bytes,
                     "mem_bw_bytes_per_s": g.mem_bw_bytes_per_s, "flop_per_s": dict(g.flop_per_s),
                     "interconnect": g.interconnect, "intra_node_bytes_per_s": g.intra_node_bytes_per_s,
                     "node_gpus_max": g.node_gpus_max, "tdp_w": g.tdp_w, "confidence": g.confidence} for g in gpus])
        return 0
    print(f"{'slug':16} {'memory':>11} {'HBM/GDDR':>11} {'bf16 dense':>12} {'fp8 dense':>12}  name")
    for g in gpus:
        bf16 = g.flop_per_s.get("bf16") or g.flop_per_s.get("fp16")
        fp8 = g.flop_per_s.get("fp8")
        print(f"{g.slug:16} {g.memory_bytes / GiB:7.1f} GiB {g.mem_bw_bytes_per_s / 1e9:6.0f} GB/s "
              f"{(bf16 or 0) / 1e12:7.1f} TF/s {(f'{fp8 / 1e12:7.1f} TF/s') if fp8 else '          —'}  {g.name}")
    return 0


def _cmd_model(args) -> int:
    spec = catalog.load_model(args.model)
    info = model_summary(spec)
    if args.json:
        print_json(info)
        return 0
    for k, v in info.items():
        print(f"{k:32} {v}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model catalog")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_models)
    p = sub.add_parser("gpus", help="list the GPU catalog")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_gpus)
    p = sub.add_parser("model", help="architecture facts of one model")
    p.add_argument("model", help="catalog slug, Hugging Face id, or path to a config.json")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_model)

"""Fine-tuning plans: ``plan_finetune`` (deadline → the smallest cluster that fits and finishes) and
``evaluate_training_layout`` (a given GPU count and partly pinned layout), assembled from the search's
answer with memory, time breakdown, cluster bill of materials, cost and what limits the plan.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping

from llmsizing import catalog, instances
from llmsizing.assumptions import Assumptions
from llmsizing.choices import OPTIMIZE, one_of
from llmsizing.dataset import DatasetSize, dataset_size
from llmsizing.errors import ScenarioError
from llmsizing.planner import cluster
from llmsizing.planner.context import PlanContext, plan_context
from llmsizing.planner.fit import least_memory_shape
from llmsizing.planner.layouts import Shape, check_fixed_layout
from llmsizing.planner.request import ClusterPlan, FinetunePlan, Request, TimeBreakdown, TrainingLayout
from llmsizing.planner.search import search
from llmsizing.planner.step_time import adam_cores_per_gpu, data_terms, inter_node_bytes_per_step, time_breakdown
from llmsizing.choices import DEFAULT_FRAMEWORK
from llmsizing.specs import GpuSpec, ModelSpec
from llmsizing.training.ranges import MemoryRange, memory_range
from llmsizing.units import SECONDS_PER_HOUR, parse_duration_s


def _resolve(model, gpu, gpu_memory=None) -> tuple[ModelSpec, GpuSpec]:
    spec = model if isinstance(model, ModelSpec) else catalog.load_model(model)
    g = gpu if isinstance(gpu, GpuSpec) else catalog.load_gpu(gpu, gpu_memory)
    return spec, g


def plan_finetune(
    model: str | ModelSpec,
    method: str = "lora",
    gpu: str | GpuSpec = "h100-80gb",
    data: str | int | float = "1GB",
    *,
    deadline: str | float = "24h",
    epochs: float | str = 1.0,
    language: str = "en",
    tokenizer: str | None = None,
    packing: bool = True,
    gpus: int | None = None,
    seq_len: int = 4096,
    micro_batch: int | None = None,
    gradient_checkpointing: bool | None = None,
    precision: str = "mixed-bf16",
    optimizer: str = "adamw",
    zero: int | None = None,
    offload: str | None = None,
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    lora_rank: int = 16,
    lora_targets: str = "all-linear",
    framework: str = DEFAULT_FRAMEWORK,
    gpu_memory: str | None = None,
    assumptions: Assumptions | Mapping | None = None,
    optimize: str = "cost",
    global_batch: int | None = None,
) -> FinetunePlan:
    """Plan a fine-tuning run: the GPU count and layout that fit, meet the deadline and minimise
    ``optimize`` (``cost``: the cheapest, default; ``time``: the fastest; ``gpus``: the fewest GPUs).

    ``gpus`` fixes the count (the best layout on exactly that many GPUs is evaluated); other
    ``None`` arguments are searched. ``global_batch`` sets the sequences per optimizer step (default
    ``global_batch_tokens`` / ``seq_len``); it caps data parallelism × micro-batch. Raises
    ``ScenarioError`` on bad input (one line naming the accepted forms); "does not fit" and "misses the
    deadline" are results, not errors.
    """
    a = Assumptions.of(assumptions)
    one_of(optimize, OPTIMIZE, "optimize")
    spec, g = _resolve(model, gpu, gpu_memory)
    req = Request(method=method, precision=precision, optimizer=optimizer, seq_len=seq_len, lora_rank=lora_rank,
                  lora_targets=lora_targets, framework=framework, micro_batch=micro_batch,
                  gradient_checkpointing=gradient_checkpointing,
                  zero=zero, offload=offload, tp=tp, pp=pp, ep=ep, global_batch=global_batch)
    check_fixed_layout(spec, req)
    dl = parse_duration_s(deadline)
    ds = dataset_size(data, spec, language=language, tokenizer=tokenizer, epochs=epochs, packing=packing,
                      assumptions=a)
    if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1):
        raise ScenarioError(f"gpus must be a positive integer, got {gpus!r}")
    ctx = plan_context(spec, g, req, a)
    return _plan(ctx, ds, dl, gpus, optimize)


def _plan(ctx: PlanContext, ds: DatasetSize, deadline_s: float, fixed_gpus: int | None,
          optimize: str = "cost") -> FinetunePlan:
    seqs = max(1, math.ceil(ds.train_tokens / ctx.seq_len))
    raw = ds.raw_bytes if ds.unit == "bytes" else 0.0
    f = search(ctx, seqs, ds.train_tokens, raw, deadline_s, fixed_gpus, optimize)
    if f.shape is None:
        return replace(_no_fit_plan(ctx, ds, deadline_s, f.gpus, searched=f.searched), optimize=optimize)
    return replace(_make_plan(ctx, ds, deadline_s, f.gpus, f.shape, f.micro_batch, searched=f.searched),
                   optimize=optimize)




def _make_plan(ctx: PlanContext, ds: DatasetSize, deadline_s: float, n: int, sh: Shape, mb: int, *,
               searched: bool) -> FinetunePlan:
    zero = sh.zero
    mem = ctx.memory(sh.tp, sh.pp, sh.dp, sh.ep, zero, sh.offload, sh.gc, mb)
    shape = replace(sh, zero=zero, coef=None, io=None, fit_mb=None)
    tb = time_breakdown(ctx, sh, mb, n, ds)
    seqs = max(1, math.ceil(ds.train_tokens / ctx.seq_len))
    _, ga, mb_eff = data_terms(ctx, seqs, sh.dp, mb)
    layout = TrainingLayout(sh.tp, sh.pp, sh.dp, sh.ep, zero, sh.offload, mb, ga, sh.gc)
    fpt = ctx.flop[sh.gc].train
    train_flop = ds.train_tokens * fpt
    hw = ctx.tokens_per_s_per_gpu(sh.tp, sh.pp, sh.gc, mb_eff) * fpt
    meets = tb.total_s <= deadline_s
    cl = _cluster_plan(ctx, ds, deadline_s, n, shape, mb, mem, tb)
    node = ctx.node(n)
    cost = cluster.cost_usd(cl.nodes, tb.total_s / SECONDS_PER_HOUR, node)
    limit = "" if meets else _limit_text(ctx, n, layout, tb, deadline_s, searched)
    notes = []
    if ds.unit == "bytes" and ds.train_tokens < ctx.seq_len:
        notes.append(f"the dataset ({ds.text_tokens:,.0f} tokens) is shorter than one {ctx.seq_len}-token sequence")
    rng = _range(ctx, mem)
    notes.append(f"fits decided on the high end of the memory range ({rng.high / 2**30:,.1f} GiB per GPU: "
                 f"{rng.high_ratio:.2f} × the estimate, from out-of-sample residuals of {rng.basis}) plus a "
                 f"{float(ctx.assumptions['planner_memory_margin_fraction']):.0%} margin")
    if sh.offload == "optimizer+params":
        notes.append(f"parameters live in host RAM (ZeRO-3 parameter offload, ZeRO-Infinity style) and are "
                     f"streamed to the GPUs over PCIe for every pass: {cl.ram_bytes / 2**30:,.0f} GiB of host RAM "
                     f"in all; slow per token, chosen because it needs the fewest GPUs")
    return FinetunePlan(
        model=ctx.spec.slug, method=ctx.request.method, gpu=ctx.gpu.slug, precision=ctx.request.precision,
        optimizer=ctx.request.optimizer, seq_len=ctx.seq_len,
        lora_rank=ctx.request.lora_rank if ctx.request.method != "full" else None,
        lora_targets=ctx.request.lora_targets if ctx.request.method != "full" else None,
        params_total=ctx.params_total, trainable_params=ctx.trainable_params, gpus=n, layout=layout, memory=mem,
        fits=True, fit_reason="", dataset=ds, train_flop=train_flop, train_flop_per_token=fpt,
        hardware_flop_per_s_per_gpu=hw, time=tb, deadline_s=deadline_s, meets_deadline=meets, cluster=cl,
        cost_usd=cost, searched=searched, limit=limit, notes=tuple(notes), framework=ctx.request.framework,
        memory_range=rng)


def _no_fit_plan(ctx: PlanContext, ds: DatasetSize, deadline_s: float, n: int, *, searched: bool) -> FinetunePlan:
    """Nothing fits: the least-memory layout on ``n`` GPUs (at the pinned micro-batch) with its memory, the
    reason, and what would fit instead. No bill of materials and no cost: there is nothing to buy."""
    req = ctx.request
    mb = req.micro_batch or 1
    least = least_memory_shape(ctx, n, mb)
    if least is None:
        zero = req.zero if req.zero is not None else (3 if n > 1 else 0)
        sh = Shape(req.tp or 1, req.pp or 1, max(1, n // ((req.tp or 1) * (req.pp or 1))), req.ep or 1, zero,
                   req.offload or "none", req.gradient_checkpointing is not False)
        mem = None
        reason = f"no valid layout of {ctx.spec.slug} on {n} × {ctx.gpu.slug}" + _pins_text(req)
    else:
        sh, mem = least
        reason = mem.reason or "does not fit"
        need = mem.reserved + mem.overhead
        if mem.fits and need > ctx.fit_memory_bytes:  # the estimate fits, its range's high end does not
            rng = _range(ctx, mem)
            reason = (f"needs {need / 2**30:.1f} GiB per GPU, up to {need * rng.high_ratio / 2**30:.1f} GiB at the high "
                      f"end of its range ({rng.basis}) plus a "
                      f"{float(ctx.assumptions['planner_memory_margin_fraction']):.0%} margin, but {ctx.gpu.name} has "
                      f"{ctx.gpu.memory_bytes / 2**30:.1f} GiB")
        elif mem.fits and sh.offload != "none":   # fits the GPU, but the offloaded states exceed the host RAM
            reason = "offloaded states exceed the node's usable host RAM"
        elif mem.fits:
            reason = f"the layouts allowed{_pins_text(req) or ''} do not fit on {n} × {ctx.gpu.slug}"
    where = f"up to {n} × {ctx.gpu.slug}" if searched else f"on {n} × {ctx.gpu.slug}"
    layout = TrainingLayout(sh.tp, sh.pp, sh.dp, sh.ep, sh.zero, sh.offload, mb, 1, sh.gc)
    fpt = ctx.flop[sh.gc].train
    would = what_would_fit(ctx, ds, deadline_s, n, searched)
    return FinetunePlan(
        model=ctx.spec.slug, method=req.method, gpu=ctx.gpu.slug, precision=req.precision,
        optimizer=req.optimizer, seq_len=ctx.seq_len,
        lora_rank=req.lora_rank if req.method != "full" else None,
        lora_targets=req.lora_targets if req.method != "full" else None,
        params_total=ctx.params_total, trainable_params=ctx.trainable_params, gpus=n, layout=layout, memory=mem,
        fits=False, fit_reason=f"no layout fits {where}: {reason}", dataset=ds,
        train_flop=ds.train_tokens * fpt, train_flop_per_token=fpt, hardware_flop_per_s_per_gpu=0.0, time=None,
        deadline_s=deadline_s, meets_deadline=False, cluster=None, cost_usd=None, searched=searched,
        limit=f"memory: no layout fits {where}", notes=(), would_fit=would, framework=ctx.request.framework,
        memory_range=_range(ctx, mem) if mem is not None else None)


def _range(ctx: PlanContext, mem) -> MemoryRange:
    """The device-level total's range from the out-of-sample residuals of (method × framework)."""
    return memory_range(mem.total, ctx.request.method, ctx.request.framework, ctx.gpu.memory_bytes, ctx.assumptions)


_PINS = ("micro_batch", "zero", "offload", "tp", "pp", "ep", "gradient_checkpointing")


def _pins_text(req: Request) -> str:
    pins = [f"{k.replace('_', '-')} {getattr(req, k)}" for k in _PINS if getattr(req, k) is not None]
    return f" with {', '.join(pins)}" if pins else ""


def what_would_fit(ctx: PlanContext, ds: DatasetSize, deadline_s: float, n: int, searched: bool) -> str:
    """One sentence on the nearest thing that fits when nothing does: the same GPUs without the pinned
    layout choices, more GPUs of the same type, or a lighter method (LoRA, then QLoRA)."""
    seqs = max(1, math.ceil(ds.train_tokens / ctx.seq_len))
    raw = ds.raw_bytes if ds.unit == "bytes" else 0.0
    req = ctx.request
    tries: list[tuple[str, Request, int | None]] = []
    if any(getattr(req, k) is not None for k in _PINS):
        tries.append((f"without{_pins_text(req)[5:]}", replace(req, **{k: None for k in _PINS}), n))
    if not searched:
        tries.append(("more GPUs", req, None))
    if req.method == "full":
        tries.append(("LoRA instead of full fine-tuning", replace(req, method="lora"), None))
    if req.method in ("full", "lora"):
        tries.append(("QLoRA", replace(req, method="qlora", precision="mixed-bf16"), None))
    for label, r, fixed in tries:
        try:
            c = plan_context(ctx.spec, ctx.gpu, r, ctx.assumptions)
        except ScenarioError:
            continue
        f = search(c, seqs, ds.train_tokens, raw, deadline_s, fixed, "gpus")
        if f.shape is not None:
            sh = f.shape
            return (f"{label}: {f.gpus} × {ctx.gpu.slug} fit (tp {sh.tp} × pp {sh.pp} × dp {sh.dp}"
                    + (f", ep {sh.ep}" if sh.ep > 1 else "")
                    + f", ZeRO-{sh.zero}, offload {sh.offload}, micro-batch {f.micro_batch})")
    return f"nothing tried fits on up to {ctx.gpu_counts[-1]} × {ctx.gpu.slug}: choose a GPU with more memory"


def _limit_text(ctx: PlanContext, n: int, layout: TrainingLayout, tb: TimeBreakdown, deadline_s: float,
                searched: bool) -> str:
    """One sentence on what keeps a plan from the deadline."""
    h = tb.total_s / SECONDS_PER_HOUR
    dl = deadline_s / SECONDS_PER_HOUR
    if tb.io_s >= deadline_s:
        return (f"I/O: loading the model, tokenizing and saving checkpoints alone take "
                f"{tb.io_s / SECONDS_PER_HOUR:,.1f} h of the {dl:g} h deadline")
    parts = {"communication": tb.comm_s, "pipeline bubble": tb.bubble_s, "offloaded optimizer step": tb.offload_s,
             "batch granularity": tb.quantization_s, "I/O": tb.io_s, "compute": tb.compute_s}
    if not searched:
        if tb.compute_s > deadline_s:
            return (f"{n} GPUs take {h:,.1f} h (deadline {dl:g} h); compute alone is "
                    f"{tb.compute_s / SECONDS_PER_HOUR:,.1f} h, so more GPUs are needed")
        over = max((k for k in parts if k != "compute"), key=parts.get)
        return (f"{n} GPUs take {h:,.1f} h (deadline {dl:g} h); compute is "
                f"{tb.compute_s / SECONDS_PER_HOUR:,.1f} h and {over} adds {parts[over] / SECONDS_PER_HOUR:,.1f} h")
    worst = max(parts, key=parts.get)
    share = parts[worst] / tb.total_s if tb.total_s else 0.0
    why = []
    if n >= ctx.gpu_counts[-1]:
        why.append(f"the planner stops at max_gpus = {ctx.gpu_counts[-1]}")
    if layout.dp * layout.micro_batch >= ctx.global_batch_seqs:
        why.append(f"data parallelism is capped by the global batch ({ctx.global_batch_seqs} sequences of {ctx.seq_len} tokens)")
    if not why:
        why.append("more GPUs make it slower: per-step communication and pipeline overheads outgrow the "
                   "shrinking compute")
    return (f"best achievable {h:,.1f} h on {n} GPUs (deadline {dl:g} h); {worst} is {share:.0%} of the run, "
            f"scaling efficiency {tb.scaling_efficiency:.0%}; " + "; ".join(why))


def _cluster_plan(ctx: PlanContext, ds: DatasetSize, deadline_s: float, n: int, sh: Shape, mb: int, mem: Any,
                  tb: TimeBreakdown | None) -> ClusterPlan:
    a = ctx.assumptions
    node = ctx.node(n)
    nodes = cluster.nodes_for(n, node)
    gpn_used = min(n, node.gpus_per_node)
    notes: list[str] = []
    # CPU
    adam = adam_cores_per_gpu(ctx, node) * n if sh.offload != "none" else 0.0
    cpu = cluster.cpu_cores_required(n, nodes, ds.raw_bytes if ds.unit == "bytes" else 0.0, deadline_s, a, adam)
    # RAM
    if mem is not None:
        ram = ctx.host_ram_per_node(mem, gpn_used, sh.tp, sh.pp, sh.dp, sh.zero)
    else:
        ram = cluster.host_ram_required_per_node_bytes(gpn_used, ctx.gpu.memory_bytes, 0.0,
                                                       ctx.checkpoint_native_bytes, a)
    # storage
    tokenized = ds.text_tokens * float(a["tokenized_bytes_per_token"])
    storage = cluster.storage_required_bytes(ds.raw_bytes, tokenized, ctx.checkpoint_native_bytes,
                                             ctx.checkpoint_bytes, ctx.final_model_bytes(), a)
    # network: inter-node bytes per node per step, against the step's compute
    net_parts = {"inter_node_bytes_per_step_per_gpu": 0.0, "step_compute_s": 0.0, "comm_gbps": 0.0,
                 "ingest_gbps": 0.0}
    if tb is not None:
        steps = max(1, tb.steps)
        per_gpu = inter_node_bytes_per_step(ctx, sh, mb, n, tb.micro_steps_per_step)
        step_compute = tb.compute_s / steps
        net_parts["inter_node_bytes_per_step_per_gpu"] = per_gpu
        net_parts["step_compute_s"] = step_compute
        if step_compute > 0 and nodes > 1:
            net_parts["comm_gbps"] = cluster.gbps(per_gpu * gpn_used / step_compute)
    ingest_window = float(a["tokenization_time_fraction"]) * deadline_s
    net_parts["ingest_gbps"] = cluster.gbps((ds.raw_bytes + ctx.checkpoint_native_bytes) / nodes / ingest_window)
    # The link to provision per node: what the communication model needs to hide behind compute (or the
    # data ingest), rounded up to a real NIC speed, never below the node's own NICs (what one rents or buys
    # comes with them). Neighbouring plans on the same node therefore show the same network.
    need = max(net_parts["comm_gbps"], net_parts["ingest_gbps"])
    net_parts["needed_gbps"] = need
    net_parts["needed_nic_gbps"] = cluster.nic_gbps_at_least(need)
    net_parts["node_nic_gbps"] = node.network_gbps
    network = cluster.provisioned_network_gbps(need, node)
    rdma = cluster.rdma_needed(net_parts["comm_gbps"], nodes, a)
    if node.instance is None:
        notes.append(f"no cloud instance with {ctx.gpu.slug} in the catalog: generic {node.gpus_per_node}-GPU "
                     f"nodes with {node.network_gbps:g} Gbps assumed, no price")
    else:
        if node.vcpus is not None and cpu["total"] > node.vcpus * nodes:
            notes.append(f"needs {cpu['total']:.0f} vCPUs, the {nodes} × {node.instance.name} have "
                         f"{node.vcpus * nodes}")
        if node.ram_bytes is not None and ram["total"] > node.ram_bytes:
            notes.append(f"needs {ram['total'] / 2**30:,.0f} GiB host RAM per node, {node.instance.name} has "
                         f"{node.ram_bytes / 2**30:,.0f} GiB")
        if not node.network_published:
            notes.append(f"{node.instance.provider} does not publish the network of {node.instance.name}: "
                         f"{network:g} Gbps per node assumed (a generic node of this GPU); ask the provider")
        elif rdma and not node.instance.has_rdma:
            notes.append(f"{net_parts['comm_gbps']:,.0f} Gbps per node calls for RDMA; {node.instance.name} "
                         f"has none, so communication runs at {node.network_gbps:g} Gbps")
        if net_parts["comm_gbps"] > node.network_gbps:
            notes.append(f"communication needs {net_parts['comm_gbps']:,.0f} Gbps per node to hide behind compute; "
                         f"{node.instance.name} has {node.network_gbps:g} Gbps, the rest is exposed in the time")
    return ClusterPlan(
        nodes=nodes, gpus_per_node=node.gpus_per_node, cpu_cores=int(cpu["total"]),
        ram_bytes=int(round(ram["total"] * nodes)), storage_bytes=int(round(storage["total"])),
        network_gbps=round(network, 3), rdma_needed=rdma, instance=node.slug, node=node.to_dict(),
        cpu_cores_per_node=int(math.ceil(cpu["total"] / nodes)), ram_bytes_per_node=int(round(ram["total"])),
        storage_bytes_per_node=int(math.ceil(storage["total"] / nodes)),
        cpu_cores_parts=cpu, ram_per_node_parts=ram, storage_parts=storage, network_parts=net_parts,
        notes=tuple(notes))


def evaluate_training_layout(
    model: str | ModelSpec,
    method: str,
    gpu: str | GpuSpec,
    data: str | int | float,
    *,
    gpus: int,
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    zero: int | None = None,
    offload: str | None = None,
    micro_batch: int | None = None,
    gradient_checkpointing: bool | None = None,
    deadline: str | float = "24h",
    **kwargs: Any,
) -> FinetunePlan:
    """A plan on exactly ``gpus`` GPUs with the given parts of the layout pinned (the rest searched).

    The audit of hand-made tables uses this: "16 × A100, TP=8 + ZeRO-3" becomes
    ``evaluate_training_layout(..., gpus=16, tp=8, zero=3)``.
    """
    return plan_finetune(model, method, gpu, data, deadline=deadline, gpus=gpus, tp=tp, pp=pp, ep=ep, zero=zero,
                         offload=offload, micro_batch=micro_batch, gradient_checkpointing=gradient_checkpointing,
                         **kwargs)


def gpu_choices(gpu: str) -> list[str]:
    """The GPU types a ``--gpu`` value names: ``any`` (every catalog GPU that some on-demand instance
    carries, so that plans can be priced and ranked), a comma list, or one slug."""
    text = str(gpu).strip()
    if text.lower() == "any":
        return sorted({i.gpu for i in instances.instance_catalog().values() if i.price_kind == "on-demand"})
    names = [g.strip() for g in text.split(",") if g.strip()]
    if not names:
        raise ScenarioError(f"--gpu {gpu!r} names no GPU; give a slug, a comma list or 'any'")
    return [catalog.load_gpu(g).slug for g in names]


def rank_key(p: FinetunePlan, optimize: str) -> tuple:
    """How ``rank_plans`` orders plans: fitting, then meeting the deadline, then the objective (unpriced
    plans after priced ones for cost), then time."""
    inf = math.inf
    hours = p.hours if p.hours is not None else inf
    head = (not p.fits, not p.meets_deadline)
    if optimize == "cost":
        return head + (p.cost_usd is None, p.cost_usd if p.cost_usd is not None else inf, hours)
    if optimize == "gpus":
        return head + (p.gpus, hours)
    return head + (hours,)


def rank_plans(model: str | ModelSpec, method: str, gpu_types: list[str], data: str | int | float, *,
               optimize: str = "cost", **kwargs: Any) -> list[FinetunePlan]:
    """A plan per GPU type in ``gpu_types``, best first (``rank_key``): what ``finetune --gpu any`` prints."""
    plans = [plan_finetune(model, method, g, data, optimize=optimize, **kwargs) for g in gpu_types]
    return sorted(plans, key=lambda p: rank_key(p, optimize))

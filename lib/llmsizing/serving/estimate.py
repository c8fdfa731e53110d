"""Serving sizing: memory per GPU, GPU count and layout, KV capacity and speed for N concurrent users.

``serve`` resolves the request (``plan.py``), finds the smallest layout whose every GPU holds the users'
KV cache under the engine's own memory rules (``engines.py``; what each GPU holds: ``sharding.py``), and
estimates decode tokens/s and TTFT (``roofline.py``).

"Does not fit" is a result (``fits`` false with a ``reason`` and what it ``needs``), never an exception;
bad input raises ``ScenarioError``/``CatalogError`` with one line. Speeds are roofline estimates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.errors import ScenarioError
from llmsizing.choices import SPECULATIVE
from llmsizing.serving import deploy, launch, roofline, throughput
from llmsizing.serving.engines import LayoutMemory, evaluate_layout
from llmsizing.serving.plan import (KV_PRECISION_BYTES, Plan, candidate_layouts, check_positive_int,
                                    checkpoint_precision_name, layout_for_gpus, make_plan, resolve_assumptions,
                                    snapshot)
from llmsizing.serving.sharding import Layout, weight_table
from llmsizing.specs import GpuSpec, ModelSpec
from llmsizing.weights import weight_bytes
from llmsizing.units import GiB


# ----------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class MemoryPerGpu:
    """Memory of the most loaded GPU, in bytes."""

    weights: float
    kv_cache: float
    activations: float
    overhead: float

    @property
    def total(self) -> float:
        """weights + kv_cache + activations + overhead."""
        return self.weights + self.kv_cache + self.activations + self.overhead

    def to_dict(self) -> dict[str, int]:
        return {"weights": round(self.weights), "kv_cache": round(self.kv_cache),
                "activations": round(self.activations), "overhead": round(self.overhead), "total": round(self.total)}


@dataclass(frozen=True)
class ServingEstimate:
    """Everything ``llmsizing serve`` reports for one scenario. Sizes in bytes, times in seconds."""

    model: str
    gpu: str
    engine: str
    precision: str
    kv_precision: str
    mla_cache: str | None
    users: int
    context_tokens: int
    prompt_tokens: int
    max_model_len: int
    params_total: int
    params_active: int
    weights_bytes_total: float
    kv_cache_bytes_per_token: float
    kv_cache_bytes_per_token_per_gpu: float
    kv_cache_bytes_per_user: float
    layout: Layout
    memory_per_gpu: MemoryPerGpu
    gpu_memory_bytes: int
    usable_memory_bytes: float
    memory_fraction: float
    fits: bool
    reason: str
    needs: Layout | None
    kv_cache_capacity_tokens: int
    max_concurrent_users: int
    block_size: int
    max_num_batched_tokens: int
    decode_tokens_per_s_per_user: float | None
    decode_tokens_per_s_total: float | None
    ttft_s: float | None
    decode_context_tokens: int
    throughput: dict[str, Any] | None = None
    launch_command: str | None = None
    speculative: str | None = None
    disaggregation: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    assumptions: tuple[dict, ...] = field(default=(), compare=False)

    @property
    def gpus(self) -> int:
        return self.layout.gpus

    def to_dict(self) -> dict[str, Any]:
        """The ``serve --json`` object (contract keys first; sizes as integer bytes)."""
        lay = self.layout
        return {
            "model": self.model, "gpu": self.gpu, "precision": self.precision, "kv_precision": self.kv_precision,
            "users": self.users, "context_tokens": self.context_tokens,
            "params_total": self.params_total, "params_active": self.params_active,
            "kv_cache_bytes_per_token": round(self.kv_cache_bytes_per_token),
            "gpus": lay.gpus, "tensor_parallel": lay.tensor_parallel,
            "memory_per_gpu": self.memory_per_gpu.to_dict(),
            "gpu_memory_bytes": self.gpu_memory_bytes, "fits": self.fits,
            "kv_cache_capacity_tokens": self.kv_cache_capacity_tokens,
            "max_concurrent_users": self.max_concurrent_users,
            "decode_tokens_per_s_per_user": self.decode_tokens_per_s_per_user,
            "ttft_s": self.ttft_s,
            "output_tokens_per_s": self.throughput["output_tokens_per_s"] if self.throughput else None,
            "tpot_s": self.throughput["tpot_s"] if self.throughput else None,
            "ttft_s_p90": self.throughput["ttft_s"]["p90"] if self.throughput else None,
            "launch_command": self.launch_command,
            # additions
            "engine": self.engine, "pipeline_parallel": lay.pipeline_parallel,
            "expert_parallel": lay.expert_parallel, "nodes": lay.nodes,
            "gpus_per_node": min(lay.gpus, lay.gpus_per_node),
            "reason": self.reason, "needs": self.needs.to_dict() if self.needs else None,
            "prompt_tokens": self.prompt_tokens, "output_tokens": self.context_tokens - self.prompt_tokens,
            "max_model_len": self.max_model_len, "mla_cache": self.mla_cache,
            "weights_bytes_total": round(self.weights_bytes_total),
            "kv_cache_bytes_per_token_per_gpu": round(self.kv_cache_bytes_per_token_per_gpu),
            "kv_cache_bytes_per_user": round(self.kv_cache_bytes_per_user),
            "usable_memory_bytes": round(self.usable_memory_bytes), "memory_fraction": self.memory_fraction,
            "block_size": self.block_size, "max_num_batched_tokens": self.max_num_batched_tokens,
            "decode_tokens_per_s_total": self.decode_tokens_per_s_total,
            "decode_context_tokens": self.decode_context_tokens,
            "throughput": self.throughput, "speculative": self.speculative, "attention_dp": lay.attention_dp,
            "disaggregation": self.disaggregation,
            "speed_note": "speeds are roofline estimates (bandwidth and FLOP over peak, scaled by named efficiency "
                          "factors), not measurements; decode_tokens_per_s_* count decode only, output_tokens_per_s, "
                          "tpot_s and ttft_s are the steady state with prompts prefilled in chunks between decode "
                          "steps (continuous batching) and the engine's fixed TTFT",
            "notes": list(self.notes),
            "assumptions": [dict(a) for a in self.assumptions],
        }



# ----------------------------------------------------------------------------- layout search


def smallest_fitting_layout(plan: Plan) -> tuple[LayoutMemory | None, LayoutMemory]:
    """(first layout that fits or None, the last layout tried)."""
    last = None
    for lay in candidate_layouts(plan):
        mem = evaluate_layout(plan, lay)
        last = mem
        if mem.fits(plan.users):
            return mem, mem
    assert last is not None
    return None, last


# ----------------------------------------------------------------------------- public API


def _reason(plan: Plan, mem: LayoutMemory, fits: bool, needs: Layout | None) -> str:
    """One sentence: why the layout fits or not, and what it needs instead."""
    lay = mem.layout
    s = mem.worst_stage(plan.users)
    where = (f"{lay.gpus} x {plan.gpu.slug} (" + (f"attention dp {lay.tensor_parallel} x ep {lay.expert_parallel}"
                                                  if lay.attention_dp else f"tp {lay.tensor_parallel}")
             + (f" x pp {lay.pipeline_parallel}" if lay.pipeline_parallel > 1 else "") + ")")
    need_kv = -(-plan.users // lay.kv_replicas) * s.kv_per_user
    if fits:
        return (f"fits on {where}: KV cache for {plan.users} users x {plan.context_tokens:,} tokens needs "
                f"{need_kv / GiB:,.1f} GiB per GPU of the {max(0.0, s.kv_pool) / GiB:,.1f} GiB the engine "
                f"allocates (room for {mem.max_users()} users at this context)")
    if s.headroom_short > 0:
        text = (f"on {where} the memory outside the engine's budget (CUDA context, CUDA graphs, activations) "
                f"is {s.headroom_short / GiB:,.1f} GiB short; lower the memory fraction or use --enforce-eager")
    elif s.kv_pool <= 0:
        text = (f"on {where} the weights ({s.weights / GiB:,.1f} GiB per GPU) plus activations and runtime "
                f"memory exceed the {mem.usable / GiB:,.1f} GiB the engine may use per GPU "
                f"({mem.fraction:.2f} x {plan.runtime_memory_bytes / GiB:,.1f} GiB)")
    elif mem.capacity_tokens() < mem.min_capacity_tokens:
        text = (f"on {where} the engine's KV cache ({mem.capacity_tokens():,} tokens) cannot hold one "
                f"max_model_len sequence of {mem.min_capacity_tokens:,} tokens, so it refuses to start")
    else:
        text = (f"on {where} the KV cache for {plan.users} users x {plan.context_tokens:,} tokens needs "
                f"{need_kv / GiB:,.1f} GiB per GPU but only {s.kv_pool / GiB:,.1f} GiB is left after weights "
                f"and runtime memory (room for {mem.max_users()} users at this context)")
    if needs is not None:
        text += (f"; needs {needs.gpus} GPUs ({needs.nodes} node{'s' if needs.nodes > 1 else ''}, "
                 f"tp {needs.tensor_parallel} x pp {needs.pipeline_parallel})")
    else:
        node = plan.gpu.node_gpus_max or plan.a["node_gpus_default"]
        limit = (f"one node ({node} GPUs; {plan.engine} does not span nodes)"
                 if plan.engine in ("transformers", "llama.cpp")
                 else f"{plan.a['serving_max_nodes_search']} nodes x {node} GPUs")
        text += f"; does not fit on any layout up to {limit}"
    return text


def serve(model: str | ModelSpec, gpu: str | GpuSpec, *, gpus: int | None = None, precision: str | None = None,
          kv_precision: str | None = None, users: int | str | None = None, context_tokens: int | None = None,
          prompt_tokens: int | None = None, engine: str = "vllm", gpu_memory_utilization: float | None = None,
          gpu_memory: str | None = None, mla_cache: str | None = None, max_model_len: int | None = None,
          max_num_batched_tokens: int | None = None, max_num_seqs: int | None = None,
          enforce_eager: bool = False, speed: bool = True, attention_dp: bool = False, ep: int | None = None,
          speculative: str | None = None, disaggregate: str | None = None,
          assumptions: Assumptions | Mapping[str, Any] | None = None) -> ServingEstimate:
    """Size serving ``model`` on ``gpu`` for ``users`` concurrent users at ``context_tokens`` each.

    Without ``gpus`` the smallest layout that fits is chosen (TP within a node, then PP or TP across
    nodes); with ``gpus`` that layout is evaluated and ``needs`` says what would fit instead.
    ``users="max"``: the most users the layout's KV cache and the engine's batch cap allow (the
    max-throughput point). ``attention_dp`` (+ ``ep``): attention data parallel with expert parallel;
    ``speculative``: mtp | eagle; ``disaggregate``: 'P:D' prefill and decode GPUs (the layout is the
    decode pool of D GPUs).
    """
    a = resolve_assumptions(assumptions)
    users_max = isinstance(users, str) and users.strip().lower() == "max"
    if isinstance(users, str) and not users_max:
        raise ScenarioError(f"users must be a positive integer or 'max', got {users!r}")
    if speculative not in (None, *SPECULATIVE):
        raise ScenarioError(f"speculative {speculative!r} is not one of: {', '.join(SPECULATIVE)}")
    speculative = None if speculative == "none" else speculative
    if ep is not None and not attention_dp:
        check_positive_int("ep", ep)
    plan = make_plan(model, gpu, engine=engine, precision=precision, kv_precision=kv_precision,
                     users=1 if users_max else users,
                     context_tokens=context_tokens, prompt_tokens=prompt_tokens,
                     gpu_memory_utilization=gpu_memory_utilization, gpu_memory=gpu_memory, mla_cache=mla_cache,
                     max_model_len=max_model_len, max_num_batched_tokens=max_num_batched_tokens,
                     max_num_seqs=max_num_seqs, enforce_eager=enforce_eager, assumptions=a)
    if speculative == "mtp":
        if not plan.spec.mtp_layers:
            raise ScenarioError(f"--speculative mtp needs a model with multi-token-prediction modules (DeepSeek-V3/R1); "
                                f"{plan.spec.slug} has none: use --speculative eagle")
        draft = weight_bytes(plan.spec, plan.precision, include_mtp=True) - weight_bytes(plan.spec, plan.precision)
        plan = replace(plan, draft_weight_bytes=draft)
    prefill_gpus = None
    if disaggregate is not None:
        prefill_gpus, gpus = deploy.parse_disaggregate(disaggregate)
    layout = None
    if attention_dp:
        layout = deploy.attention_dp_layout(plan, gpus, ep)
    elif ep is not None:
        lay = layout_for_gpus(plan, gpus or plan.gpu.node_gpus_max or a["node_gpus_default"])
        if not plan.spec.is_moe:
            raise ScenarioError(f"--ep {ep}: {plan.spec.slug} is dense (no experts to split)")
        if ep != lay.tensor_parallel:
            raise ScenarioError(f"--ep {ep} without --attention-dp: experts are split over the tensor-parallel "
                                f"group ({lay.tensor_parallel} GPUs); add --attention-dp for other expert-parallel "
                                "sizes")
        layout = lay
    if users_max:
        probe = estimate_plan(plan, gpus=gpus, speed=False, assumptions=a, layout=layout)
        mem = evaluate_layout(plan, probe.layout)
        best = throughput.max_batch_users(plan, mem, plan.context_tokens)
        if best <= 0:
            return probe
        plan = replace(plan, users=best)
        layout = probe.layout
    return estimate_plan(plan, gpus=gpus, speed=speed, assumptions=a, layout=layout, speculative=speculative,
                         prefill_gpus=prefill_gpus)


def estimate_plan(plan: Plan, *, gpus: int | None = None, speed: bool = True,
                  assumptions: Assumptions | None = None, layout: Layout | None = None,
                  speculative: str | None = None, prefill_gpus: int | None = None) -> ServingEstimate:
    """Evaluate a resolved plan: choose or check the layout, then memory, capacity and speed."""
    if assumptions is None:
        assumptions = Assumptions()
    needs = None
    if layout is not None:
        mem = evaluate_layout(plan, layout)
        fits = mem.fits(plan.users)
    elif gpus is None:
        found, last = smallest_fitting_layout(plan)
        mem = found or last
        fits = found is not None
    else:
        mem = evaluate_layout(plan, layout_for_gpus(plan, gpus))
        fits = mem.fits(plan.users)
        if not fits:
            found, _ = smallest_fitting_layout(plan)
            needs = found.layout if found else None
    spec = plan.spec
    s = mem.worst_stage(plan.users)
    lay = mem.layout
    memory = MemoryPerGpu(weights=s.weights, kv_cache=-(-plan.users // lay.kv_replicas) * s.kv_per_user,
                          activations=s.activations,
                          overhead=s.overhead)
    decode = total = ttft = None
    decode_ctx = roofline.decode_context_tokens(plan.prompt_tokens, plan.context_tokens)
    thr = disagg = None
    if speed and fits:
        ra = snapshot(assumptions, roofline.ROOFLINE_ASSUMPTIONS + throughput.THROUGHPUT_ASSUMPTIONS)
        r = roofline.estimate_speed(plan, mem, ra)
        decode, total = r.decode_tokens_per_s_per_user, r.decode_tokens_per_s_total
        w = throughput.Workload(plan.users, plan.prompt_tokens, plan.context_tokens - plan.prompt_tokens)
        if prefill_gpus:
            t, disagg = deploy.disaggregated(plan, mem, prefill_gpus, w, ra, speculative)
        else:
            t = throughput.steady_state(plan, mem, w, ra, speculative)
        if mem.layout.attention_dp or speculative:
            decode = 1.0 / t.tpot_s_mean if not prefill_gpus else 1.0 / t.tpot_s_mean
            total = decode * plan.users
        thr, ttft = t.to_dict(), t.ttft_s_mean
    kv_full = A.kv_cache_bytes_per_token(spec, plan.kv_bytes, plan.mla_mode)
    table = weight_table(spec, plan.precision)
    notes = list(plan.notes)
    if spec.mtp_layers and not plan.draft_weight_bytes:
        notes.append("Multi-token-prediction (MTP) weights are not loaded: engines load them only for "
                     "speculative decoding.")
    if plan.draft_weight_bytes:
        notes.append(f"The MTP module's weights ({plan.draft_weight_bytes / GiB:,.1f} GiB in all) are loaded for "
                     "speculative decoding.")
    if lay.attention_dp:
        notes.append(f"Attention data parallel x{lay.tensor_parallel}: each GPU runs attention for its own "
                     f"requests and holds their KV cache; routed experts split over {lay.expert_parallel} GPUs.")
    elif lay.expert_parallel > 1:
        notes.append(f"Experts are split over the {lay.expert_parallel} GPUs of each tensor-parallel group "
                     "(--enable-expert-parallel); memory is the same as tensor-parallel experts.")
    if not plan.embeddings_on_gpu:
        notes.append("llama.cpp keeps the token-embedding matrix in host memory.")
    if speculative:
        notes.append(f"Speculative decoding ({speculative}): tokens per step and acceptance are named assumptions "
                     "(speculative_draft_tokens, speculative_acceptance_*)."
                     + (" EAGLE needs a trained draft head: add its repository as \"model\" to the speculative "
                        "config of the launch command." if speculative == "eagle" else ""))
    if disagg:
        notes.append(f"Disaggregated: {disagg['prefill_gpus']} prefill GPUs + {disagg['decode_gpus']} decode GPUs; "
                     f"the {disagg['bottleneck']} limits the request rate.")
    used = assumptions.table()
    cmd = launch.launch_command({
        "engine": plan.engine, "model": spec.slug, "tensor_parallel": lay.tensor_parallel,
        "pipeline_parallel": lay.pipeline_parallel, "expert_parallel": lay.expert_parallel,
        "attention_dp": lay.attention_dp, "max_model_len": plan.max_model_len, "context_tokens": plan.context_tokens,
        "kv_precision": plan.kv_precision, "memory_fraction": mem.fraction, "speculative": speculative,
        "speculative_tokens": assumptions["speculative_draft_tokens"] if speculative else 0,
        "users": plan.users, "precision": plan.precision.slug, "disaggregated": bool(disagg)}, spec.hf_id or None)
    return ServingEstimate(
        model=spec.slug, gpu=plan.gpu.slug, engine=plan.engine, precision=plan.precision.slug,
        kv_precision=plan.kv_precision, mla_cache=plan.mla_mode if spec.is_mla else None, users=plan.users,
        context_tokens=plan.context_tokens, prompt_tokens=plan.prompt_tokens, max_model_len=plan.max_model_len,
        params_total=A.params_total(spec), params_active=A.params_active(spec), weights_bytes_total=table.total,
        kv_cache_bytes_per_token=kv_full, kv_cache_bytes_per_token_per_gpu=s.kv_per_token,
        kv_cache_bytes_per_user=s.kv_per_user, layout=lay, memory_per_gpu=memory,
        gpu_memory_bytes=int(plan.gpu.memory_bytes), usable_memory_bytes=mem.usable, memory_fraction=mem.fraction,
        fits=fits, reason=_reason(plan, mem, fits, needs), needs=needs,
        kv_cache_capacity_tokens=mem.capacity_tokens(plan.block_size), max_concurrent_users=mem.max_users(),
        block_size=plan.block_size, max_num_batched_tokens=plan.chunk_tokens,
        decode_tokens_per_s_per_user=decode, decode_tokens_per_s_total=total, ttft_s=ttft,
        decode_context_tokens=decode_ctx, throughput=thr, launch_command=cmd, speculative=speculative, disaggregation=disagg,
        notes=tuple(notes),
        assumptions=tuple({"name": r["name"], "value": r["value"], "unit": r["unit"], "source": r["source"]}
                          for r in used),
    )


def users_memory_comparison(model: str | ModelSpec, *, users: int = 3, context_tokens: int | None = None,
                            precision: str | None = None, kv_precision: str = "bf16",
                            mla_cache: str = "latent") -> dict[str, Any]:
    """Why "N users ≈ N × the weights" is wrong: weights are shared, only the KV cache grows per user.

    Returns whole-model bytes: weights (once), KV per user at the context, total for N users
    (= weights + N · KV), the naive guess N · weights, and their ratio, plus a row per user count.
    """
    a = Assumptions()
    spec = model if isinstance(model, ModelSpec) else catalog.load_model(model)
    users = check_positive_int("users", users)
    context = check_positive_int("context", context_tokens or a["serving_default_context_tokens"])
    p = catalog.load_precision(checkpoint_precision_name(spec, precision or spec.checkpoint_format))
    if kv_precision not in KV_PRECISION_BYTES:
        raise ScenarioError(f"KV-cache precision '{kv_precision}' unknown; choose one of: "
                            f"{', '.join(KV_PRECISION_BYTES)}")
    w = weight_table(spec, p).total
    kv_user = A.kv_cache_bytes(spec, context, KV_PRECISION_BYTES[kv_precision], mla_cache)
    rows = [{"users": n, "weights_bytes": round(w), "kv_cache_bytes": round(n * kv_user),
             "total_bytes": round(w + n * kv_user), "naive_bytes": round(n * w)} for n in range(1, users + 1)]
    return {
        "model": spec.slug, "precision": p.slug, "kv_precision": kv_precision, "context_tokens": context,
        "users": users, "weights_bytes": round(w), "kv_cache_bytes_per_user": round(kv_user),
        "kv_cache_bytes_total": round(users * kv_user), "total_bytes": round(w + users * kv_user),
        "naive_guess_bytes": round(users * w), "naive_over_actual": (users * w) / (w + users * kv_user),
        "rows": rows,
        "explanation": (f"The {w / GiB:,.1f} GiB of weights are loaded once and shared by every user; each "
                        f"user adds only its KV cache ({kv_user / GiB:,.2f} GiB at {context:,} tokens), so "
                        f"{users} users need {(w + users * kv_user) / GiB:,.1f} GiB, not {users} x the weights "
                        f"({users * w / GiB:,.1f} GiB)."),
    }


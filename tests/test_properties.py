"""Property-based tests over the estimators and parsers (issue #8, hypothesis).

Robustness: for any well-typed input (and many ill-typed ones) every public entry point returns a
result or raises the library's own ``SizingError``, never another exception, and a result is
finite, non-negative and printable as strict JSON.

Invariants:

* serving memory per GPU grows with users and with context (same layout);
* fine-tuning memory per GPU grows with micro-batch and sequence length;
* per-GPU memory does not grow when ZeRO-3 spreads the states over more GPUs;
* every total equals the sum of its parts (serving memory, training memory, time, storage, cost);
* training time does not rise when GPUs are added, except when communication grows
  (the ideal compute part always falls).

The planner's own monotonicity in data and deadline is in ``tests/test_planner_properties.py``.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing import choices
from llmsizing.planner import plans as planner
from llmsizing.serving import estimate as serving
from llmsizing.training import memory as training
from llmsizing.training import compute as tc
from llmsizing.assumptions import Assumptions, registry
from llmsizing.choices import ENGINES
from llmsizing.commands.output import strict_json as _clean
from llmsizing.facts import model_summary
from llmsizing.errors import SizingError
from llmsizing.report.scenario import PARAMETERS, Scenario, parse_tokens
from llmsizing.specs import model_spec_from_config
from llmsizing.units import parse_data_size, parse_duration_s, parse_memory_bytes

pytestmark = [pytest.mark.property]

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PARSERS = settings(max_examples=500, deadline=None)

MODELS = tuple(s.slug for s in catalog.list_models())
SMALL_MODELS = ("deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-7b", "deepseek-r1-distill-llama-8b")
GPUS = tuple(g.slug for g in catalog.list_gpus())
PRECISIONS = (None, "", "bf16", "fp16", "fp8", "int8", "int4", "native", "bogus", *catalog.precision_catalog())
# Mostly valid values, some invalid ones: both paths must hold.
usually_none = lambda bad: st.one_of(st.none(), st.none(), st.none(), bad)  # noqa: E731
KV_PRECISIONS = (None, "auto", "bf16", "fp16", "fp8", "q8_0", "q4_0", "int8", "e4m3", "bogus")
NUMERIC_ASSUMPTIONS = tuple(sorted(n for n, a in registry().items()
                                   if isinstance(a.value, (int, float)) and not isinstance(a.value, bool)))


def _strict_json(obj) -> None:
    """What ``--json`` prints: strict JSON (NaN and infinities become null, nothing else is lost)."""
    json.dumps(_clean(obj), allow_nan=False, default=lambda o: o.__dict__ if hasattr(o, "__dict__") else str(o))


def _finite_non_negative(**values: float) -> None:
    for name, v in values.items():
        assert v is not None and math.isfinite(v) and v >= 0, f"{name} = {v!r}"


# ------------------------------------------------------------------ strategies

overrides = st.dictionaries(
    st.sampled_from(NUMERIC_ASSUMPTIONS),
    st.one_of(st.integers(0, 10**7), st.floats(0, 1e7, allow_nan=False), st.floats(0, 1.0)),
    max_size=3,
)


def _assumptions(ov: dict) -> Assumptions | None:
    """An ``Assumptions`` for the overrides, or None when they are out of their domain (also tested)."""
    try:
        return Assumptions(ov)
    except SizingError:
        return None


maybe_int = st.one_of(st.none(), st.integers(-2, 300))


# ------------------------------------------------------------------ robustness


@FAST
@given(
    model=st.sampled_from(MODELS), gpu=st.sampled_from(GPUS), engine=st.sampled_from(ENGINES),
    precision=usually_none(st.sampled_from(PRECISIONS)), kv=usually_none(st.sampled_from(KV_PRECISIONS)),
    users=st.one_of(st.integers(1, 64), st.integers(-1, 10**6)),
    context=st.one_of(st.integers(1, 32768), st.integers(-1, 2**21)),
    gpus=usually_none(st.integers(-2, 300)), util=usually_none(st.floats(allow_nan=True, allow_infinity=True)),
    gpu_memory=usually_none(st.sampled_from(["24GiB", "80GB", "0GiB", "1MiB", "1e9GB", "24", "96 GiB"])),
    mla=usually_none(st.sampled_from(["latent", "decompressed", "bogus"])), ov=overrides,
)
def test_serve_returns_a_result_or_a_sizing_error(model, gpu, engine, precision, kv, users, context, gpus, util,
                                                   gpu_memory, mla, ov):
    a = _assumptions(ov)
    try:
        est = serving.serve(model, gpu, engine=engine, precision=precision, kv_precision=kv, users=users,
                            context_tokens=context, gpus=gpus, gpu_memory_utilization=util, gpu_memory=gpu_memory,
                            mla_cache=mla, assumptions=a)
    except SizingError as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event("estimate" if est.fits else "estimate (does not fit)")
    m = est.memory_per_gpu
    _finite_non_negative(weights=m.weights, kv_cache=m.kv_cache, activations=m.activations, overhead=m.overhead,
                         total=m.total)
    d = est.to_dict()
    _strict_json(d)
    parts = sum(d["memory_per_gpu"][k] for k in ("weights", "kv_cache", "activations", "overhead"))
    assert abs(d["memory_per_gpu"]["total"] - parts) <= 2, "total = sum of the parts (up to rounding)"
    assert est.gpus >= 1
    if est.fits:
        assert est.max_concurrent_users >= est.users


setups = st.builds(
    dict,
    method=st.sampled_from(training.METHODS), precision=st.sampled_from(training.PRECISIONS),
    optimizer=st.sampled_from(training.OPTIMIZERS), seq_len=st.integers(1, 32768),
    micro_batch=st.integers(1, 16), gradient_checkpointing=st.booleans(), lora_rank=st.integers(1, 512),
    lora_targets=st.sampled_from(["all-linear", "all-linear", "attention", "q,v", "q_proj,v_proj", "nonexistent"]),
    zero=st.integers(0, 3), offload=st.sampled_from(["none", "none", "none", *training.OFFLOADS]),
    tp=st.sampled_from([1, 1, 2, 4, 3]), pp=st.sampled_from([1, 1, 2, 4]), dp=st.sampled_from([1, 2, 8]),
    cp=st.sampled_from([1, 1, 2]),
    attention_kernel=st.sampled_from(training.ATTENTION_KERNELS), chunked_cross_entropy=st.booleans(),
    activation_offload=st.booleans(), zero_backend=st.sampled_from(training.ZERO_BACKENDS),
)


@FAST
@given(model=st.sampled_from(MODELS), gpu=st.sampled_from(GPUS), kw=setups, ov=overrides)
def test_finetune_memory_and_time_return_a_result_or_a_sizing_error(model, gpu, kw, ov):
    a = _assumptions(ov)
    spec, g = catalog.load_model(model), catalog.load_gpu(gpu)
    try:
        setup = training.FinetuneSetup(**kw)
        mem = training.finetune_memory(spec, setup, g, a)
        step = tc.step_time(spec, setup, g, a)
    except SizingError:
        event("refused")
        return
    event("estimate")
    _finite_non_negative(weights=mem.weights, gradients=mem.gradients, optimizer=mem.optimizer,
                         activations=mem.activations, buffers=mem.buffers, overhead=mem.overhead,
                         allocated=mem.allocated, reserved=mem.reserved, total=mem.total,
                         host=mem.host_ram_bytes, step_s=step.step_s, tokens_per_s=step.tokens_per_s_per_gpu)
    assert step.step_s > 0
    _check_training_memory_sums(mem)
    _strict_json(mem.to_dict())


def _check_training_memory_sums(mem) -> None:
    parts = mem.weights + mem.gradients + mem.optimizer + mem.activations + mem.buffers
    assert math.isclose(mem.allocated, parts, rel_tol=1e-9, abs_tol=1.0), (mem.allocated, parts)
    assert math.isclose(mem.reserved, mem.allocated + mem.fragmentation, rel_tol=1e-9, abs_tol=1.0)
    assert math.isclose(mem.total, mem.reserved + mem.overhead + mem.paged_optimizer, rel_tol=1e-9, abs_tol=1.0)
    assert mem.fits == (mem.reserved + mem.overhead <= mem.gpu_memory_bytes)


plan_valid = st.fixed_dictionaries({
    "data": st.sampled_from(["1K", "1M", "1GB", "10 GB", "1TB", "15.6T tokens", "1K samples", "1 tokens", "2e9"]),
    "deadline": st.sampled_from(["24h", "1d", "90m", "1w", "2h"]),
    "epochs": st.sampled_from([1.0, 0.5, 3, "2"]),
    "gpus": st.one_of(st.none(), st.none(), st.sampled_from([1, 2, 4, 8, 16, 24, 64])),
    "seq_len": st.sampled_from([512, 2048, 4096, 8192]),
    "micro_batch": st.sampled_from([None, None, 1, 2, 4]), "zero": st.sampled_from([None, None, 0, 1, 2, 3]),
    "offload": st.sampled_from([None, None, "none"]), "tp": st.sampled_from([None, None, 1, 2, 8]),
    "pp": st.sampled_from([None, None, 1, 2]),
})
plan_wild = st.fixed_dictionaries({
    "data": st.one_of(st.sampled_from(["0", "-1GB", "1e400", "nan", "", "1 furlong", "1e12 samples",
                                       "99999999999999999999999T tokens"]),
                      st.floats(-1, 1e15), st.integers(-5, 10**13), st.text(max_size=10)),
    "deadline": st.one_of(st.sampled_from(["1s", "0", "-1h", "yesterday", "1e-300s", "inf", "99999w"]),
                          st.floats(-1, 1e6), st.text(max_size=6)),
    "epochs": st.one_of(st.floats(-1, 1e4), st.sampled_from(["x", "nan", "1e300"])),
    "gpus": st.one_of(st.none(), st.integers(-2, 300)), "seq_len": st.integers(-1, 10**6),
    "micro_batch": st.one_of(st.none(), st.integers(-1, 64)), "zero": st.sampled_from([None, 0, 1, 2, 3, 4, True]),
    "offload": st.sampled_from([None, *choices.OFFLOADS, "disk"]), "tp": st.one_of(st.none(), st.integers(-1, 64)),
    "pp": st.one_of(st.none(), st.integers(-1, 8)),
})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), method=st.sampled_from(choices.METHODS), gpu=st.sampled_from(GPUS),
       kw=st.one_of(plan_valid, plan_valid, plan_wild), ov=overrides)
def test_plan_finetune_returns_a_result_or_a_sizing_error(model, method, gpu, kw, ov):
    a, kw = _assumptions(ov), dict(kw)
    try:
        plan = planner.plan_finetune(model, method, gpu, kw.pop("data"), deadline=kw.pop("deadline"), assumptions=a,
                                     **kw)
    except SizingError:
        event("refused")
        return
    event("plan" if plan.fits else "plan (does not fit)")
    _strict_json(plan.to_dict())
    assert plan.gpus >= 1
    if plan.time is not None:
        _check_time_sums(plan.time)
        assert plan.hours > 0 and math.isfinite(plan.hours)
    if plan.fits:
        _check_training_memory_sums(plan.memory)
    if plan.cluster is not None:
        _check_cluster_sums(plan)


def _check_time_sums(t) -> None:
    parts = (t.compute_s + t.quantization_s + t.bubble_s + t.tp_comm_s + t.pp_comm_s + t.ep_comm_s + t.zero3_comm_s
             + t.dp_comm_s + t.offload_s + t.load_s + t.tokenize_s + t.save_s)
    assert math.isclose(t.total_s, parts, rel_tol=1e-9), (t.total_s, parts)
    _finite_non_negative(**{k: v for k, v in t.to_dict().items() if isinstance(v, float)})


def _check_cluster_sums(plan) -> None:
    c = plan.cluster
    storage = sum(v for k, v in c.storage_parts.items() if k != "total")
    assert math.isclose(c.storage_parts["total"], storage, rel_tol=1e-9)
    assert abs(c.storage_bytes - storage) <= 1
    assert c.nodes * c.gpus_per_node >= plan.gpus
    price = c.node.get("price_usd_per_hour") if c.node else None
    if plan.cost_usd is not None and price is not None and plan.hours is not None:
        assert math.isclose(plan.cost_usd, c.nodes * price * plan.hours, rel_tol=1e-6)


# ------------------------------------------------------------------ parsers and validation


@PARSERS
@given(st.one_of(st.text(max_size=30), st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.booleans(),
                 st.from_regex(r"\A\s?[0-9.eE+\-]{1,12}\s?(K|M|G|T|P|Ki|Gi|Ti)?[bB]?\s?(tokens|samples)?\Z")))
def test_parse_data_size(text):
    try:
        ds = parse_data_size(text)
    except SizingError:
        return
    assert ds.unit in ("bytes", "tokens", "samples")
    assert math.isfinite(ds.amount) and ds.amount > 0


@PARSERS
@given(st.one_of(st.text(max_size=20), st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.booleans(),
                 st.from_regex(r"\A[0-9.]{1,8}\s?(s|m|h|d|w|min|hours|days)?\Z")))
def test_parse_duration(text):
    try:
        seconds = parse_duration_s(text)
    except SizingError:
        return
    assert math.isfinite(seconds) and seconds > 0


@PARSERS
@given(st.one_of(st.text(max_size=20), st.from_regex(r"\A[0-9.]{1,30}\s?(GiB|GB|MiB|MB|TiB|TB)\Z")))
def test_parse_memory_and_tokens(text):
    try:
        n = parse_memory_bytes(text)
        assert isinstance(n, int) and n > 0
    except SizingError:
        pass
    try:
        t = parse_tokens(text)
        assert isinstance(t, int) and 1 <= t <= 16 * 1024**2
    except SizingError:
        pass


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 10**9), st.floats(allow_nan=True, allow_infinity=True),
              st.text(max_size=20), st.sampled_from(["deepseek-r1-distill-qwen-7b", "h100", "24h", "1GB", "32K",
                                                     "lora", "bf16", "vllm", "en", "adamw", "2031-01-01"])),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children,
                                                                               max_size=3)),
    max_leaves=6,
)
param_names = st.sampled_from([p.name for p in PARAMETERS] + ["bogus", "user"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["serving", "finetune", "customer", "serving", "finetune", "bogus", None, 3]),
       data=st.one_of(st.just({}), st.dictionaries(param_names, json_values, max_size=2)))
def test_scenario_from_dict_validates_or_raises_a_scenario_error(kind, data):
    d = {"models": ["deepseek-r1-distill-qwen-7b"], "gpus": ["h100"], **data, "kind": kind}
    try:
        sc = Scenario.from_dict(d, where="property")
    except SizingError as exc:
        event(f"refused: {str(exc)[10:40]}")
        return
    event("valid")
    params = sc.parameters()
    json.dumps(params, allow_nan=False)  # papermill injects these as literals: plain, finite JSON values
    assert Scenario.from_dict(params, where="again") == sc


CONFIG_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
               "head_dim", "vocab_size", "intermediate_size", "max_position_embeddings", "tie_word_embeddings",
               "attention_bias", "sliding_window", "use_sliding_window", "max_window_layers", "num_local_experts",
               "num_experts", "num_experts_per_tok", "moe_intermediate_size", "n_routed_experts",
               "first_k_dense_replace", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "num_nextn_predict_layers",
               "quantization_config", "mlp_only_layers", "layer_types", "decoder_sparse_step", "moe_layer_freq",
               "d_model", "n_heads", "n_layers", "expansion_ratio", "attn_config", "no_bias")
BASE_CONFIGS = {
    "llama": {"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
              "num_key_value_heads": 2, "vocab_size": 1000, "intermediate_size": 512, "max_position_embeddings": 4096},
    "qwen3_moe": {"model_type": "qwen3_moe", "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
                  "vocab_size": 1000, "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 64,
                  "max_position_embeddings": 4096},
    "deepseek_v3": {"model_type": "deepseek_v3", "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 8,
                    "vocab_size": 1000, "intermediate_size": 512, "n_routed_experts": 8, "num_experts_per_tok": 2,
                    "moe_intermediate_size": 64, "kv_lora_rank": 32, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8,
                    "v_head_dim": 16, "first_k_dense_replace": 1, "num_nextn_predict_layers": 1,
                    "max_position_embeddings": 4096},
    "mpt": {"model_type": "mpt", "d_model": 256, "n_heads": 8, "n_layers": 4, "vocab_size": 1000},
}
config_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.sampled_from([10**6, 10**12, 2**63]),
                          st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                          st.lists(st.integers(-1, 5), max_size=3), st.dictionaries(st.text(max_size=4),
                                                                                    st.text(max_size=4), max_size=2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(sorted(BASE_CONFIGS)), changes=st.dictionaries(st.sampled_from(CONFIG_KEYS), config_values,
                                                                           max_size=3))
def test_config_json_builds_a_spec_or_raises_a_config_error(base, changes):
    cfg = {**BASE_CONFIGS[base], **changes}
    try:
        spec = model_spec_from_config(cfg, slug="prop", where="config.json")
        facts = model_summary(spec)
    except SizingError:
        event("refused")
        return
    event("spec")
    _strict_json(facts)
    assert facts["params_total"] > 0 and facts["params_active"] <= facts["params_total"]
    try:
        est = serving.serve(spec, "h100-80gb", users=2, context_tokens=min(spec.max_context_tokens or 2048, 2048))
    except SizingError:
        return
    _strict_json(est.to_dict())


# ------------------------------------------------------------------ invariants: serving memory

INV = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@INV
@given(model=st.sampled_from(MODELS), engine=st.sampled_from(ENGINES), u1=st.integers(1, 512),
       u2=st.integers(1, 512), context=st.sampled_from([512, 4096, 32768]))
def test_serving_memory_grows_with_users(model, engine, u1, u2, context):
    lo, hi = sorted((u1, u2))
    try:
        a = serving.serve(model, "h200", engine=engine, users=lo, context_tokens=context, speed=False)
        b = serving.serve(model, "h200", engine=engine, users=hi, context_tokens=context, speed=False,
                          gpus=a.gpus)
    except SizingError:
        assume(False)
        return
    assert a.layout == b.layout
    assert b.memory_per_gpu.kv_cache >= a.memory_per_gpu.kv_cache
    assert b.memory_per_gpu.total >= a.memory_per_gpu.total


@INV
@given(model=st.sampled_from(MODELS), engine=st.sampled_from(ENGINES), users=st.integers(1, 16),
       c1=st.integers(1, 131072), c2=st.integers(1, 131072))
def test_serving_memory_grows_with_context(model, engine, users, c1, c2):
    lo, hi = sorted((c1, c2))
    try:
        b = serving.serve(model, "h200", engine=engine, users=users, context_tokens=hi, speed=False)
        a = serving.serve(model, "h200", engine=engine, users=users, context_tokens=lo, speed=False, gpus=b.gpus)
    except SizingError:
        assume(False)
        return
    assert a.layout == b.layout
    assert b.kv_cache_bytes_per_user >= a.kv_cache_bytes_per_user
    assert b.memory_per_gpu.kv_cache >= a.memory_per_gpu.kv_cache
    assert b.memory_per_gpu.total >= a.memory_per_gpu.total


# ------------------------------------------------------------------ invariants: fine-tuning memory

train_kw = st.fixed_dictionaries({
    "method": st.sampled_from(training.METHODS), "precision": st.sampled_from(training.PRECISIONS),
    "optimizer": st.sampled_from(training.OPTIMIZERS), "gradient_checkpointing": st.booleans(),
    "attention_kernel": st.sampled_from(training.ATTENTION_KERNELS), "chunked_cross_entropy": st.booleans(),
})


def _memory(model, gpu="h100-80gb", **kw):
    spec = catalog.load_model(model)
    return training.finetune_memory(spec, training.FinetuneSetup(**kw), catalog.load_gpu(gpu))


@INV
@given(model=st.sampled_from(SMALL_MODELS), kw=train_kw, b1=st.integers(1, 16), b2=st.integers(1, 16),
       seq=st.sampled_from([256, 1024, 4096]))
def test_training_memory_grows_with_micro_batch(model, kw, b1, b2, seq):
    lo, hi = sorted((b1, b2))
    try:
        a = _memory(model, micro_batch=lo, seq_len=seq, **kw)
        b = _memory(model, micro_batch=hi, seq_len=seq, **kw)
    except SizingError:
        assume(False)
        return
    assert b.activations >= a.activations or b.phase != a.phase
    assert b.allocated >= a.allocated
    assert b.total >= a.total


@INV
@given(model=st.sampled_from(SMALL_MODELS), kw=train_kw, s1=st.integers(1, 16384), s2=st.integers(1, 16384))
def test_training_memory_grows_with_sequence_length(model, kw, s1, s2):
    lo, hi = sorted((s1, s2))
    try:
        a = _memory(model, seq_len=lo, **kw)
        b = _memory(model, seq_len=hi, **kw)
    except SizingError:
        assume(False)
        return
    assert b.allocated >= a.allocated
    assert b.total >= a.total


@INV
@given(model=st.sampled_from(MODELS), method=st.sampled_from(training.METHODS),
       optimizer=st.sampled_from(training.OPTIMIZERS), d1=st.sampled_from([2, 4, 8, 16, 64]),
       d2=st.sampled_from([2, 4, 8, 16, 64]), backend=st.sampled_from(training.ZERO_BACKENDS),
       offload=st.sampled_from(training.OFFLOADS))
def test_zero3_memory_per_gpu_does_not_grow_with_more_gpus(model, method, optimizer, d1, d2, backend, offload):
    lo, hi = sorted((d1, d2))
    kw = dict(method=method, optimizer=optimizer, zero=3, zero_backend=backend, offload=offload, seq_len=2048)
    try:
        a = _memory(model, dp=lo, **kw)
        b = _memory(model, dp=hi, **kw)
    except SizingError:
        assume(False)
        return
    assert b.weights <= a.weights * (1 + 1e-12)
    assert b.gradients <= a.gradients * (1 + 1e-12) + 1
    assert b.optimizer <= a.optimizer * (1 + 1e-12) + 1
    assert b.allocated <= a.allocated * (1 + 1e-12) + 1
    assert b.total <= a.total * (1 + 1e-12) + 1


# ------------------------------------------------------------------ invariants: time and GPUs


@INV
@given(model=st.sampled_from(MODELS), method=st.sampled_from(tc.METHODS), gpu=st.sampled_from(GPUS),
       n1=st.integers(1, 4096), n2=st.integers(1, 4096), tokens=st.floats(1e3, 1e13))
def test_compute_hours_fall_as_gpus_are_added(model, method, gpu, n1, n2, tokens):
    lo, hi = sorted((n1, n2))
    spec, g = catalog.load_model(model), catalog.load_gpu(gpu)
    try:
        setup = training.FinetuneSetup(method=method)
        h_lo = tc.compute_hours(spec, setup, g, lo, tokens)
        h_hi = tc.compute_hours(spec, setup, g, hi, tokens)
        gpu_h = tc.gpu_hours(spec, setup, g, tokens)
    except SizingError:
        assume(False)
        return
    assert h_hi <= h_lo * (1 + 1e-12)
    assert math.isclose(h_lo * lo, gpu_h, rel_tol=1e-9), "GPU-hours do not depend on the GPU count"


LADDER = (1, 2, 4, 8, 16, 32, 64, 128)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(SMALL_MODELS + ("deepseek-r1-distill-qwen-32b",)),
       method=st.sampled_from(choices.METHODS), gpu=st.sampled_from(["h100-80gb", "a100-80gb", "l40s"]),
       counts=st.lists(st.sampled_from(LADDER), min_size=2, max_size=2, unique=True),
       data=st.sampled_from(["100MB", "1GB", "10GB"]))
def test_planner_time_rises_with_gpus_only_when_communication_grows(model, method, gpu, counts, data):
    n, m = sorted(counts)
    try:
        a = planner.plan_finetune(model, method, gpu, data, gpus=n)
        b = planner.plan_finetune(model, method, gpu, data, gpus=m)
    except SizingError:
        assume(False)
        return
    assume(a.fits and b.fits and a.time is not None and b.time is not None)
    ta, tb = a.time, b.time
    _check_time_sums(ta)
    _check_time_sums(tb)
    assert tb.compute_s <= ta.compute_s * (1 + 1e-9), "the ideal compute time falls with more GPUs"
    if tb.total_s > ta.total_s * (1 + 1e-9):
        assert tb.comm_s + tb.bubble_s > ta.comm_s + ta.bubble_s, (
            f"{n} -> {m} GPUs: time rose from {ta.total_s:.0f} s to {tb.total_s:.0f} s without more "
            f"communication or overhead ({ta.to_dict()} vs {tb.to_dict()})")

"""Property-based tests of the planner (hypothesis): monotone in data and in the deadline.

With ``optimize="gpus"`` the planner returns the smallest GPU count whose best layout meets the deadline
(an exact scan over the count ladder; each layout's time is non-decreasing in the data). So, among plans
that meet their deadline: more data never needs fewer GPUs, and a longer deadline never needs more.
The default objective (cost) has its own properties in test_planner_billing.py.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmsizing.planner.plans import plan_finetune

MODELS = ("deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-7b", "deepseek-r1-distill-llama-70b")
METHODS = ("full", "lora", "qlora")
GPUS = ("h100-80gb", "a10g", "a100-40gb", "l40s")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

setup = st.tuples(st.sampled_from(MODELS), st.sampled_from(METHODS), st.sampled_from(GPUS))
log_bytes = st.floats(min_value=3.0, max_value=12.5)          # 1 KB .. ~3 TB of text
hours = st.floats(min_value=0.5, max_value=200.0)


def _plan(model, method, gpu, data_bytes, deadline_h):
    return plan_finetune(model, method, gpu, f"{data_bytes:.6g}", deadline=f"{deadline_h:.6g}h", optimize="gpus")


@SETTINGS
@given(setup, log_bytes, log_bytes, hours)
def test_more_data_never_needs_fewer_gpus(s, la, lb, dl):
    model, method, gpu = s
    small, large = sorted((10 ** la, 10 ** lb))
    p_small = _plan(model, method, gpu, small, dl)
    p_large = _plan(model, method, gpu, large, dl)
    if p_large.meets_deadline:
        assert p_small.meets_deadline
        assert p_small.gpus <= p_large.gpus
    if p_small.fits and p_large.fits and p_small.gpus == p_large.gpus and p_small.layout == p_large.layout:
        assert p_small.hours <= p_large.hours * (1 + 1e-9)


@SETTINGS
@given(setup, log_bytes, hours, hours)
def test_longer_deadline_never_needs_more_gpus(s, lb, da, db):
    model, method, gpu = s
    short, long_ = sorted((da, db))
    p_short = _plan(model, method, gpu, 10 ** lb, short)
    p_long = _plan(model, method, gpu, 10 ** lb, long_)
    if p_short.meets_deadline:
        assert p_long.meets_deadline
        assert p_long.gpus <= p_short.gpus


@SETTINGS
@given(setup, log_bytes, hours)
def test_plans_are_consistent(s, lb, dl):
    model, method, gpu = s
    p = _plan(model, method, gpu, 10 ** lb, dl)
    if not p.fits:
        assert p.hours is None and not p.meets_deadline
        return
    assert p.memory.total <= p.memory.gpu_memory_bytes
    assert p.cluster.nodes * p.cluster.gpus_per_node >= p.gpus
    assert abs(p.time.compute_s * p.gpus * p.hardware_flop_per_s_per_gpu - p.train_flop) <= 1e-9 * p.train_flop
    assert p.meets_deadline == (p.time.total_s <= p.deadline_s)


@SETTINGS
@given(st.sampled_from(MODELS), st.sampled_from(METHODS), log_bytes, log_bytes)
def test_time_on_a_fixed_layout_grows_with_data(model, method, la, lb):
    small, large = sorted((10 ** la, 10 ** lb))
    kw = dict(gpus=8, tp=1, zero=3, offload="none", micro_batch=1, gradient_checkpointing=True)
    p_small = plan_finetune(model, method, "h100-80gb", f"{small:.6g}", **kw)
    p_large = plan_finetune(model, method, "h100-80gb", f"{large:.6g}", **kw)
    if p_small.fits and p_large.fits:
        assert p_small.hours <= p_large.hours * (1 + 1e-12)

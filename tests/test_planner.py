"""Deadline planner, memory oracle, instance catalog and cluster bill of materials."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from pathlib import Path

import pytest

from llmsizing import catalog, instances, servers
from llmsizing.planner import cluster
from llmsizing.planner import memory_oracle
from llmsizing.planner import context as planner_context
from llmsizing.training import memory as training
from llmsizing.training import compute as training_compute
from llmsizing.assumptions import Assumptions
from llmsizing.errors import CatalogError, ScenarioError
from llmsizing.choices import CUSTOMER_DATA_SIZES as SEED_DATA_SIZES
from llmsizing.choices import DEEPSEEK_R1_FAMILY, METHODS
from llmsizing.comm import all_to_all_s, pipeline_bubble_fraction, ring_allgather_s, ring_allreduce_s
from llmsizing.planner.layouts import gpu_count_ladder
from llmsizing.planner.plans import plan_finetune
from llmsizing.planner.request import Request
from llmsizing.units import GB, SECONDS_PER_HOUR

H100 = "h100-80gb"
ROOT = Path(__file__).resolve().parents[1]


def _bench_planner():
    """benchmarks/bench_planner.py, home of the matrix sweep (``finetune_matrix``)."""
    spec = importlib.util.spec_from_file_location("bench_planner", ROOT / "benchmarks" / "bench_planner.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _predict_exact_agree(o: memory_oracle.MemoryOracle, key: tuple) -> bool:
    """The oracle's family prediction equals a direct call of the memory model for ``key``."""
    pred, exact = o.memory(key), o.get(key)
    if pred is None or exact is None:
        return pred is exact
    return all(memory_oracle._close(getattr(pred, f), getattr(exact, f)) for f in
               ("weights", "gradients", "optimizer", "activations", "buffers", "allocated", "reserved",
                "overhead", "total", "host_ram_bytes"))


def _training_instance(gpu_slug: str):
    """The node type for multi-node training: most GPUs per node, then the fastest network, then cheapest."""
    found = instances.instances_for_gpu(gpu_slug)
    return found[0] if found else None


# ----------------------------------------------------------------------------- communication model


def test_ring_collectives():
    # NCCL bus-bandwidth convention: all-reduce moves 2(n-1)/n of the buffer, all-gather (n-1)/n
    assert ring_allreduce_s(8e9, 8, 1e9) == pytest.approx(2 * 7 / 8 * 8)
    assert ring_allgather_s(8e9, 8, 1e9) == pytest.approx(7 / 8 * 8)
    assert all_to_all_s(8e9, 4, 2e9) == pytest.approx(3 / 4 * 4)
    assert ring_allreduce_s(8e9, 1, 1e9) == 0.0


def test_pipeline_bubble_fraction():
    # Narayanan et al. 2021: (p - 1) / (m + p - 1)
    assert pipeline_bubble_fraction(4, 8) == pytest.approx(3 / 11)
    assert pipeline_bubble_fraction(1, 8) == 0.0


def test_gpu_count_ladder():
    assert gpu_count_ladder(8, 200) == [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192]
    assert gpu_count_ladder(4, 16) == [1, 2, 4, 8, 12, 16]


# ----------------------------------------------------------------------------- the memory shortcut is exact


def _setup(method, **kw):
    return training.FinetuneSetup(method=method, **kw)


@pytest.mark.parametrize("gpu", ["h100-80gb", "a10g", "t4", "h200"])
def test_memory_on_gpu_equals_a_direct_call(gpu):
    spec = catalog.load_model("deepseek-r1-distill-qwen-7b")
    g = catalog.load_gpu(gpu)
    ref_gpu = replace(g, memory_bytes=2**62, node_gpus_max=1, name="reference GPU")
    for st in (_setup("full", zero=3, dp=8), _setup("lora"), _setup("qlora", optimizer="paged-adamw-8bit"),
               _setup("full", zero=2, dp=4, offload="optimizer")):
        ref = training.finetune_memory(spec, st, ref_gpu)
        got = memory_oracle.memory_on_gpu(ref, g, st.gpus)
        want = training.finetune_memory(spec, st, g)
        for f in ("total", "reserved", "fits", "host_ram_bytes", "paged_optimizer", "gpu_memory_bytes"):
            assert getattr(got, f) == pytest.approx(getattr(want, f)), f


@pytest.mark.parametrize("model, method", [
    ("deepseek-r1-distill-qwen-1.5b", "full"), ("deepseek-r1-distill-qwen-7b", "lora"),
    ("deepseek-r1-distill-llama-70b", "qlora"), ("deepseek-r1", "lora"),
])
def test_oracle_predictions_equal_direct_calls(model, method):
    spec = catalog.load_model(model)
    a = Assumptions()
    kw = {"method": method, "precision": "mixed-bf16", "optimizer": "adamw", "seq_len": 4096, "lora_rank": 16,
          "lora_targets": "all-linear"}
    o = memory_oracle.MemoryOracle(spec, kw, a, catalog.load_gpu(H100))
    ep = 8 if spec.is_moe else 1
    keys = [(4, 1, 32, ep, 3, "none", False, 4, 1), (2, 1, 16, ep, 2, "none", True, 8, 1),
            (1, 1, 64, ep, 3, "optimizer", True, 2, 1), (8, 1, 8, ep, 3, "optimizer+params", False, 1, 1),
            (1, 1, 1, 1, 0, "none", True, 4, 2)]
    for key in keys:
        o.memory(key)                      # builds the family
    for key in keys:
        assert _predict_exact_agree(o, key), key


def test_step_time_parts_and_scaling_equal_training_compute():
    a = Assumptions()
    for model, method, gpu in (("deepseek-r1-distill-qwen-7b", "qlora", "a10g"), ("deepseek-r1", "full", H100)):
        spec, g = catalog.load_model(model), catalog.load_gpu(gpu)
        ctx = planner_context.plan_context(spec, g, Request(method=method), a)
        for gc in (False, True):
            for tp, pp, mb in ((1, 1, 1), (2, 1, 4), (8, 2, 2)):
                st = training_compute.step_time(spec, _setup(method, gradient_checkpointing=gc, tp=tp, pp=pp,
                                                             micro_batch=mb), g, a)
                assert ctx.stage_s(tp, pp, gc, mb) == pytest.approx(st.step_s)
                assert ctx.tokens_per_s_per_gpu(tp, pp, gc, mb) == pytest.approx(st.tokens_per_s_per_gpu)


# ----------------------------------------------------------------------------- plans are consistent

_PLANS: dict = {}


def _family_plans():
    if not _PLANS:
        for m in DEEPSEEK_R1_FAMILY:
            for method in METHODS:
                for d in SEED_DATA_SIZES:
                    _PLANS[(m, method, d)] = plan_finetune(m, method, H100, d, deadline="24h")
    return _PLANS


def test_every_family_plan_meets_the_deadline_or_says_why():
    for key, p in _family_plans().items():
        assert p.fits, key
        assert p.meets_deadline or p.limit, key
        assert p.meets_deadline == (p.hours <= 24.0), key


def test_flop_identities():
    for key, p in _family_plans().items():
        # tokens × FLOP per token = train_flop
        assert p.train_flop == pytest.approx(p.dataset.train_tokens * p.train_flop_per_token, rel=1e-12), key
        # compute time × GPUs × per-GPU achieved throughput = train_flop
        assert p.time.compute_s * p.gpus * p.hardware_flop_per_s_per_gpu == pytest.approx(p.train_flop, rel=1e-9)
        assert p.time.compute_s <= p.time.total_s
        # hours × GPUs × effective throughput reproduces it too, by definition of the effective rate
        eff = p.train_flop / (p.hours * SECONDS_PER_HOUR * p.gpus)
        assert p.hours * SECONDS_PER_HOUR * p.gpus * eff == pytest.approx(p.train_flop)
        assert eff <= p.hardware_flop_per_s_per_gpu * (1 + 1e-9)


def test_time_parts_add_up():
    for key, p in _family_plans().items():
        t = p.time
        parts = (t.compute_s + t.quantization_s + t.bubble_s + t.tp_comm_s + t.pp_comm_s + t.ep_comm_s
                 + t.zero3_comm_s + t.dp_comm_s + t.offload_s + t.load_s + t.tokenize_s + t.save_s)
        assert parts == pytest.approx(t.total_s, rel=1e-9), key
        assert t.quantization_s >= -1e-6 * t.total_s
        assert 0 < t.scaling_efficiency <= 1 + 1e-9


def test_memory_and_nodes():
    for key, p in _family_plans().items():
        assert p.memory.total <= p.memory.gpu_memory_bytes, key
        assert p.layout.gpus == p.gpus
        cl = p.cluster
        assert cl.nodes * cl.gpus_per_node >= p.gpus, key
        assert (cl.nodes - 1) * cl.gpus_per_node < p.gpus, key


def test_every_cluster_key_is_filled():
    for key, p in _family_plans().items():
        d = p.to_dict()
        for k in ("nodes", "gpus_per_node", "cpu_cores", "ram_bytes", "storage_bytes", "network_gbps", "instance"):
            assert d["cluster"][k] is not None, (key, k)
        assert isinstance(d["cluster"]["ram_bytes"], int) and isinstance(d["cluster"]["storage_bytes"], int)
        assert d["cost_usd"] is not None and d["cost_usd"] > 0
        assert d["cost_usd"] == pytest.approx(
            d["cluster"]["nodes"] * d["cluster"]["node"]["price_usd_per_hour"] * d["hours"])


def test_bigger_models_and_more_data_cost_more():
    plans = _family_plans()
    for method in METHODS:
        for d in SEED_DATA_SIZES:
            small = plans[("deepseek-r1-distill-qwen-7b", method, d)]
            big = plans[("deepseek-r1-distill-llama-70b", method, d)]
            assert big.gpu_hours >= small.gpu_hours
        g = [plans[("deepseek-r1-distill-qwen-14b", method, d)].gpu_hours for d in SEED_DATA_SIZES]
        assert g == sorted(g)


def test_671b_full_fine_tuning_is_not_a_one_node_job():
    p = _family_plans()[("deepseek-r1", "full", "1GB")]
    assert p.gpus >= 16
    # bf16 weights, gradients and fp32 Adam states of 671B parameters: ~10.7 TB spread over GPUs and hosts
    assert p.trainable_params > 6.7e11


def test_finetune_matrix_rows():
    finetune_matrix = _bench_planner().finetune_matrix
    rows = finetune_matrix(models=["deepseek-r1-distill-qwen-1.5b"], methods=["lora"], gpus=[H100, "a10g"],
                           data_sizes=["1GB", "1TB"])
    assert len(rows) == 4
    for r in rows:
        assert {"model", "method", "gpu", "data", "gpus", "hours", "meets_deadline", "cost_usd", "nodes"} <= set(r)


# ----------------------------------------------------------------------------- layouts and pins


def test_fixed_gpu_count_is_evaluated_not_searched():
    p = plan_finetune("deepseek-r1-distill-qwen-7b", "lora", H100, "10GB", gpus=2)
    assert p.gpus == 2 and not p.searched
    assert p.layout.tp * p.layout.dp == 2


def test_pins_are_respected():
    p = plan_finetune("deepseek-r1-distill-llama-70b", "lora", H100, "1GB", gpus=8, tp=4, zero=3, offload="none",
                      micro_batch=1, gradient_checkpointing=True)
    lay = p.layout
    assert (lay.tp, lay.dp, lay.zero, lay.offload, lay.micro_batch, lay.gradient_checkpointing) == \
        (4, 2, 3, "none", 1, True)


def test_adding_gpus_lowers_efficiency():
    effs = [plan_finetune("deepseek-r1-distill-llama-70b", "full", H100, "100GB", gpus=n).time.scaling_efficiency
            for n in (64, 512, 4096)]
    assert effs[0] > effs[2]


def test_nothing_fits_is_a_result():
    p = plan_finetune("deepseek-r1", "full", "t4", "1GB", gpus=1)
    assert not p.fits and p.hours is None and not p.meets_deadline
    assert "no layout fits" in p.fit_reason
    # nothing to buy: no bill of materials and no cost, only why and what would fit
    d = p.to_dict()
    assert d["cluster"] is None and d["cost_usd"] is None and d["instance"] is None
    assert d["would_fit"]


def test_deadline_miss_states_the_best_and_the_limit():
    p = plan_finetune("deepseek-r1-distill-llama-70b", "full", H100, "1TB", deadline="1h")
    assert not p.meets_deadline and p.fits
    assert p.limit.startswith("best achievable")


def test_bad_input():
    with pytest.raises(ScenarioError, match="accepted"):
        plan_finetune("deepseek-r1-distill-qwen-7b", "lora", H100, "1X")
    with pytest.raises(ScenarioError, match="accepted"):
        plan_finetune("deepseek-r1-distill-qwen-7b", "lora", H100, "1GB", deadline="0h")
    with pytest.raises(ScenarioError):
        plan_finetune("deepseek-r1-distill-qwen-7b", "sft", H100, "1GB")
    with pytest.raises(ScenarioError):
        plan_finetune("deepseek-r1-distill-qwen-7b", "lora", H100, "1GB", gpus=0)


# ----------------------------------------------------------------------------- instances and cluster


def test_instance_catalog_loads_and_converts_units():
    p5 = instances.load_instance("p5.48xlarge")
    assert p5.gpu == "h100-80gb" and p5.gpus == 8
    assert p5.ram_bytes == 2048 * 2**30
    assert p5.network_bytes_per_s == pytest.approx(3200 * GB / 8)
    assert _training_instance("h100-80gb").gpus == 8
    for inst in instances.list_instances():
        catalog.load_gpu(inst.gpu)
        assert inst.price_usd_per_hour is None or inst.price_usd_per_hour > 0


def test_instance_strict_keys(tmp_path: Path):
    good = dict(slug="x", provider="aws", name="x", gpu="h100-80gb", gpus=8, vcpus=96, ram_GiB=1024,
                local_nvme_GB=1000, network_Gbps=400, rdma="efa", gpu_interconnect="NVSwitch",
                price_usd_per_hour=10.0, price_region="us-east-1", price_date="2026-01-01", sources=["s"], notes="",
                price_kind="on-demand", currency="USD", price=10.0, confidence="medium")
    assert instances._instance(tmp_path / "x.yaml", good).gpus == 8
    with pytest.raises(CatalogError, match="unknown key"):
        instances._instance(tmp_path / "x.yaml", {**good, "colour": "blue"})
    with pytest.raises(CatalogError, match="missing key"):
        instances._instance(tmp_path / "x.yaml", {k: v for k, v in good.items() if k != "rdma"})
    with pytest.raises(CatalogError, match="rdma"):
        instances._instance(tmp_path / "x.yaml", {**good, "rdma": "pigeons"})
    with pytest.raises(CatalogError, match="gpu"):
        instances._instance(tmp_path / "x.yaml", {**good, "gpu": "no-such-gpu"})
    with pytest.raises(CatalogError, match="price_kind"):
        instances._instance(tmp_path / "x.yaml", {**good, "price_kind": "reserved"})
    with pytest.raises(CatalogError, match="currency"):
        instances._instance(tmp_path / "x.yaml", {**good, "currency": "EUR"})
    with pytest.raises(CatalogError, match="confidence"):
        instances._instance(tmp_path / "x.yaml", {**good, "confidence": "sure"})
    with pytest.raises(CatalogError, match="both be null"):
        instances._instance(tmp_path / "x.yaml", {**good, "price": None})
    with pytest.raises(CatalogError, match="price_usd_per_hour"):
        instances._instance(tmp_path / "x.yaml", {**good, "price": 11.0})
    # CNY at the dated rate: 67.489 CNY = 10 USD at 6.7489 per USD (exchange_rates.yaml, 2026-09-24)
    cny = instances._instance(tmp_path / "x.yaml", {**good, "currency": "CNY", "price": 67.489})
    assert cny.price_usd_per_hour == 10.0 and cny.currency == "CNY"
    with pytest.raises(CatalogError, match="per USD"):
        instances._instance(tmp_path / "x.yaml", {**good, "currency": "CNY", "price": 10.0})


def test_catalog_price_kinds_and_unpriced_rows():
    """Plans use on-demand prices only: the p5e capacity-block rate and CoreWeave's spot rate never win;
    unpriced rows are listed but never ranked."""
    od = instances.instances_for_gpu("h200")
    assert all(i.price_kind == "on-demand" for i in od)
    assert "aws-p5e.48xlarge" not in {i.slug for i in od}
    assert instances.load_instance("aws-p5e.48xlarge").price_kind == "capacity-block"
    assert "coreweave-hgx-h100-spot" not in {i.slug for i in instances.instances_for_gpu("h100-80gb")}
    assert "coreweave-hgx-h100-spot" in {i.slug for i in instances.instances_for_gpu("h100-80gb", ("spot",))}
    assert all(not i.priced for i in instances.unpriced_instances_for_gpu("h20"))
    # 1, 2, 4 and 8-GPU H100 offerings exist
    assert {1, 2, 4, 8} <= {i.gpus for i in instances.instances_for_gpu("h100-80gb")}


def test_servers_catalog():
    dgx = servers.server_catalog()["nvidia-dgx-h100"]
    assert dgx.gpus == 8 and dgx.cpu_cores == 112 and dgx.ram_bytes == 2048 * 2**30
    assert dgx.compute_network_gbps >= 8 * 400     # 8 × 400 Gbit/s ConnectX-7 compute ports
    assert any(s.gpu == "h20" for s in servers.list_servers())
    with pytest.raises(CatalogError, match="unknown key"):
        servers._server(Path("x.yaml"), {**servers.catalog.read_yaml_file(
            servers.catalog.CATALOG_DIR / "servers" / "nvidia-dgx-h100.yaml"), "colour": "blue"})


def test_cheapest_instance_holds_the_gpus():
    one = instances.cheapest_instance("a10g", 1)
    assert one.gpus >= 1
    many = instances.cheapest_instance("h100-80gb", 16, need_rdma=True)
    assert many.has_rdma and many.gpus == 8


def test_generic_node_without_an_instance():
    p = plan_finetune("deepseek-r1-distill-qwen-1.5b", "lora", "rtx-4090", "1GB")
    assert p.cluster.instance is None and p.cost_usd is None
    assert any("no cloud instance" in n for n in p.cluster.notes)


def test_storage_counts_checkpoints_and_data():
    a = Assumptions()
    parts = cluster.storage_required_bytes(1e12, 1e11, 1e10, 2e10, 1e9, a)
    assert parts["checkpoints"] == pytest.approx(3 * 2e10)
    assert parts["total"] == pytest.approx((1e12 + 1e11 + 1e10 + 6e10 + 1e9) * 1.2)


def test_serving_cluster_cost_per_million_tokens():
    res = {"gpu": H100, "gpus": 16, "decode_tokens_per_s_per_user": 20.0, "users": 3}
    sc = cluster.serving_cluster(res)
    assert sc.nodes == 2 and sc.gpus_per_node == 8
    assert sc.cost_usd_per_hour == pytest.approx(2 * sc.price_usd_per_hour)
    tokens_per_hour = 20.0 * 3 * 3600
    assert sc.cost_usd_per_million_output_tokens == pytest.approx(sc.cost_usd_per_hour / (tokens_per_hour / 1e6))
    small = cluster.serving_cluster({"gpu": "a10g", "gpus": 1, "decode_tokens_per_s_per_user": 30, "users": 1})
    assert small.nodes == 1 and small.instance is not None
    with pytest.raises(ScenarioError):
        cluster.serving_cluster({"gpu": H100, "gpus": 0})


def test_rdma_and_network_for_multi_node_plans():
    p = _family_plans()[("deepseek-r1-distill-llama-70b", "full", "1TB")]
    assert p.cluster.nodes > 1 and p.cluster.network_gbps > 0
    single = _family_plans()[("deepseek-r1-distill-qwen-7b", "lora", "1GB")]
    assert single.cluster.nodes == 1 and not single.cluster.rdma_needed
    assert math.isfinite(single.cluster.network_gbps)

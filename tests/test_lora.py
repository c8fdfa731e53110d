"""LoRA adapter shapes from the real module list (lib/llmsizing/lora.py), hand-computed."""

import pytest

from llmsizing import catalog
from llmsizing.errors import ScenarioError
from llmsizing.lora import linear_module_names, lora_params, lora_params_active, lora_target_modules

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def llama8b():
    return catalog.load_model("llama-3.1-8b")


def test_all_linear_llama_8b_rank16_matches_peft(llama8b):
    # Per layer r·(in+out): q 4096+4096, k 4096+1024, v 4096+1024, o 4096+4096, gate/up/down 4096+14336.
    per_layer = 16 * (8192 + 5120 + 5120 + 8192 + 3 * 18432)
    assert per_layer == 1_310_720
    # PEFT print_trainable_parameters() for Llama-3-8B, target_modules="all-linear", r=16: 41,943,040.
    assert lora_params(llama8b, "all-linear", 16) == 32 * per_layer == 41_943_040


def test_q_v_rank8_llama_8b(llama8b):
    assert lora_params(llama8b, "q,v", 8) == 32 * 8 * ((4096 + 4096) + (4096 + 1024)) == 3_407_872


def test_attention_preset_is_q_k_v_o(llama8b):
    names = {m.name for m in lora_target_modules(llama8b, "attention")}
    assert names == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert lora_params(llama8b, "attention", 8) == lora_params(llama8b, "q_proj,k_proj,v_proj,o_proj", 8)


def test_all_linear_excludes_head_and_counts_every_layer(llama8b):
    mods = lora_target_modules(llama8b, "all-linear")
    assert all(m.group != "lm_head" for m in mods)
    assert len(mods) == 7 * 32


def test_torchtune_aliases(llama8b):
    torchtune_names = lora_params(llama8b, "output_proj,w1,w2,w3", 8)
    assert torchtune_names == lora_params(llama8b, "o_proj,gate_proj,down_proj,up_proj", 8)


def test_moe_experts_counted_per_expert_and_routers_excluded():
    spec = catalog.load_model("mixtral-8x7b")
    mods = lora_target_modules(spec, "all-linear")
    assert all(m.group != "router" for m in mods)
    experts = [m for m in mods if m.group == "experts"]
    assert experts and all(m.count == 8 and m.active_count == 2 for m in experts)
    h, i, r = 4096, 14336, 4
    per_layer = r * (2 * (h + h) + 2 * (h + 1024)) + 8 * 3 * r * (h + i)
    assert lora_params(spec, "all-linear", r) == 32 * per_layer
    # active adapters use top-2 of 8 experts
    active = r * (2 * (h + h) + 2 * (h + 1024)) + 2 * 3 * r * (h + i)
    assert lora_params_active(spec, "all-linear", r) == pytest.approx(32 * active)
    # Mixtral's w1/w3/w2 names select the expert linears
    assert lora_params(spec, "w1,w2,w3", r) == 32 * 8 * 3 * r * (h + i)


def test_mla_q_v_preset_and_shared_experts():
    spec = catalog.load_model("deepseek-v3")
    assert {m.name for m in lora_target_modules(spec, "q,v")} == {"q_b_proj", "kv_b_proj"}
    attn = {m.name for m in lora_target_modules(spec, "attention")}
    assert attn == {"q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"}
    gate = lora_target_modules(spec, "gate_proj")
    groups = {m.group for m in gate}
    assert groups == {"mlp", "experts", "shared_experts"}  # PEFT matches the leaf name everywhere


def test_unknown_target_lists_module_names(llama8b):
    with pytest.raises(ScenarioError) as e:
        lora_target_modules(llama8b, "q_proj,wq")
    msg = str(e.value)
    assert "\n" not in msg and "'wq'" in msg
    for name in linear_module_names(llama8b):
        assert name in msg


@pytest.mark.parametrize("rank", [0, -4, 1.5, True])
def test_bad_rank(llama8b, rank):
    with pytest.raises(ScenarioError):
        lora_params(llama8b, "all-linear", rank)


@pytest.mark.parametrize("targets", ["", "  ", "q_proj,,v_proj", "lm_head"])
def test_bad_target_strings(llama8b, targets):
    with pytest.raises(ScenarioError):
        lora_target_modules(llama8b, targets)

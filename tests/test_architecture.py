"""Architecture math against the published figures in shared/reference/catalog.md §3 and hand-computed cases."""

import pytest

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing.specs import model_spec_from_config

pytestmark = pytest.mark.unit

# Published totals: Hugging Face safetensors totals (catalog.md §3; models.yaml published_source);
# DeepSeek-R1/V3 main model 671,026,419,200 (listed main-model count; MTP reported separately);
# gpt-oss logical totals from the model card (arXiv:2508.10925 Table 1).
PUBLISHED_TOTALS = {
    "deepseek-r1": 671_026_419_200,
    "deepseek-v3": 671_026_419_200,
    "deepseek-r1-distill-qwen-1.5b": 1_777_088_000,
    "deepseek-r1-distill-qwen-7b": 7_615_616_512,
    "deepseek-r1-distill-qwen-14b": 14_770_033_664,
    "deepseek-r1-distill-qwen-32b": 32_763_876_352,
    "deepseek-r1-distill-llama-8b": 8_030_261_248,
    "deepseek-r1-distill-llama-70b": 70_553_706_496,
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    "qwen2.5-72b": 72_706_203_648,
    "qwen3-8b": 8_190_735_360,
    "qwen3-32b": 32_762_123_264,
    "qwen3-235b-a22b": 235_093_634_560,
    "qwen3-30b-a3b": 30_532_122_624,
    "mixtral-8x7b": 46_702_792_704,
    "mistral-7b-v0.3": 7_248_023_552,
    "gemma-2-27b": 27_227_128_320,
    "gpt-oss-120b": 116_829_156_672,
    "gpt-oss-20b": 20_914_757_184,
}

# catalog.md §3, KV B/token all layers at bf16.
KV_BF16 = {
    "deepseek-r1": 70_272, "deepseek-r1-distill-qwen-1.5b": 28_672, "deepseek-r1-distill-qwen-7b": 57_344,
    "deepseek-r1-distill-llama-8b": 131_072, "deepseek-r1-distill-qwen-14b": 196_608,
    "deepseek-r1-distill-qwen-32b": 262_144, "deepseek-r1-distill-llama-70b": 327_680,
    "llama-3.1-8b": 131_072, "llama-3.1-405b": 516_096, "qwen3-8b": 147_456, "qwen3-235b-a22b": 192_512,
    "qwen3-30b-a3b": 98_304, "mixtral-8x7b": 131_072, "gemma-2-27b": 376_832, "gpt-oss-120b": 73_728,
    "gpt-oss-20b": 49_152,
}


def test_catalog_has_all_required_models():
    assert set(PUBLISHED_TOTALS) <= set(catalog.model_entries())


@pytest.mark.parametrize("slug,total", sorted(PUBLISHED_TOTALS.items()))
def test_params_total_matches_published_exactly(slug, total):
    spec = catalog.load_model(slug)
    assert A.params_total(spec) == total
    assert spec.params_published == total


@pytest.mark.parametrize("slug,kv", sorted(KV_BF16.items()))
def test_kv_cache_bytes_per_token_bf16(slug, kv):
    assert A.kv_cache_bytes_per_token(catalog.load_model(slug), 2.0) == kv


def test_deepseek_active_and_mtp():
    spec = catalog.load_model("deepseek-r1")
    # catalog.md §2d: active incl. embedding 37,552,297,472 (README "37B activated"); MTP unique 11,610,068,224
    assert A.params_active(spec) == 37_552_297_472
    assert abs(A.params_active(spec) / 37.55e9 - 1) < 0.005
    assert A.params_mtp(spec) == 11_610_068_224
    # transformers registers e_score_correction_bias (58 layers x 256) as a buffer
    assert A.params_total(spec) - A.params_transformers(spec) == 58 * 256


def test_qwen3_moe_active_within_1pct_of_card():
    # Qwen3-235B-A22B model card: "22B activated"; catalog.md §3 computes 22,190,763,520
    assert abs(A.params_active(catalog.load_model("qwen3-235b-a22b")) / 22.2e9 - 1) < 0.01
    assert A.params_active(catalog.load_model("mixtral-8x7b")) == 12_879_925_248


def test_hf_id_alias_resolves():
    assert catalog.load_model("deepseek-ai/DeepSeek-R1").slug == "deepseek-r1"
    assert catalog.load_model("DEEPSEEK-AI/deepseek-r1-distill-qwen-7b").slug == "deepseek-r1-distill-qwen-7b"


def _tiny_llama(**kw):
    cfg = {"model_type": "llama", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 10}
    cfg.update(kw)
    return model_spec_from_config(cfg, slug="tiny")


def test_hand_computed_tiny_llama():
    spec = _tiny_llama()
    # head_dim 2; attn = 8*8 + 2*8*4 + 8*8 = 192; mlp = 3*8*16 = 384; norms 16; layer 592
    # total = 10*8 + 2*592 + 8 + 10*8 = 1352
    assert A.params_total(spec) == 1352
    # KV: 2 layers * 2 (K,V) * 2 kv heads * 2 head_dim * 2 bytes = 32 B/token
    assert A.kv_cache_bytes_per_token(spec, 2.0) == 32
    # forward FLOP at context 0 = 2 * (2*(192+384) + 80 lm_head) = 2464
    assert A.forward_flop_per_token(spec, 0) == 2464
    # attention at context 10: per layer 2 * 4 heads * (2+2) * 10 = 320, two layers
    assert A.attention_flop_per_token(spec, 10) == 640
    tied = _tiny_llama(tie_word_embeddings=True)
    assert A.params_total(tied) == 1352 - 80
    assert A.matmul_params_active(tied) == A.matmul_params_active(spec)


def test_sliding_window_caps_kv():
    spec = catalog.load_model("gemma-2-27b")
    # 23 full layers x 8,192 B/token; 23 sliding layers hold at most 4,096 tokens (catalog.md §4)
    ctx = 32768
    expected = 23 * 8192 * ctx + 23 * 8192 * 4096
    assert A.kv_cache_bytes(spec, ctx, 2.0) == expected
    assert A.kv_cache_bytes(spec, ctx, 2.0, window_aware=False) == 46 * 8192 * ctx


def test_mla_decompressed_is_71x_latent():
    spec = catalog.load_model("deepseek-r1")
    lat = A.kv_elems_per_token_per_layer(spec, "latent")
    dec = A.kv_elems_per_token_per_layer(spec, "decompressed")
    assert (lat, dec) == (576, 40960)

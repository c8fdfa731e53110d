"""Dataset size → training tokens (lib/llmsizing/dataset.py)."""

from __future__ import annotations

import math

import pytest

from llmsizing import catalog
from llmsizing.assumptions import Assumptions, registry
from llmsizing.dataset import LANGUAGES, TOKENIZER_FAMILIES, bytes_per_token, bytes_per_token_table, check_epochs, dataset_size, tokenizer_family
from llmsizing.errors import ScenarioError
from llmsizing.units import parse_data_size


@pytest.mark.parametrize("slug, family", [
    ("deepseek-r1", "deepseek_v3"),
    ("deepseek-r1-distill-qwen-1.5b", "qwen2"),
    ("deepseek-r1-distill-qwen-7b", "qwen2"),
    ("deepseek-r1-distill-qwen-14b", "qwen2"),
    ("deepseek-r1-distill-qwen-32b", "qwen2"),
    ("deepseek-r1-distill-llama-8b", "llama3"),
    ("deepseek-r1-distill-llama-70b", "llama3"),
    ("mistral-7b-v0.3", "llama2"),
    ("gemma-2-27b", "gemma"),
])
def test_tokenizer_family_of_catalog_models(slug, family):
    assert tokenizer_family(catalog.load_model(slug)) == family


def test_every_language_and_tokenizer_has_a_sourced_figure():
    reg = registry()
    for tok in TOKENIZER_FAMILIES:
        for lang in ("en", "zh"):
            a = reg[f"bytes_per_token_{lang}_{tok}"]
            assert a.value > 0 and a.source and a.category == "dataset"
        for lang in LANGUAGES:
            assert 1.0 < bytes_per_token(lang, tok) < 8.0
    assert len(bytes_per_token_table()) == len(TOKENIZER_FAMILIES)


def test_published_anchors():
    # Llama 3 paper: 3.94 characters per token on English; DeepSeek API: 0.6 tokens per Chinese character
    assert bytes_per_token("en", "llama3") == pytest.approx(3.94)
    assert bytes_per_token("zh", "deepseek_v3") == pytest.approx(3 / 0.6)


def test_mixed_is_the_byte_weighted_harmonic_mean():
    en, zh = bytes_per_token("en", "qwen2"), bytes_per_token("zh", "qwen2")
    assert bytes_per_token("mixed", "qwen2") == pytest.approx(1 / (0.5 / zh + 0.5 / en))
    a = Assumptions({"mixed_zh_fraction": 1.0})
    assert bytes_per_token("mixed", "qwen2", a) == pytest.approx(zh)


def test_bytes_become_tokens_and_the_sentence_says_how():
    spec = catalog.load_model("deepseek-r1-distill-llama-8b")
    ds = dataset_size("1GB", spec)
    assert ds.unit == "bytes" and ds.raw_bytes == 1e9
    assert ds.text_tokens == pytest.approx(1e9 / 3.94)
    assert ds.train_tokens == pytest.approx(ds.text_tokens / 0.98)
    assert "3.94 bytes/token" in ds.explanation and "Llama 3" in ds.explanation
    assert "1 GB" in ds.explanation


def test_bare_prefix_means_bytes_like_the_request():
    assert dataset_size("1G").raw_bytes == dataset_size("1GB").raw_bytes == 1e9
    assert dataset_size("1K").raw_bytes == 1e3


def test_tokens_and_samples():
    ds = dataset_size("15.6T tokens")
    assert ds.text_tokens == pytest.approx(15.6e12)
    s = dataset_size("1K samples", assumptions=Assumptions({"tokens_per_sample": 1000}))
    assert s.samples == 1000 and s.text_tokens == pytest.approx(1e6)
    assert "samples" in s.explanation


def test_epochs_and_padding_multiply_processed_tokens():
    one = dataset_size("1GB", language="zh", tokenizer="qwen2")
    three = dataset_size("1GB", language="zh", tokenizer="qwen2", epochs=3)
    padded = dataset_size("1GB", language="zh", tokenizer="qwen2", packing=False)
    assert three.train_tokens == pytest.approx(3 * one.train_tokens)
    assert three.text_tokens == pytest.approx(one.text_tokens)
    assert padded.train_tokens == pytest.approx(one.text_tokens / 0.5)
    assert "padded" in padded.explanation


def test_accepts_a_parsed_size():
    assert dataset_size(parse_data_size("2GB")).raw_bytes == 2e9


@pytest.mark.parametrize("bad", ["1X", "-5GB", "0", "0GB", "", "abc", "1 parsecs"])
def test_bad_sizes_name_the_accepted_forms(bad):
    with pytest.raises(ScenarioError, match="accepted"):
        dataset_size(bad)


@pytest.mark.parametrize("bad", [0, -1, "0", "-2", "abc", float("nan"), float("inf"), True])
def test_bad_epochs_name_the_accepted_forms(bad):
    with pytest.raises(ScenarioError, match="accepted"):
        check_epochs(bad)


def test_unknown_language_or_tokenizer():
    with pytest.raises(ScenarioError, match="language"):
        dataset_size("1GB", language="klingon")
    with pytest.raises(ScenarioError, match="tokenizer"):
        dataset_size("1GB", tokenizer="gpt2")


def test_to_dict_is_plain():
    d = dataset_size("1MB").to_dict()
    assert set(d) >= {"text_tokens", "train_tokens", "bytes_per_token", "explanation"}
    assert all(not isinstance(v, float) or math.isfinite(v) for v in d.values())

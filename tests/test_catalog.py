"""Catalog loading and validation: every file loads; bad entries and names fail with one clear line."""

import json

import pytest

from llmsizing import catalog
from llmsizing.cli import main
from llmsizing.errors import CatalogError, ConfigError

pytestmark = pytest.mark.unit

REQUIRED_GPUS = ["t4", "a10g", "l4", "l40s", "rtx-3090", "rtx-4090", "rtx-5090", "rtx-a5000", "rtx-a6000",
                 "a100-40gb", "a100-80gb", "h100-80gb", "h100-pcie", "h20", "h800", "h200", "b200", "mi300x"]


def test_every_catalog_file_loads():
    assert len(catalog.list_models()) >= 21
    assert len(catalog.list_gpus()) >= len(REQUIRED_GPUS)
    assert len(catalog.precision_catalog()) >= 12


@pytest.mark.parametrize("slug", REQUIRED_GPUS)
def test_required_gpu_present(slug):
    g = catalog.load_gpu(slug)
    assert g.memory_bytes > 0 and g.mem_bw_bytes_per_s > 0
    assert g.flop_per_s.get("bf16") or g.flop_per_s.get("fp16")


def test_gpu_alias_and_memory_override():
    g = catalog.load_gpu("h100-80gb", memory_override="64GiB")
    assert g.memory_bytes == 64 * 2**30


def test_precision_bytes_per_param():
    # QLoRA paper §3: NF4 block 64 with fp32 absmax = 4.5 bits; double quant = 4.127 bits
    assert catalog.load_precision("nf4").bytes_per_param == pytest.approx(0.5625)
    assert catalog.load_precision("nf4-dq").bytes_per_param == pytest.approx(0.5 + 0.127 / 8, abs=1e-4)
    # GPTQ/AWQ group 128: 4 bits + fp16 scale + 4-bit zero per 128
    assert catalog.load_precision("int4").bytes_per_param == pytest.approx(0.5 + 2.5 / 128)
    assert catalog.load_precision("q8_0").bytes_per_param == pytest.approx(34 / 32)


def test_unknown_model_suggests_closest(capsys):
    assert main(["model", "deepseek-r2", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deepseek-r2" in err[0] and "deepseek-r1" in err[0]


def test_unknown_gpu_suggests_closest():
    with pytest.raises(CatalogError, match="h100-80gb"):
        catalog.load_gpu("h100-80")


def test_malformed_config_json(tmp_path, capsys):
    p = tmp_path / "config.json"
    p.write_text("{not json")
    assert main(["model", str(p), "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(p) in err[0] and "invalid JSON" in err[0]


def test_config_missing_field_names_file_and_field(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "intermediate_size": 128}
    p = tmp_path / "m" / "config.json"
    p.parent.mkdir()
    p.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"config.json: config field 'vocab_size' is missing"):
        catalog.load_model(str(p))


def test_config_json_path_works_as_model(tmp_path, capsys):
    cfg = {"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100, "tie_word_embeddings": True}
    p = tmp_path / "tiny" / "config.json"
    p.parent.mkdir()
    p.write_text(json.dumps(cfg))
    assert main(["model", str(p), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # attn 64*64 + 2*64*32 + 64*64 + bias (64+32+32) = 12416; mlp 3*64*128 = 24576; norms 128
    assert out["params_total"] == 100 * 64 + 2 * (12416 + 24576 + 128) + 64


def test_unsupported_family(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"model_type": "t5", "d_model": 512}))
    with pytest.raises(ConfigError, match="not supported"):
        catalog.load_model(str(p))


def test_catalog_unknown_key_names_file_and_key(tmp_path, monkeypatch):
    d = tmp_path / "models"
    d.mkdir()
    src = catalog.model_entries()["llama-3.1-8b"].path.read_text()
    (d / "my-model.yaml").write_text(src.replace("slug: llama-3.1-8b", "slug: my-model") + "colour: blue\n")
    monkeypatch.setenv("LLMSIZING_CATALOG_DIR", str(tmp_path))
    catalog.model_entries.cache_clear()
    try:
        with pytest.raises(CatalogError, match=r"my-model.yaml: unknown key 'colour'"):
            catalog.model_entries()
    finally:
        monkeypatch.delenv("LLMSIZING_CATALOG_DIR")
        catalog.model_entries.cache_clear()


def test_catalog_missing_key(tmp_path, monkeypatch):
    d = tmp_path / "models"
    d.mkdir()
    src = catalog.model_entries()["llama-3.1-8b"].path.read_text()
    lines = [ln for ln in src.splitlines() if not ln.startswith("params_published:")]
    (d / "my-model.yaml").write_text("\n".join(lines).replace("slug: llama-3.1-8b", "slug: my-model"))
    monkeypatch.setenv("LLMSIZING_CATALOG_DIR", str(tmp_path))
    catalog.model_entries.cache_clear()
    try:
        with pytest.raises(CatalogError, match=r"my-model.yaml: missing key 'params_published'"):
            catalog.model_entries()
    finally:
        monkeypatch.delenv("LLMSIZING_CATALOG_DIR")
        catalog.model_entries.cache_clear()

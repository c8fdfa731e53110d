"""Hugging Face ids outside the catalog (lib/llmsizing/hub.py): a fake local cache, offline; the Hub mocked."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from llmsizing import catalog, hub
from llmsizing.cli import main
from llmsizing.errors import CatalogError, ConfigError

pytestmark = pytest.mark.unit

CONFIGS = Path(catalog.__file__).parent / "validation" / "configs"
REV = "0123456789abcdef0123456789abcdef01234567"
REV2 = "89abcdef0123456789abcdef0123456789abcdef"


def add_to_cache(hub_dir: Path, repo_id: str, config: dict, rev: str = REV, ref: str | None = "main") -> Path:
    """Write ``config`` where huggingface_hub caches it: models--org--name/snapshots/<rev>/config.json."""
    repo = hub_dir / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(config))
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(rev)
    return snap / "config.json"


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """An empty HF_HOME, offline (no test may reach the network)."""
    for var in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf" / "hub"


def llama3_config() -> dict:
    return json.loads((CONFIGS / "meta-llama-3-8b.json").read_text())


def test_cache_dir_follows_hf_home_and_hf_hub_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub.cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert hub.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"


@pytest.mark.parametrize("name, ok", [("org/name", True), ("meta-llama/Llama-3.1-8B", True), ("org/name@v1.0", True),
                                      ("org/name.json", False), ("name", False), ("a/b/c", False),
                                      ("../etc/passwd", False), ("org/..", False)])
def test_is_hub_id(name, ok):
    assert hub.is_hub_id(name) is ok


def test_offline_model_from_the_cache_records_the_revision(hf_home):
    add_to_cache(hf_home, "acme/tiny-llama", llama3_config())
    spec = catalog.load_model("acme/tiny-llama")
    assert (spec.slug, spec.hf_id, spec.revision, spec.family) == ("acme/tiny-llama", "acme/tiny-llama", REV, "llama")
    # the same architecture as the catalog's Llama 3.1 8B config gives the same count
    assert spec.num_layers == 32 and spec.num_kv_heads == 8


def test_revision_by_branch_tag_or_commit(hf_home):
    add_to_cache(hf_home, "acme/m", llama3_config(), REV)
    add_to_cache(hf_home, "acme/m", {**llama3_config(), "num_hidden_layers": 16}, REV2, ref="v2")
    assert catalog.load_model("acme/m").num_layers == 32
    assert catalog.load_model("acme/m@v2").revision == REV2
    assert catalog.load_model("acme/m@v2").num_layers == 16
    assert catalog.load_model(f"acme/m@{REV2}").num_layers == 16


def test_cli_model_reads_the_cache_offline(hf_home, capsys):
    add_to_cache(hf_home, "acme/tiny-llama", llama3_config())
    assert main(["model", "acme/tiny-llama", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["revision"] == REV and d["hf_id"] == "acme/tiny-llama"
    assert d["params_total"] == 8_030_261_248  # Llama 3 8B, as for the catalog entry


def test_missing_offline_is_one_line(hf_home, capsys):
    assert main(["model", "acme/absent"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "HF_HUB_OFFLINE" in err[0] and "acme/absent" in err[0]


def test_no_remote_code_is_run(hf_home):
    """A config that asks for remote code (auto_map, an unknown model_type) is refused, nothing imported."""
    add_to_cache(hf_home, "acme/custom", {**llama3_config(), "model_type": "acme_custom",
                                          "auto_map": {"AutoModelForCausalLM": "modeling_acme.AcmeForCausalLM"}})
    before = set(sys.modules)
    with pytest.raises(ConfigError, match="model_type 'acme_custom' is not supported"):
        catalog.load_model("acme/custom")
    assert not any("acme" in m for m in set(sys.modules) - before)


def _fake_hub(monkeypatch, download):
    """A stand-in huggingface_hub module whose hf_hub_download is ``download``; the Hub is 'reachable'."""
    errors = types.ModuleType("huggingface_hub.errors")

    class HfHubHTTPError(OSError):
        pass

    class RepositoryNotFoundError(HfHubHTTPError):
        pass

    class GatedRepoError(RepositoryNotFoundError):
        pass

    for cls in (HfHubHTTPError, RepositoryNotFoundError, GatedRepoError):
        setattr(errors, cls.__name__, cls)
    mod = types.ModuleType("huggingface_hub")
    mod.errors = errors
    mod.hf_hub_download = download
    monkeypatch.setitem(sys.modules, "huggingface_hub", mod)
    monkeypatch.setitem(sys.modules, "huggingface_hub.errors", errors)
    monkeypatch.setattr(hub, "_check_reachable", lambda repo_id: None)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    return errors


def test_download_from_the_hub_when_online(hf_home, monkeypatch):
    calls = []

    def download(repo_id, filename, revision, cache_dir):
        calls.append((repo_id, filename, revision))
        return str(add_to_cache(Path(cache_dir), repo_id, llama3_config(), REV2))

    _fake_hub(monkeypatch, download)
    spec = catalog.load_model("acme/online")
    assert calls == [("acme/online", "config.json", "main")]
    assert spec.revision == REV2


def test_gated_model_says_how_to_set_the_token(hf_home, monkeypatch, capsys):
    def download(repo_id, filename, revision, cache_dir):
        raise errors.GatedRepoError("401 Client Error: access to model is restricted")

    errors = _fake_hub(monkeypatch, download)
    assert main(["model", "meta-llama/Llama-4-Secret"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gated" in err[0] and "HF_TOKEN" in err[0]


def test_unreachable_hub_fails_fast(hf_home, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://no-such-host.invalid")
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(CatalogError, match="cannot be reached"):
        catalog.load_model("acme/nowhere")


def test_results_json_records_the_revision(hf_home, tmp_path):
    """The runner's provenance names the commit of each Hugging Face id it sized."""
    from llmsizing.report import results, runner
    from llmsizing.report.scenario import Scenario

    add_to_cache(hf_home, "acme/tiny-llama", llama3_config())
    sc = Scenario.from_dict({"kind": "serving", "models": ["acme/tiny-llama", "llama-3.1-8b"],
                             "gpus": ["h100-80gb"], "context_tokens": 4096, "context_sweep": [4096]})
    path = tmp_path / "results.json"
    results.write_results(path, results.results_document(sc, {}))
    params = tmp_path / "p.yaml"
    params.write_text("kind: serving\n")
    runner._finish_results(path, sc, params, {"version": "x", "date": "2026-01-01"})
    assert results.read_results(path)["provenance"]["model_revisions"] == {"acme/tiny-llama": REV}


def test_refresh_hashes_the_cached_config_of_a_hub_id(hf_home):
    """A new revision in the cache changes the scenario's catalog inputs (the report is rebuilt)."""
    from types import SimpleNamespace

    from llmsizing.refresh.inputs import Hasher, catalog_files

    add_to_cache(hf_home, "acme/m", llama3_config(), REV)
    sc = SimpleNamespace(models=["acme/m"], gpus=[])
    files = catalog_files(sc)
    assert files["hub:acme/m"] == hf_home / "models--acme--m" / "snapshots" / REV / "config.json"
    first = Hasher().file(files["hub:acme/m"])
    add_to_cache(hf_home, "acme/m", {**llama3_config(), "num_hidden_layers": 16}, REV2, ref=None)
    (hf_home / "models--acme--m" / "refs" / "main").write_text(REV2)
    assert Hasher().file(catalog_files(sc)["hub:acme/m"]) != first

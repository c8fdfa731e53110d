"""Validation as a feature: the data set, the other methods as published, `llmsizing validate`, the bar.

The numbers ``llmsizing validate`` prints are computed once (``result``) and asserted here: the
command prints exactly them, the other methods' estimates and our parameter/weight estimates match
the golden file, and in every category our median |error| is below every other method's on the
cases that method covers. The CPU ground-truth section measures a tiny model of every architecture
family with torch + transformers + peft (``tests/groundtruth/harness.py``).

Regenerate the golden file after a deliberate change:
``LLMSIZING_UPDATE_GOLDEN=1 pytest tests/test_validation.py -k golden`` (review the diff).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing.cli import main
from llmsizing.validation import cases as C
from llmsizing.validation import others as O
from llmsizing.validation import others_calculators as OC
from llmsizing.validation import others_estimators as OE
from llmsizing.validation import report
from llmsizing.validation import run as R
from llmsizing.units import GB, GiB, MiB

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "validation_golden.json"


@pytest.fixture(scope="module")
def result():
    return R.run_validation()


def _case(cid: str) -> C.Case:
    return next(c for c in C.load_cases() if c.id == cid)


# ----------------------------------------------------------------------------- the data set


def test_cases_load_and_every_supported_case_resolves():
    cases = C.load_cases()
    assert len(cases) >= 120
    assert len({c.id for c in cases}) == len(cases)
    for c in cases:
        if not c.supported:
            assert c.reason
            continue
        spec = C.model_spec(c)
        assert A.params_total(spec) > 0
        if c.gpu:
            catalog.load_gpu(c.gpu)
        assert c.measured_base is not None


def test_every_calibration_case_is_kept():
    """All 104 published cases appear, supported or not (shared/reference/calibration.yaml when present)."""
    path = next((p for p in (ROOT / "shared" / "reference" / "calibration.yaml",
                             ROOT.parent / "shared" / "reference" / "calibration.yaml") if p.is_file()), None)
    if path is None:
        pytest.skip("shared/reference/calibration.yaml not in this checkout")
    ids = {c["id"] for c in catalog.read_yaml_file(path)}
    kept = {c.calibration_id for c in C.load_cases()}
    assert ids <= kept, sorted(ids - kept)


def test_unsupported_architectures_stay_in_the_set():
    by_id = {c.id: c for c in C.load_cases()}
    for cid in ("A-peft-t0_3b-lora", "A-peft-bloomz7b1-lora", "A-peft-mt0xxl-lora", "B-vllm-pr4454-opt125m-a6000-blocks"):
        assert not by_id[cid].supported and "not a supported family" in by_id[cid].reason


def test_categories_cover_the_brief():
    cats = {c.category for c in C.load_cases() if c.supported}
    assert {"finetune-memory", "serving-kv-capacity", "weights", "throughput", "time", "params", "bounds"} <= cats
    quantities = {c.quantity for c in C.load_cases() if c.supported}
    assert {"allocated", "reserved", "device", "kv_blocks", "kv_tokens", "tokens_per_s_per_gpu", "gpu_hours",
            "params", "file_bytes", "weight_bytes_per_rank"} <= quantities


def test_units_convert_to_base_units():
    assert _case("A-torchtune-llama31-8b-full-4090").measured_base == pytest.approx(18.9 * GiB)
    assert _case("A-peft-llama2-70b-lora-zero3-8xh100").measured_base == pytest.approx(64 * GB)
    assert _case("C-llama3-405b-8k-gpus").measured_base == pytest.approx(0.43)
    assert _case("C-deepseek-v3-per-trillion-tokens").measured_base == pytest.approx(180e3 * 3600)


def test_a_bad_case_is_one_clear_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("- {id: x, category: nope, supported: true, quantity: params, measured: {value: 1, unit: params},"
                 " confidence: high, source: s}\n")
    with pytest.raises(catalog.CatalogError, match="category 'nope'"):
        C.load_case_file(p)


# ----------------------------------------------------------------------------- other methods, as published


def test_accelerate_formulas():
    # estimate_training_usage: float32 -> step = 4x fp32 size; float16 -> optimizer = 2x fp32 size.
    assert OE.accelerate_training_bytes(4e9, "float32") == 16e9
    assert OE.accelerate_training_bytes(4e9, "float16") == 8e9
    assert OE.accelerate_training_bytes(4e9, "int8") is None
    assert OE.accelerate_total_bytes(4e9, "int4") == 0.5e9
    spec = catalog.load_model("llama-3.1-8b")  # AutoModel: no lm_head; rotary inv_freq + original_inv_freq (2 x 64)
    assert OE.accelerate_model_elements(spec) == 8_030_261_248 - 128_256 * 4096 + 128


def test_deepspeed_formulas():
    p, n = 7.5e9, 64
    assert OE.deepspeed_zero2_gpu_bytes(p, n, cpu_offload=False) == 2 * p + int(18 * p / n)
    assert OE.deepspeed_zero2_gpu_bytes(p, n, cpu_offload=True) == 2 * p
    ll = 1e8
    assert OE.deepspeed_zero3_gpu_bytes(p, ll, n, False, False) == 4 * ll + int(18 * p / n)
    assert OE.deepspeed_zero3_gpu_bytes(p, ll, n, True, False) == 4 * ll + int(2 * p / n)
    assert OE.deepspeed_zero3_gpu_bytes(p, ll, n, True, True) == 4 * ll
    # largest module of Llama-3.1-70B is the embedding (128256 x 8192); Mixtral's is a layer's fused experts
    assert OE.deepspeed_largest_layer_params(catalog.load_model("llama-3.1-70b")) == 128_256 * 8192
    mix = catalog.load_model("mixtral-8x7b")
    assert OE.deepspeed_largest_layer_params(mix) == 8 * 3 * 4096 * 14336


def test_llm_analysis_param_formula():
    m = OC.LlmAnalysisModel.from_spec(catalog.load_model("llama-3.1-8b"))
    h, f, L, V = 4096, 14336, 32, 128256
    per_layer = 2 * h * h + 2 * h * (h * 8 / 32) + 3 * h * f + 2 * h
    assert m.total_params() == L * per_layer + V * h + h  # one embedding (shared_embedding=True default)
    assert OC.LlmAnalysisModel.from_spec(catalog.load_model("deepseek-v3")) is None  # no MLA


def test_vidur_and_gpu_poor_formulas():
    spec = catalog.load_model("llama-3.1-8b")
    c = OC.GpuPoorConfig.from_spec(spec)
    assert c.params() == 2 * 128256 * 4096 + 32 * 4 * 4096 ** 2 + 32 * 3 * 14336 * 4096
    per_layer = 4096 * 128 * (32 + 2 * 8) + 4096 * 128 * 32 + 3 * 4096 * 14336
    assert OC.vidur_param_bytes_per_device(spec) == 2 * per_layer * 32
    kv = 2 * 2 * 128 * 8 * 32
    assert OC.vidur_kv_capacity_tokens(spec, 48) == pytest.approx((48 * GiB * 0.9 - 2 * per_layer * 32) / kv)
    # Q8_0: 34 bytes per 32 weights
    assert OC.gpu_poor_ggml_bytes(c, "q8_0") == pytest.approx(34 * c.params() / 32)
    assert OC.GpuPoorConfig.from_spec(catalog.load_model("mixtral-8x7b")) is None


def test_llamafactory_rule():
    assert OE.llamafactory_bytes(7e9, "full-amp") == pytest.approx(126 * GB)
    assert OE.llamafactory_bytes(70e9, "qlora-4bit") == pytest.approx(35 * GB)


def test_methods_do_not_apply_outside_their_scope():
    lora = _case("A-torchtune-llama31-8b-lora-4090")
    spec, gpu = C.model_spec(lora), catalog.load_gpu(lora.gpu)
    assert O.estimate("accelerate", lora, spec, gpu) is None       # no LoRA
    assert O.estimate("deepspeed", lora, spec, gpu) is None        # model states of full fine-tuning only
    assert O.estimate("rule-1.2x", lora, spec, gpu) is None        # inference only
    assert O.estimate("llamafactory", lora, spec, gpu) is not None
    multi = _case("A-torchtune-llama31-70b-lora-8xa100")
    assert O.estimate("llamafactory", multi, C.model_spec(multi), catalog.load_gpu(multi.gpu)) is None
    kv = _case("B-vllm-i21348-qwen3-235b-fp8-4xh100")
    assert O.estimate("vidur", kv, C.model_spec(kv), catalog.load_gpu(kv.gpu)) is None  # MoE, fp8


@pytest.mark.groundtruth
def test_accelerate_reimplementation_matches_accelerate():
    """Our accelerate formula equals accelerate's own calculate_maximum_sizes on a meta-device model."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    accelerate = pytest.importorskip("accelerate")
    from accelerate.commands.estimate import estimate_training_usage
    from accelerate.utils import calculate_maximum_sizes

    from llmsizing.specs import model_spec_from_config
    from llmsizing.validation.groundtruth import tiny_config

    for family in ("llama", "qwen2", "mistral", "qwen3", "mixtral", "qwen3_moe", "gemma2", "deepseek_v3"):
        cfg = tiny_config(family)
        hf = transformers.AutoConfig.for_model(cfg["model_type"], **{k: v for k, v in cfg.items()
                                                                     if k not in ("model_type", "architectures")})
        with accelerate.init_empty_weights():
            model = transformers.AutoModel.from_config(hf, dtype=__import__("torch").float32)
        total, _ = calculate_maximum_sizes(model)
        spec = model_spec_from_config(cfg, slug=family)
        assert OE.accelerate_model_elements(spec) * 4 == total, family
        assert max(estimate_training_usage(total, "float16").values()) == OE.accelerate_training_bytes(total, "float16")


# ----------------------------------------------------------------------------- run and command


def test_command_prints_the_numbers_of_run(result, capsys):
    assert main(["validate", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    rows = {r["id"]: r for r in printed["rows"]}
    assert len(rows) == len(result.rows)
    for r in result.rows:
        got = rows[r.case.id]
        for name, e in r.estimates.items():
            shown = got["ours"] if name == R.OURS else got["others"][name]
            if e.error_pct is None:
                assert shown["error_pct"] is None
            else:
                assert shown["error_pct"] == pytest.approx(e.error_pct, rel=1e-12)
    summary = {(s["category"], s["method"]): s for s in printed["summary"]}
    for s in result.summaries:
        got = summary[(s.category, s.method)]
        assert got["n"] == s.n
        if s.median_abs_error_pct is not None:
            assert got["median_abs_error_pct"] == pytest.approx(s.median_abs_error_pct, rel=1e-12)
            assert got["max_abs_error_pct"] == pytest.approx(s.max_abs_error_pct, rel=1e-12)


def test_command_text_has_table_and_summary(result, capsys):
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    for label in ("fine-tune memory", "serving KV capacity", "parameter counts", "median|err|", "Head to head"):
        assert label in out
    ours = result.summary("serving-kv-capacity")
    assert f"{ours.median_abs_error_pct:.1f}%" in out
    assert "not scored: A-peft-t0_3b-lora" in out


def test_command_category_and_errors(capsys):
    assert main(["validate", "--category", "params", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {r["category"] for r in printed["rows"]} == {"params"}
    assert main(["validate", "--category", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bogus" in err[0] and "finetune-memory" in err[0]


@pytest.mark.golden
def test_golden_numbers(result):
    """Other methods' estimates on every case, and ours on parameter counts and weights, do not move."""
    doc = R.golden_document(result)
    if os.environ.get("LLMSIZING_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(doc["others"]) == sorted(golden["others"])
    for cid, methods in golden["others"].items():
        assert sorted(doc["others"][cid]) == sorted(methods), cid
        for m, v in methods.items():
            got = doc["others"][cid][m]
            assert got == v if isinstance(v, bool) else math.isclose(got, v, rel_tol=1e-9), (cid, m, got, v)
    assert sorted(doc["ours"]) == sorted(golden["ours"])
    for cid, v in golden["ours"].items():
        assert math.isclose(doc["ours"][cid], v, rel_tol=1e-9), (cid, doc["ours"][cid], v)


# ----------------------------------------------------------------------------- the bar


@pytest.mark.published
@pytest.mark.parametrize("category", [c for c in C.CATEGORIES if c != "cpu-ground-truth"])
def test_ours_beats_every_other_method(result, category):
    """On every category, our median |error| is below each other method's on the cases that method covers."""
    for m in result.methods:
        h = R.head_to_head(result.rows, category, m)
        if h:
            n, ours, theirs = h
            assert ours < theirs, f"{category}: ours {ours:.1f}% vs {m} {theirs:.1f}% on {n} cases"
    for v in report.verdicts(result):
        if v["category"] == category and "bounds" in v["verdict"]:
            assert v["ours"] >= v["theirs"], v  # bounds satisfied, %


@pytest.mark.published
def test_every_supported_case_gets_our_estimate(result):
    failed = [(r.case.id, r.estimates[R.OURS].error) for r in result.rows
              if r.case.supported and r.estimates[R.OURS].value is None]
    assert not failed


@pytest.mark.published
def test_summary_levels(result):
    """Where the estimator is exact by construction, the errors say so."""
    assert result.summary("params").max_abs_error_pct < 0.5
    assert result.summary("weights").median_abs_error_pct < 1.0
    assert result.summary("serving-kv-capacity").median_abs_error_pct < 10.0
    bounds = result.summary("bounds")
    assert bounds.satisfied == bounds.n


# ----------------------------------------------------------------------------- report helpers


def test_report_frames_and_figure(result, tmp_path):
    s = report.summary_frame(result)
    assert {"category", "method", "n", "median_abs_error_pct", "max_abs_error_pct"} <= set(s.columns)
    assert (s["method"] == "ours").sum() >= 7
    rows = report.rows_frame(result)
    assert len(rows) == sum(r.case.supported for r in result.rows)
    h2h = report.head_to_head_frame(result)
    assert {v.split(" (")[0] for v in h2h["verdict"]} <= {"ours better", "tie", "METHOD BETTER"}
    fig = report.figure_predicted_vs_measured(result)
    out = tmp_path / "pvm.png"
    fig.savefig(out, dpi=60)
    assert out.stat().st_size > 10_000
    assert len([a for a in fig.axes if a.get_title()]) >= 6


# ----------------------------------------------------------------------------- measurement script


def test_measure_gpu_is_importable_and_says_when_there_is_no_gpu(capsys, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("measure_gpu", ROOT / "tools" / "measure_gpu.py")
    mg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mg)
    assert mg.gpu_slug("NVIDIA H100 80GB HBM3") == "h100-80gb"
    assert mg.gpu_slug("NVIDIA GeForce RTX 4090") == "rtx-4090"
    cfg, name = mg.load_config("llama-3.1-8b", None, 2)
    assert cfg["num_hidden_layers"] == 2 and name == "llama-3.1-8b-2layers"
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        assert mg.main(["train", "--model", "llama-3.1-8b", "--layers", "2"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err
    # a measurement written by the script is a valid case file the validation runs
    env = {"gpu_name": "NVIDIA H100 80GB HBM3", "torch": "x", "transformers": "y", "peft": "z"}
    setup = dict(method="lora", precision="bf16", optimizer="adamw", seq_len=512, micro_batch=1,
                 gradient_checkpointing=True, attention_kernel="flash", lora_rank=8, lora_alpha=16,
                 lora_targets="all-linear")
    measured = {"allocated": 20 * GiB, "reserved": 21 * GiB, "device": 22 * GiB, "tokens_per_s": 5000.0}
    path = mg.write_cases(mg.cases_for("train", name, cfg, "h100-80gb", setup, measured, env, ["x"]), tmp_path)
    cases = C.load_case_file(path)
    assert [c.quantity for c in cases] == ["allocated", "reserved", "device", "tokens_per_s_per_gpu"]
    r = R.run_validation(cases=cases)
    assert all(row.estimates[R.OURS].error_pct is not None for row in r.rows)


# ----------------------------------------------------------------------------- CPU ground truth


@pytest.mark.groundtruth
@pytest.mark.slow
def test_cpu_ground_truth_every_family():
    """Tiny random-weight models of every family, one training step on CPU, in the validation table."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    from tests.groundtruth.harness import measure_training_step

    from llmsizing.validation.groundtruth import FAMILIES, groundtruth_rows

    rows = groundtruth_rows(measure_training_step)
    assert {r.case.id.split("/")[1] for r in rows} == set(FAMILIES)
    result = R.run_validation(category="cpu-ground-truth", extra_rows=rows)
    ours = result.summary("cpu-ground-truth")
    assert ours.n == len(rows)
    # full fine-tuning model states are exact for every family
    for r in rows:
        if "/full/" in r.case.id and r.case.quantity != "layer_activation_bytes":
            assert r.estimates[R.OURS].error_pct == pytest.approx(0.0, abs=1e-9), r.case.id
    for m in ("llm-analysis", "gpu_poor"):
        n, a, b = R.head_to_head(result.rows, "cpu-ground-truth", m)
        assert a < b, (m, a, b)
    print()
    print(report.format_table(result))
    print(report.format_summary(result))

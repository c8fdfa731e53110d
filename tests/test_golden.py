"""Golden results: tests/golden/<scenario>.json pins the numbers of every params/*.yaml.

A failure prints what changed (``path: old -> new``) and a unified diff. To accept a deliberate
change: ``make golden`` (``python -m llmsizing.report.golden --update``), then review ``git diff tests/golden``.

The default scenario is compared through its built report (the notebook's own results.json,
shared with test_report_pdf.py), so the golden file also pins what the notebook computes; the
other scenarios are computed by the library directly, as the notebook would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DEFAULT_PARAMS, ROOT

from llmsizing.report import golden
from llmsizing.report.results import read_results
from llmsizing.report.scenario import load_scenario

pytestmark = pytest.mark.golden

GOLDEN = ROOT / "tests" / "golden"
PARAMS = sorted((ROOT / "params").glob("*.yaml"))
HOW_TO_UPDATE = "If the change is intended: make golden (python -m llmsizing.report.golden --update), then review git diff."


def _cases():
    for p in PARAMS:
        marks = [pytest.mark.notebook, pytest.mark.slow] if p == DEFAULT_PARAMS else [pytest.mark.unit]
        yield pytest.param(p, id=p.stem, marks=marks)


@pytest.mark.parametrize("params", list(_cases()))
def test_results_match_golden(params: Path, request):
    sc = load_scenario(params)
    path = golden.golden_path(GOLDEN, sc.scenario_name)
    assert path.is_file(), f"no golden file {path}; {HOW_TO_UPDATE}"
    expected = json.loads(path.read_text(encoding="utf-8"))
    if params == DEFAULT_PARAMS:
        doc = read_results(request.getfixturevalue("default_report").files["results"])
        actual = {k: doc[k] for k in ("schema", "scenario", "results")}
    else:
        _, actual = golden.compute(params)
    if not golden.compare(expected, actual):
        pytest.fail(golden.diff_text(expected, actual, str(path.relative_to(ROOT))) + "\n" + HOW_TO_UPDATE,
                    pytrace=False)


def test_no_stale_golden_files():
    names = {load_scenario(p).scenario_name for p in PARAMS}
    stale = sorted(p.name for p in GOLDEN.glob("*.json") if p.stem not in names)
    assert not stale, f"golden files without a params file: {stale}"


# ----------------------------------------------------------------------------- the update command


@pytest.mark.unit
def test_update_is_deliberate_and_diff_names_the_change(tmp_path, capsys):
    params = tmp_path / "params"
    params.mkdir()
    (params / "tiny.yaml").write_text(
        "kind: serving\nscenario_name: tiny\nmodels: [deepseek-r1-distill-qwen-1.5b]\ngpus: [l40s]\n"
        "users: 2\ncontext_tokens: 4096\ncontext_sweep: [4096]\n", encoding="utf-8")
    gold = tmp_path / "golden"
    args = ["--params-dir", str(params), "--golden-dir", str(gold)]

    assert golden.main(args) == 1, "a missing golden file fails the check"
    assert "no golden file yet" in capsys.readouterr().out
    assert golden.main(args + ["--update"]) == 0
    assert (gold / "tiny.json").is_file()
    assert golden.main(args) == 0
    capsys.readouterr()

    doc = json.loads((gold / "tiny.json").read_text())
    key = "serving.deepseek-r1-distill-qwen-1.5b.memory_per_gpu_bytes"
    old = doc["results"]["headline"][key]
    doc["results"]["headline"][key] = old + 1000
    (gold / "tiny.json").write_text(json.dumps(doc), encoding="utf-8")
    assert golden.main(args) == 1
    out = capsys.readouterr().out
    assert f"results.headline.{key}: {old + 1000} -> {old}" in out
    assert "@@" in out, "a unified diff follows the summary"


@pytest.mark.unit
def test_float_noise_is_not_a_change():
    a = {"x": 1.0, "y": [1, 2.5], "z": {"w": None}}
    b = {"x": 1.0 + 1e-13, "y": [1, 2.5], "z": {"w": None}}
    assert golden.compare(a, b)
    assert not golden.compare(a, {"x": 1.001, "y": [1, 2.5], "z": {"w": None}})
    assert not golden.compare({"f": True}, {"f": 1})

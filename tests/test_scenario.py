"""Scenario validation: the one gate for params YAML, notebook parameters and tests.

Every bad input fails with one line naming the file and the key, before anything runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmsizing.cli import main
from llmsizing.errors import ScenarioError
from llmsizing.choices import DEEPSEEK_R1_FAMILY
from llmsizing.report.scenario import KINDS, PARAMETERS, Scenario, load_scenario, parameters_for, parse_tokens

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
PARAMS = sorted((ROOT / "params").glob("*.yaml"))
NOTEBOOKS = ROOT / "notebooks"


def write(tmp_path: Path, text: str, name: str = "acme.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def error_of(tmp_path: Path, text: str) -> str:
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(p)
    msg = str(info.value)
    assert "\n" not in msg, "errors are one line"
    assert str(p) in msg, "errors name the file"
    return msg


# ----------------------------------------------------------------------------- the shipped files


def test_required_params_files_exist():
    names = {p.stem for p in PARAMS}
    assert {"deepseek-r1-family", "chat-70b-h100-200-users", "qlora-7b-single-24gb"} <= names


@pytest.mark.parametrize("path", PARAMS, ids=lambda p: p.stem)
def test_params_files_validate(path):
    sc = load_scenario(path)
    assert sc.scenario_name == path.stem, "scenario_name should match the file name"
    assert (NOTEBOOKS / sc.notebook).is_file()


def test_default_scenario_is_the_customer_request():
    sc = load_scenario(ROOT / "params" / "deepseek-r1-family.yaml")
    assert sc.kind == "customer"
    assert sc.models == DEEPSEEK_R1_FAMILY and len(sc.models) == 7
    assert sc.users == 3
    assert sc.data_sizes == ("1K", "1M", "1GB", "10GB", "100GB", "1TB")
    assert sc.deadline_hours == 24


@pytest.mark.parametrize("kind", KINDS)
def test_notebook_parameters_cell_matches_schema(kind):
    """The notebook's parameters cell declares exactly the scenario keys of its kind (+ results_path)."""
    from papermill.inspection import inspect_notebook

    declared = inspect_notebook(str(NOTEBOOKS / f"{kind}.ipynb"))
    expected = [p.name for p in parameters_for(kind)] + ["results_path"]
    assert list(declared) == expected
    for p in parameters_for(kind):
        info = declared[p.name]
        assert info["inferred_type_name"] == p.type, p.name
        assert info["help"], f"{p.name} has no '# help' comment"
    # The notebook's defaults are themselves a valid scenario.
    defaults = {name: eval(info["default"], {}) for name, info in declared.items() if name != "results_path"}  # noqa: S307
    Scenario.from_dict(defaults, where=f"{kind}.ipynb")


@pytest.mark.parametrize("path", PARAMS, ids=lambda p: p.stem)
def test_params_file_is_a_papermill_parameters_file(path):
    """Every key of a params file is a parameter its notebook declares (papermill -f works)."""
    import yaml
    from papermill.inspection import inspect_notebook

    sc = load_scenario(path)
    declared = inspect_notebook(str(NOTEBOOKS / sc.notebook))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(data) <= set(declared)


def test_help_notebook_documents_parameters():
    from papermill.cli import papermill
    from click.testing import CliRunner

    result = CliRunner().invoke(papermill, ["--help-notebook", str(NOTEBOOKS / "serving.ipynb")])
    assert result.exit_code == 0, result.output
    assert "users: int (default 200)" in result.output
    assert "concurrent users" in result.output


# ----------------------------------------------------------------------------- round trips


def test_round_trip_through_parameters():
    sc = load_scenario(ROOT / "params" / "deepseek-r1-family.yaml")
    again = Scenario.from_dict(sc.parameters(), where="notebook parameters")
    assert again == sc
    assert json.loads(json.dumps(sc.parameters())) == sc.parameters()


def test_defaults_fill_missing_keys(tmp_path):
    sc = load_scenario(write(tmp_path, "kind: serving\n"))
    assert sc.scenario_name == "acme"  # file stem
    assert sc.users == 3 and sc.models == DEEPSEEK_R1_FAMILY


def test_names_are_normalized_to_catalog_slugs():
    sc = Scenario.from_dict({"kind": "serving", "models": ["deepseek-ai/DeepSeek-R1"], "gpus": ["h100"]})
    assert sc.models == ("deepseek-r1",)
    assert sc.gpus == ("h100-80gb",)


def test_replace_revalidates():
    sc = Scenario.from_dict({"kind": "serving"})
    assert sc.replace(users=10).users == 10
    with pytest.raises(ScenarioError, match="'users'"):
        sc.replace(users=0)


def test_documented_string_forms():
    sc = Scenario.from_dict({"kind": "customer", "context_tokens": "32K", "seq_len": "4K",
                             "data_sizes": ["1e9", "15.6T tokens", "1K samples", 1000], "deadline": "2d"})
    assert sc.context_tokens == 32768 and sc.seq_len == 4096
    assert [d.unit for d in sc.data()] == ["bytes", "tokens", "samples", "bytes"]
    assert sc.data()[0].amount == 1e9
    assert sc.deadline_hours == 48
    assert parse_tokens("128K tokens") == 131072


def test_yaml_dates_and_iso_strings(tmp_path):
    sc = load_scenario(write(tmp_path, "kind: serving\ndate: 2026-03-01\n"))
    assert sc.date == "2026-03-01"
    assert sc.cover()["date"] == "2026-03-01"
    assert load_scenario(write(tmp_path, "kind: serving\n", "b.yaml")).report_date()  # today


def test_every_parameter_has_help_and_valid_default():
    for p in PARAMETERS:
        assert p.help and p.type in {"str", "int", "float", "bool", "list", "dict"}, p.name
    for kind in KINDS:
        Scenario.from_dict({p.name: p.default for p in parameters_for(kind)} | {"kind": kind})


# ----------------------------------------------------------------------------- bad input


def test_unknown_key_names_file_key_and_allowed(tmp_path):
    msg = error_of(tmp_path, "kind: serving\nuserz: 3\n")
    assert "'userz'" in msg and "did you mean 'users'" in msg and "allowed:" in msg and "context_tokens" in msg


def test_key_of_another_kind(tmp_path):
    msg = error_of(tmp_path, "kind: serving\nmethods: [lora]\n")
    assert "'methods'" in msg and "finetune" in msg


def test_missing_and_unknown_kind(tmp_path):
    assert "missing key 'kind'" in error_of(tmp_path, "users: 3\n")
    assert "'kind'" in error_of(tmp_path, "kind: training\n")


@pytest.mark.parametrize(
    ("yaml_text", "key", "expected"),
    [
        ("users: three", "users", "expected an integer"),
        ("users: 2.5", "users", "expected an integer"),
        ("users: true", "users", "expected an integer"),
        ("users: '3'", "users", "quoted text"),
        ("users: 0", "users", ">= 1"),
        ("users: 1e3", "users", "1.0e+9"),
        ("context_tokens: 200000", "context_tokens", "exceeds"),
        ("kv_precision: int3", "kv_precision", "choose one of"),
        ("models: deepseek-r1", "models", "expected a list"),
        ("models: []", "models", "1 to"),
        ("models: [deepseek-r1, deepseek-r1]", "models[1]", "listed twice"),
        ("models: [gpt-5]", "models[0]", "unknown model"),
        ("gpus: [h100x]", "gpus[0]", "unknown GPU"),
        ("precision: fp5", "precision", "unknown precision"),
        ("engine: tgi", "engine", "choose one of"),
        ("customer: 42", "customer", "expected a string"),
        ("context_tokens: lots", "context_tokens", "cannot parse token count"),
        ("gpu_memory: 24G", "gpu_memory", "GiB or GB"),
        ("date: tomorrow", "date", "YYYY-MM-DD"),
        ("assumptions: [1]", "assumptions", "expected a mapping"),
        ("assumptions: {mfu: 0.5}", "assumptions", "unknown assumption 'mfu'"),
        ("assumptions: {cuda_context_bytes: 5e8}", "assumptions.cuda_context_bytes", "1.0e+9"),
        ("assumptions: {cuda_context_bytes: lots}", "assumptions", "must be a number"),
    ],
)
def test_wrong_values_name_the_key(tmp_path, yaml_text, key, expected):
    msg = error_of(tmp_path, f"kind: serving\n{yaml_text}\n")
    assert f"key '{key}'" in msg
    assert expected in msg


@pytest.mark.parametrize(
    ("yaml_text", "key", "expected"),
    [
        ("data_sizes: [1 parsec]", "data_sizes[0]", "accepted"),
        ("data_sizes: [-1GB]", "data_sizes[0]", "data size"),
        ("deadline: soon", "deadline", "cannot parse duration"),
        ("methods: [dpo]", "methods[0]", "full, lora, qlora"),
        ("epochs: 0", "epochs", "> 0.0"),
        ("epochs: 1e0", "epochs", "1.0e+9"),
        ("language: klingon", "language", "en, zh"),
        ("optimizer: adam", "optimizer", "adamw"),
    ],
)
def test_wrong_finetune_values(tmp_path, yaml_text, key, expected):
    msg = error_of(tmp_path, f"kind: finetune\n{yaml_text}\n")
    assert f"key '{key}'" in msg and expected in msg


@pytest.mark.parametrize("name", ["../../etc/x", "a/b", "..", ".hidden", "Acme", "a b", "x..y", "/abs", "", "-x"])
def test_unsafe_scenario_names(tmp_path, name):
    msg = error_of(tmp_path, f"kind: serving\nscenario_name: {json.dumps(name)}\n")
    assert "'scenario_name'" in msg


def test_unsafe_file_stem_without_scenario_name(tmp_path):
    p = write(tmp_path, "kind: serving\n", "Bad Name.yaml")
    with pytest.raises(ScenarioError, match="not a safe report folder name; add 'scenario_name:'"):
        load_scenario(p)


def test_customer_strings_are_kept_verbatim():
    evil = "<script>alert(1)</script>"
    inj = "\"; import os; os.system('touch pwned'); \""
    sc = Scenario.from_dict({"kind": "serving", "customer": evil, "title": inj, "notes": "{{ 7*7 }} ${x}"})
    assert sc.customer == evil and sc.title == inj and sc.notes == "{{ 7*7 }} ${x}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("- kind: serving\n", "mapping"),
        ("kind: [serving\n", "invalid YAML"),
        ("a: &x serving\nkind: *x\n", "aliases"),
        ("kind: !!python/object:os.system serving\n", "invalid YAML"),
    ],
)
def test_malformed_files(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="no such params file"):
        load_scenario(tmp_path / "nope.yaml")


def test_non_utf8_file(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_bytes(b"kind: serving\ncustomer: \xff\n")
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_scenario(p)


# ----------------------------------------------------------------------------- command line


def test_cli_run_bad_input_is_one_line_exit_2(tmp_path, capsys):
    p = write(tmp_path, "kind: serving\nscenario_name: acme\nuserz: 3\n")
    out = tmp_path / "reports"
    assert main(["run", str(p), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(p) in err and "'userz'" in err
    assert not out.exists() or not any(out.iterdir()), "nothing may be written for bad input"


def test_cli_run_validates_every_file_first(tmp_path, capsys):
    good = write(tmp_path, "kind: serving\nscenario_name: good\n", "good.yaml")
    bad = write(tmp_path, "kind: serving\nscenario_name: bad\nusers: -1\n", "bad.yaml")
    out = tmp_path / "reports"
    assert main(["run", str(good), str(bad), "--out", str(out)]) == 2
    assert "bad.yaml" in capsys.readouterr().err
    assert not (out / "good").exists()


def test_cli_run_missing_file_and_bad_format(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: no such params file" in capsys.readouterr().err
    good = write(tmp_path, "kind: serving\n")
    assert main(["run", str(good), "--to", "docx", "--out", str(tmp_path / "r")]) == 2
    assert "docx" in capsys.readouterr().err


def test_cli_assumptions_json(capsys):
    from llmsizing.assumptions import registry

    assert main(["assumptions", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(registry())
    assert all({"name", "default", "unit", "source"} <= set(r) for r in rows)
    assert main(["assumptions"]) == 0
    assert "cuda_context_bytes" in capsys.readouterr().out


def test_choices_mirror_the_estimators():
    from llmsizing import dataset
    from llmsizing.serving import plan as serving
    from llmsizing.training import memory as training
    from llmsizing import choices as S

    assert S.ENGINES == serving.ENGINES
    assert S.METHODS == training.METHODS
    assert S.OPTIMIZERS == training.OPTIMIZERS
    assert S.TRAIN_PRECISIONS == training.PRECISIONS
    assert S.LANGUAGES == dataset.LANGUAGES
    assert S.KV_PRECISIONS == ("auto", *serving.KV_PRECISION_BYTES)


# ----------------------------------------------------------------------------- notebooks are thin


def _code_cells(kind: str):
    import nbformat

    nb = nbformat.read(NOTEBOOKS / f"{kind}.ipynb", as_version=4)
    return nb, [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("kind", KINDS)
def test_notebooks_are_thin_and_committed_without_outputs(kind):
    """No def, no loops, no arithmetic, no sys.path; every code cell hidden; no outputs committed."""
    import ast

    nb, cells = _code_cells(kind)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in cells:
        assert cell.outputs == [] and cell.execution_count is None, "commit notebooks without outputs"
        assert "remove-input" in cell.metadata.get("tags", []), "code cells are hidden in the report"
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.For,
                                         ast.While, ast.ListComp, ast.DictComp, ast.GeneratorExp, ast.BinOp,
                                         ast.AugAssign)), f"{type(node).__name__} in: {cell.source[:60]}"
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] == "llmsizing", node.module
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] == "llmsizing" for a in node.names)
        assert "sys.path" not in cell.source


@pytest.mark.parametrize("kind", KINDS)
def test_notebook_validates_every_parameter(kind):
    """The cell after the parameters passes every parameter to the one gate: Scenario.from_namespace(globals())."""
    import ast

    _, cells = _code_cells(kind)
    gate = next(c for c in cells if "Scenario.from_namespace" in c.source)
    call = next(n for n in ast.walk(ast.parse(gate.source)) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "from_namespace")
    assert len(call.args) == 1 and ast.unparse(call.args[0]) == "globals()"
    namespace = {p.name: p.default for p in PARAMETERS} | {"kind": kind, "results_path": "", "sections": object()}
    assert Scenario.from_namespace(namespace).parameters() == Scenario.from_dict(
        {p.name: p.default for p in parameters_for(kind)} | {"kind": kind}).parameters()


def test_notebook_parameters_cells_follow_the_definition():
    """Every notebook's parameters cell is what the definition writes (python -m llmsizing.report.notebooks --write)."""
    from llmsizing.report.notebooks import main, stale_notebooks

    assert stale_notebooks(NOTEBOOKS) == []
    assert main(["--dir", str(NOTEBOOKS)]) == 0


def test_notebook_parameters_cell_drift_is_caught(tmp_path):
    import shutil

    from llmsizing.report.notebooks import cell_values, main, parameters_cell, stale_notebooks

    for kind in KINDS:
        shutil.copy(NOTEBOOKS / f"{kind}.ipynb", tmp_path)
    nb_path = tmp_path / "serving.ipynb"
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cell = parameters_cell(nb)
    cell["source"] = [line for line in cell["source"] if not line.startswith("engine:")]
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert stale_notebooks(tmp_path) == [nb_path]
    assert main(["--write", "--dir", str(tmp_path)]) == 0
    assert stale_notebooks(tmp_path) == []
    values = cell_values("".join(parameters_cell(json.loads(nb_path.read_text(encoding="utf-8")))["source"]))
    assert values["engine"] == "vllm" and values["users"] == 200, "examples kept, the missing key from the definition"
    assert nb_path.read_bytes() == (NOTEBOOKS / "serving.ipynb").read_bytes()

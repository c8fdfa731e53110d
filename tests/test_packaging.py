"""Packaging: data in the package, a wheel that works from any folder, shell completion, --set aliases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import weasyprint_usable
from llmsizing.assumptions import Assumptions
from llmsizing.cli import build_parser, main
from llmsizing.dataset import bytes_per_token
from llmsizing.errors import ScenarioError
from llmsizing.planner.audit import default_table_path
from llmsizing.report.parameters import parameter
from llmsizing.report.runner import notebooks_dir
from llmsizing.resources import package_dir
from llmsizing.training.aliases import alias_overrides, mfu_overrides, tokens_per_byte_overrides
from llmsizing.choices import ENGINES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.unit
def test_package_folders_hold_the_notebooks_and_examples(monkeypatch, tmp_path):
    monkeypatch.delenv("LLMSIZING_NOTEBOOK_DIR", raising=False)
    assert {p.name for p in notebooks_dir().glob("*.ipynb")} == {"serving.ipynb", "finetune.ipynb", "customer.ipynb"}
    # in a checkout the package's folders are the repository's (one copy of each)
    assert notebooks_dir().resolve() == (ROOT / "notebooks").resolve()
    assert package_dir("examples").resolve() == (ROOT / "params").resolve()
    monkeypatch.chdir(tmp_path)  # no params/ here: the audit falls back to the packaged table
    assert default_table_path() == package_dir("examples") / "audit" / "seed-table.yaml"
    assert default_table_path().is_file()
    with pytest.raises(ValueError):
        package_dir("nope")


@pytest.mark.unit
def test_wheel_carries_notebooks_templates_catalogs_examples_and_validation(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("llmsizing-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("llmsizing/notebooks/serving.ipynb", "llmsizing/notebooks/finetune.ipynb",
                 "llmsizing/notebooks/customer.ipynb", "llmsizing/examples/deepseek-r1-family.yaml",
                 "llmsizing/examples/audit/seed-table.yaml", "llmsizing/report/templates/report/index.html.j2",
                 "llmsizing/report/templates/report/static/report.css", "llmsizing/catalog/models/deepseek-r1.yaml",
                 "llmsizing/catalog/precisions.yaml", "llmsizing/validation/cases.yaml", "llmsizing/hub.py",
                 "llmsizing/api.py"):
        assert name in names, name
    assert len([n for n in names if n.startswith("llmsizing/examples/") and n.endswith(".yaml")]) == \
        len(list((ROOT / "params").rglob("*.yaml")))
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    runtime = [line for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not any(pkg in line for line in runtime for pkg in ("torch", "transformers", "peft"))
    assert any("jupyterlab" in line and 'extra == "lab"' in line for line in meta.splitlines())


@pytest.mark.slow
@pytest.mark.render
@pytest.mark.skipif(not weasyprint_usable(), reason="WeasyPrint's system libraries are missing (make sysdeps)")
@pytest.mark.timeout(300)
def test_fresh_venv_install_runs_from_an_empty_folder(tmp_path):
    """tools/check_install.sh: wheel -> fresh venv -> `llmsizing run s.yaml` writes the PDF, no torch, HF cache."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LLMSIZING_NOTEBOOK_DIR", "VIRTUAL_ENV")}
    env.update(PYTHON=sys.executable, WORK=str(tmp_path / "work"))
    out = subprocess.run(["bash", str(ROOT / "tools" / "check_install.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for check in ("import torch fails", "report.pdf", "read the cached config", "all checks passed"):
        assert check in out.stdout


# --------------------------------------------------------------------------- completion


@pytest.mark.unit
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_lists_every_command_and_choice(shell, capsys):
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"    {name})" in script
    engines = " ".join(sorted(ENGINES))
    assert f"--engine) COMPREPLY=( $(compgen -W '{engines}'" in script
    assert "h100-80gb" in script and "deepseek-r1-distill-qwen-7b" in script
    assert script.rstrip().endswith("complete -o default -F _llmsizing llmsizing")


@pytest.mark.unit
def test_bash_completion_completes(tmp_path, capsys):
    main(["completion", "bash"])
    script = tmp_path / "c.bash"
    script.write_text(capsys.readouterr().out)
    probe = (f"source {script}; COMP_WORDS=(llmsizing fine); COMP_CWORD=1; _llmsizing; echo ${{COMPREPLY[@]}}; "
             "COMP_WORDS=(llmsizing finetune m --meth); COMP_CWORD=3; _llmsizing; echo ${COMPREPLY[@]}; "
             "COMP_WORDS=(llmsizing finetune m --method ''); COMP_CWORD=4; _llmsizing; echo ${COMPREPLY[@]}")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["finetune", "--method", "full lora qlora"]


# --------------------------------------------------------------------------- assumptions everywhere


@pytest.mark.unit
@pytest.mark.parametrize("gpu, name", [("h100-80gb", "mfu_qlora_hopper"), ("rtx-4090", "mfu_qlora_ada"),
                                       ("a100-80gb", "mfu_qlora_ampere"), ("mi300x", "mfu_qlora_other")])
def test_mfu_alias_picks_the_gpu_generation(gpu, name):
    assert mfu_overrides(0.3, "qlora", [gpu]) == {name: 0.3}


@pytest.mark.unit
def test_mfu_alias_for_several_gpus_and_any():
    assert mfu_overrides(0.3, "full", ["h100-80gb", "h200", "l40s"]) == {"mfu_full_hopper": 0.3, "mfu_full_ada": 0.3}
    assert len(mfu_overrides(0.3, "lora", ["any"])) == 5


@pytest.mark.unit
@pytest.mark.parametrize("language", ["en", "zh", "mixed", "code"])
def test_tokens_per_byte_alias_gives_exactly_that_rate(language):
    a = Assumptions(tokens_per_byte_overrides(0.25, language, "qwen2"))
    assert bytes_per_token(language, "qwen2", a) == pytest.approx(4.0, rel=1e-12)


@pytest.mark.unit
def test_explicit_set_wins_over_an_alias():
    out = alias_overrides(model="deepseek-r1-distill-qwen-7b", method="lora", gpu="h100-80gb", mfu=0.3,
                          assumptions={"mfu_lora_hopper": 0.4})
    assert out == {"mfu_lora_hopper": 0.4}


@pytest.mark.unit
def test_cli_mfu_equals_the_named_set(capsys):
    def run(*extra):
        assert main(["finetune", "deepseek-r1-distill-qwen-7b", "--method", "qlora", "--gpu", "rtx-4090",
                     "--data", "100M", "--seq-len", "2048", *extra, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    default, alias, named = run(), run("--mfu", "0.25"), run("--set", "mfu_qlora_ada=0.25")
    assert alias == named
    assert alias["hours"] > default["hours"] * 1.1  # lower utilisation, longer run
    tpb = run("--tokens-per-byte", "0.5")  # 2 bytes per token instead of 4.0 for Qwen2 English
    assert tpb["dataset_tokens"] == pytest.approx(default["dataset_tokens"] * 2, rel=1e-9)


@pytest.mark.unit
def test_audit_takes_set(capsys):
    assert main(["audit", "--set", "nope=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0]


@pytest.mark.unit
@pytest.mark.parametrize("text", ['{"mfu_qlora_ada": 0.25}', "mfu_qlora_ada: 0.25", "{mfu_qlora_ada: 0.25}"])
def test_assumptions_parameter_accepts_a_json_or_yaml_string(text):
    """papermill's ``-p assumptions '…'`` passes a string."""
    assert parameter("assumptions").validate(text, "notebook parameters") == {"mfu_qlora_ada": 0.25}
    assert parameter("assumptions").validate("", "notebook parameters") == {}


@pytest.mark.unit
@pytest.mark.parametrize("text, problem", [("[1, 2]", "expected a mapping"), ("{a: [", "invalid YAML"),
                                           ('{"no_such_assumption": 1}', "no_such_assumption")])
def test_assumptions_string_errors_are_one_line(text, problem):
    with pytest.raises(ScenarioError, match=problem):
        parameter("assumptions").validate(text, "notebook parameters")

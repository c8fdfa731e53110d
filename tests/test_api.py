"""The Python API (lib/llmsizing/api.py): the README's examples as doctests, the same numbers as the CLI."""

from __future__ import annotations

import doctest
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import llmsizing
from llmsizing.cli import build_parser, main

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def readme_python_blocks() -> str:
    """The ```python blocks of README.md, one after another (blank lines between)."""
    return "\n\n".join(re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S))


def test_readme_python_examples_pass_as_doctests():
    """Every ``>>>`` example of README.md's Python blocks runs and prints what the README says."""
    test = doctest.DocTestParser().get_doctest(readme_python_blocks(), {}, "README.md", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 10
    assert result.failed == 0


def _readme_command_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("llmsizing ") or line.startswith("HF_HUB_OFFLINE=1 llmsizing "):
                lines.append(line.split("llmsizing ", 1)[1])
    return lines


def test_readme_command_lines_parse():
    """Every ``llmsizing …`` line of the README's shell examples is a valid command line."""
    lines = _readme_command_lines()
    assert len(lines) >= 15
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)
    for line in lines:
        # "models | gpus" lists two commands; anything else after a pipe is another program
        first, *alternatives = line.split(" | ")
        for part in [first] + [a for a in alternatives if a.split()[0] in commands]:
            parser.parse_args(shlex.split(part))  # exits with 2 on a stale option


def _cli_json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_serve_matches_the_cli_cost_included(capsys):
    from llmsizing import serve

    api = serve("deepseek-r1-distill-llama-70b", "h100-80gb", users=3, context="32K").to_dict()
    cli = _cli_json(capsys, "serve", "deepseek-r1-distill-llama-70b", "--gpu", "h100-80gb", "--users", "3",
                    "--context", "32K")
    assert api == cli
    assert api["cluster"]["cost_usd_per_hour"] > 0


def test_finetune_matches_the_cli_and_mfu_is_set(capsys):
    from llmsizing import finetune

    api = finetune("deepseek-r1-distill-qwen-7b", "h100-80gb", method="qlora", data="1GB", mfu=0.25).to_dict()
    cli = _cli_json(capsys, "finetune", "deepseek-r1-distill-qwen-7b", "--method", "qlora", "--gpu", "h100-80gb",
                    "--data", "1GB", "--set", "mfu_qlora_hopper=0.25")
    assert api == cli
    assert "cost_usd" in api and api["cluster"] is not None


def test_results_are_typed_and_show_as_a_table():
    from llmsizing import model, serve

    s = serve("llama-3.1-8b", "h100-80gb", users=8, context=8192)
    frame = s.to_frame()
    assert len(frame) == 1
    for col in ("gpus", "memory_per_gpu.total", "kv_cache_capacity_tokens", "cluster.cost_usd_per_hour"):
        assert pd.api.types.is_numeric_dtype(frame[col]), col
    assert frame["memory_per_gpu.total"].iloc[0] == s.memory_per_gpu["total"]
    html = s._repr_html_()
    assert html.startswith("<table>") and "memory per GPU" in html and "USD per hour" in html
    assert s["gpus"] == s.gpus
    with pytest.raises(AttributeError):
        s.no_such_field
    m = model("deepseek-r1")
    assert (m.model, m.family) == ("deepseek-r1", "deepseek_v3") and m.params_active < m.params_total
    assert "<table>" in m._repr_html_()


def test_plan_takes_a_params_file_and_overrides(tmp_path):
    from llmsizing import plan

    p = plan(ROOT / "params" / "qlora-7b-single-24gb.yaml", data_sizes=["10M"])
    frame = p.to_frame()
    assert list(frame["data"]) == ["10M"]
    golden = json.loads((ROOT / "tests" / "golden" / "qlora-7b-single-24gb.json").read_text())["results"]["headline"]
    key = "finetune.deepseek-r1-distill-qwen-7b.qlora.10M.hours"
    assert p.headline[key] == pytest.approx(golden[key], rel=1e-12)
    assert pd.api.types.is_float_dtype(frame["hours"])


def test_import_is_light_and_lazy():
    """``import llmsizing`` loads neither pandas nor the API; the API names appear on first use."""
    code = ("import sys, llmsizing; assert 'pandas' not in sys.modules and 'llmsizing.api' not in sys.modules;"
            "assert set(llmsizing.API) <= set(dir(llmsizing)); from llmsizing import plan; print(plan.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "llmsizing.api"
    with pytest.raises(AttributeError):
        llmsizing.no_such_name


def test_python_dash_m_version():
    out = subprocess.run([sys.executable, "-m", "llmsizing", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"llmsizing {llmsizing.__version__}"

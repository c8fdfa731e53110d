"""A corpus of bad inputs (issue #8): each one gets one line naming the problem, exit code 2,
no traceback, and no file written.

The corpus is data-driven. Each row of ``CASES`` is one bad input and the fragment its message
must contain:

* ``argv``      a command line, run in-process through ``llmsizing.cli.main``;
* ``scenario``  a params file from ``tests/data/bad_inputs/scenarios/`` (or generated text),
                run as ``llmsizing run FILE --out TMP/out``;
* ``config``    a Hugging Face ``config.json`` from ``tests/data/bad_inputs/configs/`` (or
                generated), run as ``llmsizing model FILE --json``;
* ``audit``     the customer's hardware table with one row damaged, run as ``llmsizing audit FILE``;
* ``gpu`` / ``model`` / ``instance``
                a catalog entry placed alone in ``$LLMSIZING_CATALOG_DIR/<kind>/``: a file from
                ``tests/data/bad_inputs/catalog/`` or a built-in entry with one field changed,
                run as ``llmsizing gpus`` / ``llmsizing model SLUG`` / ``llmsizing finetune``.

Every case runs in an empty working directory; afterwards that directory, the output folder
and the catalog folder must be exactly as before (nothing written, no ``pwned`` file).
A few cases also run as real subprocesses, to check the process-level behaviour.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from llmsizing import catalog
from llmsizing.cli import main

pytestmark = [pytest.mark.unit]

DATA = Path(__file__).parent / "data" / "bad_inputs"
SCENARIOS = DATA / "scenarios"
CONFIGS = DATA / "configs"
CATALOG = DATA / "catalog"
FAULT_NOTEBOOKS = Path(__file__).parent / "data" / "fault_notebooks"
REPO = Path(__file__).resolve().parents[1]
BUILTIN = Path(catalog.__file__).parent / "catalog"

MODEL = "deepseek-r1-distill-qwen-7b"
LONG = "x" * 10_000
SERVE = ["serve", MODEL, "--gpu", "h100"]
TUNE = ["finetune", MODEL, "--gpu", "h100"]
HDR = "kind: serving\nmodels: [deepseek-r1-distill-qwen-7b]\ngpus: [h100]\n"
LLAMA = ('"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, '
         '"vocab_size": 100, "intermediate_size": 128')


@dataclass(frozen=True)
class Case:
    id: str
    kind: str                 # argv | scenario | config | audit | gpu | model | instance
    source: Any               # argv list, a file name under DATA, text/bytes, or a callable building it
    expect: str               # fragment of the one-line message (case-insensitive)
    argv: tuple[str, ...] = field(default=())   # catalog cases: the command that loads the entry


def _gpu_entry(**changes: Any) -> Callable[[str], dict]:
    """The built-in L40S entry renamed to ``slug`` with ``changes`` (KeyError as a value drops the key)."""

    def build(slug: str) -> dict:
        data = yaml.safe_load((BUILTIN / "gpus" / "l40s.yaml").read_text(encoding="utf-8"))
        data.update(slug=slug, aliases=[slug])
        for key, value in changes.items():
            if value is KeyError:
                data.pop(key)
            elif isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return data

    return build


def _model_entry(config: dict | None = None, **changes: Any) -> Callable[[str], dict]:
    """The built-in DeepSeek-R1-Distill-Qwen-7B entry renamed to ``slug`` with ``changes``."""

    def build(slug: str) -> dict:
        data = yaml.safe_load((BUILTIN / "models" / f"{MODEL}.yaml").read_text(encoding="utf-8"))
        data.update(slug=slug, hf_id=f"test/{slug}", aliases=[])
        for key, value in changes.items():
            if value is KeyError:
                data.pop(key)
            else:
                data[key] = value
        for key, value in (config or {}).items():
            if value is KeyError:
                data["config"].pop(key)
            else:
                data["config"][key] = value
        return data

    return build


def _instance_entry(**changes: Any) -> Callable[[str], dict]:
    """A built-in H100 instance renamed to ``slug`` with ``changes``."""

    def build(slug: str) -> dict:
        path = sorted((BUILTIN / "instances").glob("*.yaml"))
        base = next(p for p in path if yaml.safe_load(p.read_text())["gpu"] == "h100-80gb")
        data = yaml.safe_load(base.read_text(encoding="utf-8"))
        data.update(slug=slug)
        for key, value in changes.items():
            if value is KeyError:
                data.pop(key)
            else:
                data[key] = value
        return data

    return build


def _audit_table(table: dict | None = None, **row_changes: Any) -> Callable[[], str]:
    """The customer's seed table (params/audit/seed-table.yaml) cut to one row, with ``row_changes``;
    ``table`` replaces top-level keys."""

    def build() -> str:
        data = yaml.safe_load((REPO / "params" / "audit" / "seed-table.yaml").read_text(encoding="utf-8"))
        data["rows"] = [{**data["rows"][-1], **row_changes}]
        data.update(table or {})
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)

    return build


def _deep(opening: str, closing: str, n: int = 50_000) -> str:
    return opening * n + closing * n


CASES: list[Case] = [
    # ------------------------------------------------------------------ command line
    Case("no-command", "argv", [], "required: COMMAND"),
    Case("unknown-command", "argv", ["pretrain"], "invalid choice"),
    Case("serve-missing-gpu", "argv", ["serve", MODEL], "required: --gpu"),
    Case("serve-unknown-model", "argv", ["serve", "gpt-7", "--gpu", "h100"], "unknown model 'gpt-7'"),
    Case("serve-unknown-gpu", "argv", ["serve", MODEL, "--gpu", "h900"], "unknown GPU 'h900'"),
    Case("serve-empty-model", "argv", ["serve", "", "--gpu", "h100"], "non-empty"),
    Case("serve-unknown-precision", "argv", [*SERVE, "--precision", "int3"], "unknown precision 'int3'"),
    Case("serve-unknown-kv-precision", "argv", [*SERVE, "--kv-precision", "int3"], "KV-cache precision 'int3'"),
    Case("serve-unknown-engine", "argv", [*SERVE, "--engine", "tensorrt"], "invalid choice: 'tensorrt'"),
    Case("serve-users-zero", "argv", [*SERVE, "--users", "0"], "users must be a positive integer"),
    Case("serve-users-negative", "argv", [*SERVE, "--users", "-3"], "users must be a positive integer"),
    Case("serve-users-text", "argv", [*SERVE, "--users", "three"], "invalid int value"),
    Case("serve-users-nan", "argv", [*SERVE, "--users", "nan"], "invalid int value"),
    Case("serve-gpus-zero", "argv", [*SERVE, "--gpus", "0"], "must be a positive integer"),
    Case("serve-gpus-invalid-tp", "argv", [*SERVE, "--gpus", "3"], "tensor-parallel size 3"),
    Case("serve-context-zero", "argv", [*SERVE, "--context", "0"], "context must be a positive integer"),
    Case("serve-context-negative", "argv", [*SERVE, "--context", "-1"], "token count '-1'"),
    Case("serve-context-exponent", "argv", [*SERVE, "--context", "1e999"], "token count '1e999'"),
    Case("serve-context-inf", "argv", [*SERVE, "--context", "inf"], "token count 'inf'"),
    Case("serve-context-huge", "argv", [*SERVE, "--context", "99999999999999999999999M"], "exceeds"),
    Case("serve-utilization-nan", "argv", [*SERVE, "--gpu-memory-utilization", "nan"], "fraction in (0, 1]"),
    Case("serve-utilization-inf", "argv", [*SERVE, "--gpu-memory-utilization", "inf"], "fraction in (0, 1]"),
    Case("serve-utilization-zero", "argv", [*SERVE, "--gpu-memory-utilization", "0"], "fraction in (0, 1]"),
    Case("serve-utilization-over-one", "argv", [*SERVE, "--gpu-memory-utilization", "1.5"], "fraction in (0, 1]"),
    Case("serve-gpu-memory-no-unit", "argv", [*SERVE, "--gpu-memory", "24"], "cannot parse memory size '24'"),
    Case("serve-gpu-memory-zero", "argv", [*SERVE, "--gpu-memory", "0GiB"], "must be positive"),
    Case("serve-gpu-memory-nan", "argv", [*SERVE, "--gpu-memory", "nanGiB"], "cannot parse memory size"),
    Case("serve-gpu-memory-tiny", "argv", [*SERVE, "--gpu-memory", "1MiB"], "too small"),
    Case("serve-prompt-over-context", "argv", [*SERVE, "--prompt-tokens", "100000"], "cannot exceed the context"),
    Case("serve-max-model-len-short", "argv", [*SERVE, "--max-model-len", "1"], "below the context"),
    Case("serve-llamacpp-fp8", "argv", [*SERVE, "--engine", "llama.cpp", "--precision", "fp8"], "GGUF has no FP8"),
    Case("serve-transformers-fp8-ampere", "argv",
         ["serve", MODEL, "--gpu", "a10", "--engine", "transformers", "--precision", "fp8"], "FP8 tensor cores"),
    Case("model-very-long-name", "argv", ["model", LONG], "unknown model"),
    Case("model-very-long-path", "argv", ["model", LONG + ".json"], "File name too long"),
    Case("model-missing-config", "argv", ["model", "/nonexistent/config.json"], "No such file"),
    Case("model-non-utf8-argv", "argv", ["model", "\udcff\udcfeabc"], "unknown model"),
    Case("run-no-file", "argv", ["run", "no-such-params.yaml"], "no such params file"),
    Case("run-unknown-format", "argv", ["run", str(SCENARIOS / "empty.yaml"), "--to", "docx"],
         "unknown output format 'docx'"),
    Case("diff-no-report", "argv", ["diff", "no-such-scenario"], "no report for scenario"),
    Case("diff-very-long-name", "argv", ["diff", LONG], "10,000 characters long; at most 80"),
    Case("refresh-jobs-zero", "argv", ["refresh", "-j", "0"], "-j must be at least 1"),
    Case("refresh-negative-wait", "argv", ["refresh", "--wait-timeout", "-1"], "must be >= 0 seconds"),
    Case("finetune-unknown-method", "argv", [*TUNE, "--method", "dpo"], "invalid choice: 'dpo'"),
    Case("finetune-data-unit", "argv", [*TUNE, "--data", "1 furlong"], "unknown unit 'furlong'"),
    Case("finetune-data-negative", "argv", [*TUNE, "--data", "-1GB"], "cannot parse data size '-1GB'"),
    Case("finetune-data-zero", "argv", [*TUNE, "--data", "0"], "positive finite amount"),
    Case("finetune-data-nan", "argv", [*TUNE, "--data", "nan"], "cannot parse data size 'nan'"),
    Case("finetune-data-overflow", "argv", [*TUNE, "--data", "1e400"], "positive finite amount"),
    Case("finetune-data-empty", "argv", [*TUNE, "--data", ""], "cannot parse data size ''"),
    Case("finetune-deadline-text", "argv", [*TUNE, "--deadline", "yesterday"], "cannot parse duration 'yesterday'"),
    Case("finetune-deadline-zero", "argv", [*TUNE, "--deadline", "0"], "must be positive"),
    Case("finetune-deadline-negative", "argv", [*TUNE, "--deadline", "-1h"], "cannot parse duration '-1h'"),
    Case("finetune-deadline-inf", "argv", [*TUNE, "--deadline", "inf"], "cannot parse duration 'inf'"),
    Case("finetune-epochs-nan", "argv", [*TUNE, "--epochs", "nan"], "epochs 'nan' must be positive"),
    Case("finetune-epochs-zero", "argv", [*TUNE, "--epochs", "0"], "epochs '0' must be positive"),
    Case("finetune-epochs-overflow", "argv", [*TUNE, "--epochs", "1e300"], "too large"),
    Case("finetune-epochs-text", "argv", [*TUNE, "--epochs", "twice"], "cannot parse epochs"),
    Case("finetune-seq-len-zero", "argv", [*TUNE, "--seq-len", "0"], "seq-len must be a positive integer"),
    Case("finetune-micro-batch-zero", "argv", [*TUNE, "--micro-batch", "0"], "micro-batch must be a positive"),
    Case("finetune-zero-stage-5", "argv", [*TUNE, "--zero", "5"], "invalid choice: 5"),
    Case("finetune-tp-zero", "argv", [*TUNE, "--tp", "0"], "tp must be a positive integer"),
    Case("finetune-lora-rank-zero", "argv", [*TUNE, "--lora-rank", "0"], "lora-rank must be a positive"),
    Case("finetune-lora-target-unknown", "argv", [*TUNE, "--lora-targets", "nonexistent_proj"],
         "LoRA target 'nonexistent_proj'"),
    Case("finetune-gpus-negative", "argv", [*TUNE, "--gpus", "-1"], "gpus must be a positive integer"),
    Case("finetune-unknown-tokenizer", "argv", [*TUNE, "--tokenizer", "gpt9"], "invalid choice: 'gpt9'"),
    Case("audit-missing-table", "argv", ["audit", "/nonexistent/table.yaml"], "No such file"),
    # ------------------------------------------------------------------ scenario files
    Case("scenario-empty", "scenario", "empty.yaml", "the file is empty"),
    Case("scenario-comments-only", "scenario", "comments-only.yaml", "the file is empty"),
    Case("scenario-binary-junk", "scenario", "binary-junk.yaml", "not UTF-8"),
    Case("scenario-latin1", "scenario", "latin1-text.yaml", "not UTF-8"),
    Case("scenario-utf16", "scenario", "utf16-bom.yaml", "not UTF-8"),
    Case("scenario-top-level-list", "scenario", "top-level-list.yaml", "expected a mapping"),
    Case("scenario-top-level-scalar", "scenario", "top-level-scalar.yaml", "expected a mapping"),
    Case("scenario-missing-kind", "scenario", "missing-kind.yaml", "missing key 'kind'"),
    Case("scenario-unknown-kind", "scenario", "unknown-kind.yaml", "unknown value 'pretraining'"),
    Case("scenario-unknown-key", "scenario", "unknown-key.yaml", "unknown key 'user' (did you mean 'users'?)"),
    Case("scenario-key-of-other-kind", "scenario", "key-of-other-kind.yaml", "belongs to kind"),
    Case("scenario-non-string-key", "scenario", "non-string-key.yaml", "names must be strings"),
    Case("scenario-duplicate-key", "scenario", "duplicate-key.yaml", "key 'users' is written twice"),
    Case("scenario-users-string", "scenario", "users-string.yaml", "quoted text"),
    Case("scenario-users-bool", "scenario", "users-bool.yaml", "got bool"),
    Case("scenario-users-null", "scenario", "users-null.yaml", "got null"),
    Case("scenario-users-zero", "scenario", "users-zero.yaml", "key 'users': must be >= 1"),
    Case("scenario-users-negative", "scenario", "users-negative.yaml", "key 'users': must be >= 1"),
    Case("scenario-users-fraction", "scenario", "users-fraction.yaml", "expected an integer, got float 2.5"),
    Case("scenario-users-nan", "scenario", "users-nan.yaml", "got float nan"),
    Case("scenario-users-inf", "scenario", "users-inf.yaml", "got float inf"),
    Case("scenario-users-huge", "scenario", "users-huge.yaml", "key 'users': must be >= 1"),
    Case("scenario-users-list", "scenario", "users-list.yaml", "got list"),
    Case("scenario-context-zero", "scenario", "context-zero.yaml", "between 1 and 16M"),
    Case("scenario-context-text", "scenario", "context-unparseable.yaml", "cannot parse token count 'lots'"),
    Case("scenario-context-exponent", "scenario", "context-exponent-string.yaml", "token count '1e999'"),
    Case("scenario-context-over-max", "scenario", "context-over-model-max.yaml", "exceeds"),
    Case("scenario-models-empty", "scenario", "models-empty.yaml", "expected 1 to 64 items"),
    Case("scenario-models-not-list", "scenario", "models-not-a-list.yaml", "expected a list"),
    Case("scenario-models-unknown", "scenario", "models-unknown.yaml", "unknown model 'gpt-7'"),
    Case("scenario-models-duplicate", "scenario", "models-duplicate.yaml", "is listed twice"),
    Case("scenario-models-number", "scenario", "models-number.yaml", "expected a string, got int"),
    Case("scenario-gpus-unknown", "scenario", "gpus-unknown.yaml", "unknown GPU 'h900'"),
    Case("scenario-precision-unknown", "scenario", "precision-unknown.yaml", "unknown precision 'int3'"),
    Case("scenario-kv-precision-unknown", "scenario", "kv-precision-unknown.yaml", "unknown value 'int3'"),
    Case("scenario-engine-unknown", "scenario", "engine-unknown.yaml", "unknown value 'tensorrt'"),
    Case("scenario-gpu-memory-no-unit", "scenario", "gpu-memory-no-unit.yaml", "cannot parse memory size '24'"),
    Case("scenario-gpu-memory-zero", "scenario", "gpu-memory-zero.yaml", "must be positive"),
    Case("scenario-assumption-unknown", "scenario", "assumption-unknown.yaml", "unknown assumption"),
    Case("scenario-assumption-not-mapping", "scenario", "assumption-not-mapping.yaml", "expected a mapping"),
    Case("scenario-assumption-quoted", "scenario", "assumption-quoted-number.yaml", "quoted text"),
    Case("scenario-assumption-nan", "scenario", "assumption-nan.yaml", "finite number"),
    Case("scenario-assumption-zero-divisor", "scenario", "assumption-zero-divisor.yaml", "whole number >= 1"),
    Case("scenario-assumption-zero-efficiency", "scenario", "assumption-zero-efficiency.yaml", "must be > 0"),
    Case("scenario-assumption-fraction-huge", "scenario", "assumption-fraction-over-one.yaml", "between 0 and 1"),
    Case("scenario-assumption-huge-search", "scenario", "assumption-huge-search.yaml", "must be at most"),
    Case("scenario-date-invalid", "scenario", "date-invalid.yaml", "month must be in 1..12"),
    Case("scenario-date-text", "scenario", "date-text.yaml", "is not a date"),
    Case("scenario-name-traversal", "scenario", "scenario-name-traversal.yaml", "not a safe folder name"),
    Case("scenario-name-absolute", "scenario", "scenario-name-absolute.yaml", "not a safe folder name"),
    Case("scenario-name-spaces", "scenario", "scenario-name-spaces.yaml", "not a safe folder name"),
    Case("scenario-title-list", "scenario", "title-list.yaml", "expected a string, got list"),
    Case("scenario-customer-nul", "scenario", "customer-nul.yaml", "NUL character"),
    Case("scenario-title-surrogate", "scenario", "title-lone-surrogate.yaml", "lone surrogate"),
    Case("scenario-tag-python-apply", "scenario", "tag-python-apply.yaml", "could not determine a constructor"),
    Case("scenario-tag-python-name", "scenario", "tag-python-name.yaml", "could not determine a constructor"),
    Case("scenario-tag-custom", "scenario", "tag-custom.yaml", "could not determine a constructor"),
    Case("scenario-alias-simple", "scenario", "alias-simple.yaml", "aliases (*name) are not allowed"),
    Case("scenario-alias-bomb", "scenario", "alias-bomb.yaml", "aliases (*name) are not allowed"),
    Case("scenario-yaml-syntax", "scenario", "yaml-syntax-error.yaml", "invalid YAML"),
    Case("scenario-yaml-tab", "scenario", "yaml-tab-indent.yaml", "invalid YAML"),
    Case("scenario-methods-unknown", "scenario", "methods-unknown.yaml", "unknown value 'dpo'"),
    Case("scenario-data-size-unit", "scenario", "data-size-unit.yaml", "unknown unit 'furlong'"),
    Case("scenario-data-size-negative", "scenario", "data-size-negative.yaml", "cannot parse data size '-1GB'"),
    Case("scenario-data-size-zero", "scenario", "data-size-zero.yaml", "positive finite amount"),
    Case("scenario-data-size-nan", "scenario", "data-size-nan.yaml", "positive finite amount"),
    Case("scenario-data-size-bool", "scenario", "data-size-bool.yaml", "got bool"),
    Case("scenario-deadline-text", "scenario", "deadline-unparseable.yaml", "cannot parse duration 'yesterday'"),
    Case("scenario-deadline-zero", "scenario", "deadline-zero.yaml", "must be positive"),
    Case("scenario-deadline-inf", "scenario", "deadline-inf.yaml", "must be positive"),
    Case("scenario-epochs-nan", "scenario", "epochs-nan.yaml", "finite number"),
    Case("scenario-epochs-zero", "scenario", "epochs-zero.yaml", "finite number"),
    Case("scenario-epochs-huge", "scenario", "epochs-huge.yaml", "<= 1000"),
    Case("scenario-seq-len-zero", "scenario", "seq-len-zero.yaml", "between 1 and 16M"),
    Case("scenario-seq-len-negative", "scenario", "seq-len-negative.yaml", "between 1 and 16M"),
    Case("scenario-lora-rank-zero", "scenario", "lora-rank-zero.yaml", "key 'lora_rank': must be >= 1"),
    Case("scenario-optimizer-unknown", "scenario", "optimizer-unknown.yaml", "unknown value 'adam9000'"),
    Case("scenario-train-precision-unknown", "scenario", "train-precision-unknown.yaml", "unknown value 'fp4'"),
    Case("scenario-language-unknown", "scenario", "language-unknown.yaml", "unknown value 'klingon'"),
    Case("scenario-nested-too-deep", "scenario", lambda: "kind: serving\nusers: " + _deep("[", "]"),
         "nested too deeply"),
    Case("scenario-mapping-too-deep", "scenario", lambda: "kind: serving\nusers: " + "{a: " * 20_000 + "1" + "}" * 20_000,
         "nested too deeply"),
    Case("scenario-huge-integer", "scenario", lambda: HDR + "users: " + "9" * 5000 + "\n", "invalid YAML"),
    Case("scenario-over-size-limit", "scenario", lambda: HDR + "notes: |\n" + ("  " + "y" * 78 + "\n") * 3000,
         "byte limit"),
    Case("scenario-customer-very-long", "scenario", lambda: HDR + f"customer: {LONG}\n", "characters long"),
    Case("scenario-notes-very-long", "scenario", lambda: HDR + f"notes: {'n' * 5000}\n", "characters long"),
    Case("scenario-model-very-long", "scenario", lambda: f"kind: serving\nmodels: [{LONG}]\n", "key 'models[0]'"),
    # ------------------------------------------------------------------ Hugging Face config.json files
    Case("config-empty", "config", "empty.json", "invalid JSON"),
    Case("config-binary-junk", "config", "binary-junk.json", "not UTF-8"),
    Case("config-latin1", "config", "latin1.json", "not UTF-8"),
    Case("config-utf8-bom", "config", "utf8-bom.json", "invalid JSON"),
    Case("config-not-json", "config", "not-json.json", "invalid JSON"),
    Case("config-array", "config", "array.json", "expected a JSON object, got list"),
    Case("config-empty-object", "config", "empty-object.json", "model_type None is not supported"),
    Case("config-unsupported-family", "config", "unsupported-family.json", "model_type 'gpt2' is not supported"),
    Case("config-missing-hidden-size", "config", "missing-hidden-size.json", "'hidden_size' is missing"),
    Case("config-hidden-size-string", "config", "hidden-size-string.json", "'hidden_size' must be an integer"),
    Case("config-hidden-size-negative", "config", "hidden-size-negative.json", "'hidden_size' must be >= 1"),
    Case("config-layers-zero", "config", "layers-zero.json", "'num_hidden_layers' must be >= 1"),
    Case("config-hidden-size-nan", "config", "hidden-size-nan.json", "got nan"),
    Case("config-hidden-size-infinity", "config", "hidden-size-infinity.json", "got inf"),
    Case("config-hidden-size-float", "config", "hidden-size-float.json", "got 64.5"),
    Case("config-hidden-size-1e400", "config", "hidden-size-1e400.json", "got inf"),
    Case("config-kv-heads", "config", "kv-heads-not-divisor.json", "not a multiple of num_key_value_heads"),
    Case("config-tie-embeddings-string", "config", "tie-embeddings-string.json", "must be true or false"),
    Case("config-sliding-window-string", "config", "sliding-window-string.json", "'sliding_window' must be an integer"),
    Case("config-sliding-window-negative", "config", "sliding-window-negative.json", "'sliding_window' must be >= 0"),
    Case("config-quantization-string", "config", "quantization-config-string.json",
         "'quantization_config' must be an object"),
    Case("config-mlp-only-layers", "config", "mlp-only-layers-number.json", "'mlp_only_layers' must be a list"),
    Case("config-mpt-expansion-nan", "config", "mpt-expansion-nan.json", "'expansion_ratio' must be a positive"),
    Case("config-moe-missing-experts", "config", "moe-missing-experts.json", "'num_experts' is missing"),
    Case("config-too-many-layers", "config", lambda: "{" + LLAMA.replace('"num_hidden_layers": 2',
                                                                     '"num_hidden_layers": 100000000') + "}",
         "'num_hidden_layers' must be <= 10000"),
    Case("config-too-many-mtp-layers", "config", lambda: "{" + LLAMA.replace('"llama"', '"deepseek_v3"') + (
        ', "n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "kv_lora_rank": 16, '
        '"qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8, "num_nextn_predict_layers": 100000000}'),
         "'num_nextn_predict_layers' must be <= 10000"),
    Case("config-nested-too-deep", "config", lambda: _deep("[", "]", 100_000), "nested too deeply"),
    Case("config-huge-integer", "config", lambda: "{" + LLAMA.replace("64", "9" * 5000, 1) + "}", "invalid JSON"),
    Case("config-over-size-limit", "config", lambda: '{"model_type": "llama", "x": "' + "y" * 1_100_000 + '"}',
         "too large"),
    # ------------------------------------------------------------------ the customer's hardware table (audit)
    Case("audit-cpu-cores-text", "audit", _audit_table(cpu_cores="64 cores"), "cpu_cores must be a positive integer"),
    Case("audit-cpu-cores-null", "audit", _audit_table(cpu_cores=None), "cpu_cores must be a positive integer"),
    Case("audit-strategy-tp-zero", "audit", _audit_table(strategy="TP=0 + DP=8"), "TP=0 must be a positive"),
    Case("audit-gpus-zero", "audit", _audit_table(gpus=0), "gpus must be a positive integer"),
    Case("audit-ram-text", "audit", _audit_table(ram="lots"), "size 'lots' must read like"),
    Case("audit-network-number", "audit", _audit_table(network=25), "network 25 must read like"),
    Case("audit-method-unknown", "audit", _audit_table(method="dpo"), "method 'dpo' is not one of"),
    Case("audit-unknown-row-key", "audit", _audit_table(price="cheap"), "unknown key 'price'"),
    Case("audit-rows-empty", "audit", _audit_table(table={"rows": []}), "key 'rows' must be a non-empty list"),
    Case("audit-deadline-text", "audit", _audit_table(table={"deadline": "yesterday"}), "cannot parse duration"),
    Case("audit-binary", "audit", lambda: bytes(range(128, 256)).decode("latin-1"), "not UTF-8"),
    # ------------------------------------------------------------------ catalog entries
    Case("gpu-empty", "gpu", "gpus/gpu-empty.yaml", "key 'slug' must equal"),
    Case("gpu-list", "gpu", "gpus/gpu-list.yaml", "key 'slug' must equal"),
    Case("gpu-binary", "gpu", "gpus/gpu-binary.yaml", "not UTF-8"),
    Case("gpu-latin1", "gpu", "gpus/gpu-latin1.yaml", "not UTF-8"),
    Case("gpu-python-tag", "gpu", "gpus/gpu-tag.yaml", "could not determine a constructor"),
    Case("gpu-alias-bomb", "gpu", "gpus/gpu-alias-bomb.yaml", "aliases (*name) are not allowed"),
    Case("gpu-slug-mismatch", "gpu", "gpus/gpu-slug-mismatch.yaml", "key 'slug' must equal"),
    Case("gpu-yaml-syntax", "gpu", "gpus/gpu-syntax-error.yaml", "invalid YAML"),
    Case("gpu-missing-key", "gpu", _gpu_entry(vendor=KeyError), "missing key 'vendor'"),
    Case("gpu-unknown-key", "gpu", _gpu_entry(price=3), "unknown key 'price'"),
    Case("gpu-memory-string", "gpu", _gpu_entry(memory_total_MiB="80GB"), "must be a number"),
    Case("gpu-memory-zero", "gpu", _gpu_entry(memory_total_MiB=0), "must be positive"),
    Case("gpu-memory-negative", "gpu", _gpu_entry(memory_total_MiB=-1), "must be positive"),
    Case("gpu-memory-nan", "gpu", _gpu_entry(memory_total_MiB=float("nan")), "must be a number"),
    Case("gpu-memory-inf", "gpu", _gpu_entry(memory_total_MiB=float("inf")), "must be a number"),
    Case("gpu-memory-huge", "gpu", _gpu_entry(memory_total_MiB=1e300), "implausibly large"),
    Case("gpu-node-size-huge", "gpu", _gpu_entry(node_gpus_max=10**15), "whole number from 1 to"),
    Case("gpu-node-size-fraction", "gpu", _gpu_entry(node_gpus_max=2.5), "whole number from 1 to"),
    Case("gpu-interconnect-number", "gpu", _gpu_entry(interconnect=5), "expected a mapping"),
    Case("gpu-interconnect-unknown-key", "gpu", _gpu_entry(interconnect={"pcie_gen": 5}), "unknown key 'pcie_gen'"),
    Case("gpu-aliases-string", "gpu", _gpu_entry(aliases="l40s"), "must be a list of strings"),
    Case("gpu-bandwidth-bool", "gpu", _gpu_entry(mem_bw_GB_per_s=True), "must be a number"),
    Case("model-empty", "model", "models/model-empty.yaml", "key 'slug' must equal"),
    Case("model-scalar", "model", "models/model-scalar.yaml", "key 'slug' must equal"),
    Case("model-duplicate-key", "model", "models/model-duplicate-key.yaml", "key 'slug' is written twice"),
    Case("model-hf-id-number", "model", _model_entry(hf_id=5), "key 'hf_id' must be a non-empty string"),
    Case("model-config-list", "model", lambda slug: {**_model_entry()(slug), "config": [1]},
         "key 'config' must be a mapping"),
    Case("model-family-mismatch", "model", _model_entry(family="llama"), "differs from config.model_type"),
    Case("model-params-text", "model", _model_entry(params_published="7B"), "must be a number"),
    Case("model-checkpoint-params-text", "model", _model_entry(checkpoint_params_published="lots"),
         "must be a number"),
    Case("model-missing-note", "model", _model_entry(params_published_note=KeyError), "missing key"),
    Case("model-config-negative", "model", _model_entry({"hidden_size": -1}), "'hidden_size' must be >= 1"),
    Case("model-config-sliding-window", "model", _model_entry({"sliding_window": "abc", "use_sliding_window": True}),
         "'sliding_window' must be an integer"),
    Case("instance-unknown-gpu", "instance", _instance_entry(gpu="h900"), "unknown GPU 'h900'"),
    Case("instance-price-text", "instance", _instance_entry(price_usd_per_hour="cheap"), "must be a number"),
    Case("instance-gpus-zero", "instance", _instance_entry(gpus=0), "'gpus'"),
    # ------------------------------------------------------------------ issue #16: second round of hostile input
    # one count parser with a range per quantity, shared by the command line and the scenarios
    Case("serve-users-1e26", "argv", [*SERVE, "--users", "1e26"], "accepted: 1 to 1,000,000"),
    Case("serve-users-27-digits", "argv", [*SERVE, "--users", "1" + "0" * 26], "accepted: 1 to 1,000,000"),
    Case("serve-users-400-digits", "argv", [*SERVE, "--users", "9" * 400], "accepted: 1 to 1,000,000"),
    Case("serve-users-4300-digits", "argv", [*SERVE, "--users", "9" * 4301], "accepted: 1 to 1,000,000"),
    Case("serve-gpus-1e20", "argv", [*SERVE, "--gpus", "1e20"], "accepted: 1 to 100,000"),
    Case("serve-gpu-memory-400-digits", "argv", [*SERVE, "--gpu-memory", "1" + "0" * 400 + "GiB"], "too large"),
    Case("serve-mla-cache-dense", "argv", [*SERVE, "--mla-cache", "latent"], "no multi-head latent attention"),
    Case("finetune-gpu-memory-tiny", "argv", [*TUNE, "--gpu-memory", "0.001GiB"], "too small"),
    Case("finetune-data-1e-300", "argv", [*TUNE, "--data", "1e-300"], "below one"),
    Case("finetune-data-1e308", "argv", [*TUNE, "--data", "1e308"], "above the largest accepted"),
    Case("finetune-data-1e308-tokens", "argv", [*TUNE, "--data", "1e308 tokens"], "above the largest accepted"),
    Case("finetune-data-half-token", "argv", [*TUNE, "--data", "2"], "below one token"),
    Case("finetune-micro-batch-1e20", "argv", [*TUNE, "--micro-batch", "1e20"], "accepted: 1 to 65,536"),
    Case("finetune-gpus-1e20", "argv", [*TUNE, "--gpus", "1e20"], "accepted: 1 to 100,000"),
    Case("finetune-gpus-310-digits", "argv", [*TUNE, "--gpus", "9" * 310], "accepted: 1 to 100,000"),
    Case("finetune-epochs-400-digits", "argv", [*TUNE, "--epochs", "9" * 400], "epochs"),
    # impossible fixed layouts are bad input naming the value and the valid choices
    Case("finetune-tp-3", "argv", [*TUNE, "--tp", "3"], "--tp 3: tensor parallelism must divide the 28"),
    Case("finetune-pp-1000", "argv", [*TUNE, "--pp", "1000"], "valid pipeline degrees: 1 to 28"),
    Case("finetune-ep-dense", "argv", [*TUNE, "--ep", "8"], "dense model (no experts); valid: 1"),
    Case("finetune-lora-targets-full", "argv", [*TUNE, "--method", "full", "--lora-targets", "q,v"],
         "--lora-targets applies to --method lora and qlora only"),
    Case("finetune-seq-len-past-max", "argv", [*TUNE, "--seq-len", "1M"], "maximum of 131,072"),
    # names and folders
    Case("diff-traversal", "argv", ["diff", "../../x"], "not a safe folder name"),
    Case("diff-reserved", "argv", ["diff", "manifest.json"], "reserved"),
    Case("diff-out-empty", "argv", ["diff", "alpha", "--out", ""], "--out must name"),
    Case("diff-against-traversal", "argv", ["diff", "alpha", "--against", "../../../etc"], "not a version name"),
    Case("run-out-empty", "argv", ["run", str(SCENARIOS / "empty.yaml"), "--out", ""], "--out must name"),
    Case("refresh-out-empty", "argv", ["refresh", "--out", ""], "--out must name"),
    # strict YAML 1.2 scalars
    Case("scenario-users-base60", "scenario", "users-base60.yaml", "got str '1:30'"),
    Case("scenario-users-yes", "scenario", "users-yes.yaml", "got str 'yes'"),
    Case("scenario-users-underscore", "scenario", "users-underscore.yaml", "got str '1_000'"),
    Case("scenario-users-1e26", "scenario", "users-1e26.yaml", "<= 1,000,000"),
    Case("scenario-users-400-digits", "scenario", lambda: HDR + "users: " + "9" * 400 + "\n", "400 digits is too large"),
    Case("scenario-epochs-310-digits", "scenario",
         lambda: "kind: finetune\nmodels: [deepseek-r1-distill-qwen-7b]\ngpus: [h100]\nepochs: " + "9" * 310 + "\n",
         "310 digits is too large"),
    Case("scenario-gpu-memory-tiny", "scenario", "gpu-memory-tiny.yaml", "too small"),
    Case("scenario-data-size-below-one", "scenario", "data-size-below-one.yaml", "below one"),
    Case("scenario-data-size-1e308", "scenario", "data-size-1e308.yaml", "above the largest accepted"),
    Case("scenario-context-past-max", "scenario", "context-past-max-1m.yaml", "exceeds"),
    # the one scenario name rule
    Case("scenario-name-manifest", "scenario", "name-manifest-json.yaml", "reserved"),
    Case("scenario-name-index", "scenario", "name-index-html.yaml", "reserved"),
    Case("scenario-name-failed-ipynb", "scenario", "name-failed-ipynb.yaml", "reserved"),
    Case("scenario-name-history", "scenario", "name-history.yaml", "reserved"),
    Case("scenario-name-dot", "scenario", "name-dot.yaml", "not a safe folder name"),
    Case("scenario-name-uppercase", "scenario", "name-uppercase.yaml", "not a safe folder name"),
    Case("scenario-name-100k", "scenario", lambda: HDR + "scenario_name: " + "a" * 100_000 + "\n", "at most 80"),
    Case("scenario-customer-100k", "scenario", lambda: HDR + "customer: " + "c" * 100_000 + "\n", "at most 200"),
    # config.json: duplicate keys, integers too long for a float
    Case("config-duplicate-key", "config", "duplicate-key.json", "key 'hidden_size' is written twice"),
    Case("config-310-digit-hidden-size", "config", lambda: "{" + LLAMA.replace("64", "9" * 310, 1) + "}",
         "310 digits is too large"),
    Case("config-400-digit-vocab", "config", lambda: "{" + LLAMA.replace('"vocab_size": 100', '"vocab_size": ' + "9" * 400) + "}",
         "400 digits is too large"),
    Case("gpu-memory-310-digits", "gpu", _gpu_entry(memory_total_MiB=10**309), "invalid YAML"),
]


def test_corpus_is_large_and_unique():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    kinds = {c.kind for c in CASES}
    assert {"argv", "scenario", "config", "gpu", "model"} <= kinds
    used = {c.source for c in CASES if isinstance(c.source, str)}
    for folder in (SCENARIOS, CONFIGS, CATALOG):
        for f in folder.rglob("*"):
            if f.is_file():
                rel = str(f.relative_to(folder))
                assert rel in used, f"{f} is in the corpus folder but no case uses it"


def _clear_caches() -> None:
    from llmsizing import instances
    from llmsizing.planner import context as planner

    for mod in (catalog, instances):
        for obj in vars(mod).values():
            if callable(getattr(obj, "cache_clear", None)):
                obj.cache_clear()
    planner.clear_cache()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LLMSIZING_CATALOG_DIR", raising=False)
    # If a bad scenario ever passed validation, the tiny test notebook keeps the run short.
    monkeypatch.setenv("LLMSIZING_NOTEBOOK_DIR", str(FAULT_NOTEBOOKS))
    _clear_caches()
    yield
    monkeypatch.undo()  # the catalog caches below must be rebuilt from the built-in catalog only
    _clear_caches()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(folder.rglob("*"))}


def _materialise(case: Case, root: Path) -> tuple[list[str], dict[str, str]]:
    """Write the case's input under ``root/in`` (or ``root/catalog``); return the command line and
    the environment it needs."""
    src = case.source() if callable(case.source) and case.kind in ("scenario", "config", "audit") else case.source
    inputs = root / "in"
    inputs.mkdir()
    out = root / "out"
    if case.kind == "argv":
        return list(src), {}
    if case.kind == "audit":
        path = inputs / f"{case.id}.yaml"
        path.write_bytes(src.encode("latin-1") if case.id == "audit-binary" else src.encode("utf-8"))
        return ["audit", str(path), "--json"], {}
    if case.kind in ("scenario", "config"):
        folder, suffix = (SCENARIOS, ".yaml") if case.kind == "scenario" else (CONFIGS, ".json")
        if not callable(case.source):
            path = folder / src
        else:
            path = inputs / f"{case.id}{suffix}"
            if isinstance(src, bytes):
                path.write_bytes(src)
            else:
                path.write_text(src, encoding="utf-8", errors="surrogatepass")
        if case.kind == "scenario":
            return ["run", str(path), "--out", str(out)], {}
        return ["model", str(path), "--json"], {}
    sub = {"gpu": "gpus", "model": "models", "instance": "instances"}[case.kind]
    cat = root / "catalog"
    (cat / sub).mkdir(parents=True)
    if callable(src):
        slug = case.id
        (cat / sub / f"{slug}.yaml").write_text(yaml.safe_dump(src(slug), sort_keys=False), encoding="utf-8")
    else:
        slug = Path(src).stem
        (cat / sub / Path(src).name).write_bytes((CATALOG / src).read_bytes())
    env = {"LLMSIZING_CATALOG_DIR": str(cat)}
    if case.kind == "gpu":
        return ["gpus", "--json"], env
    if case.kind == "model":
        return ["model", slug, "--json"], env
    return ["finetune", MODEL, "--gpu", "h100", "--data", "1GB", "--json"], env


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    argv, env = _materialise(case, tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = _tree(tmp_path)

    code, out, err = _run(argv, capsys)

    assert code == 2, f"exit code {code}; stderr: {err[:500]}"
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err[:1000]}"
    line = lines[0]
    assert line.startswith("llmsizing"), line[:300]
    assert "Traceback" not in err
    assert len(line) <= 2100, f"message is {len(line)} characters long"
    assert case.expect.lower() in line.lower(), f"{case.expect!r} not in {line[:600]!r}"
    assert out == "", f"nothing may be printed on stdout: {out[:300]}"
    assert _tree(tmp_path) == before, "a file was written"
    assert not (tmp_path / "out").exists(), "the reports folder was created"


SUBPROCESS_CASES = ["scenario-tag-python-apply", "scenario-binary-junk", "config-nested-too-deep", "serve-users-nan"]


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_bad_input_in_a_real_process(case_id: str, tmp_path: Path):
    """The same guarantees for the installed command: exit 2, one line, no traceback, nothing written."""
    case = next(c for c in CASES if c.id == case_id)
    argv, extra_env = _materialise(case, tmp_path)
    exe = Path(sys.executable).with_name("llmsizing")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-c", "import sys; from llmsizing.cli import main; sys.exit(main())"]
    env = {**{k: v for k, v in os.environ.items() if k != "LLMSIZING_CATALOG_DIR"}, **extra_env}
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = subprocess.run([*cmd, *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert case.expect.lower() in proc.stderr.lower()
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert list(cwd.iterdir()) == [] and not (tmp_path / "out").exists()

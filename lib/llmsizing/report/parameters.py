"""The scenario vocabulary, defined once: every key a scenario takes, its type, default, help and check.

:data:`PARAMETERS` is the one definition. Everything else derives from it:

* :class:`llmsizing.report.scenario.Scenario` -- one field per parameter, validated by each
  parameter's ``check`` (:meth:`Scenario.from_dict`, :meth:`Scenario.from_namespace`);
* the ``parameters`` cell of every notebook (``name: type = value  # help``), written and
  checked by :mod:`llmsizing.report.notebooks` (``python -m llmsizing.report.notebooks --write``);
* papermill's ``--help-notebook`` (it reads that cell) and the list of allowed keys in errors.

A new scenario key is one :class:`Parameter` here plus its use.

The checks take ``(value, ctx)`` and return the normalized primitive, or raise
:class:`~llmsizing.errors.ScenarioError` naming where the value came from and the key.
PyYAML (YAML 1.1) reads ``1e9`` -- an exponent without a dot -- as the *string* ``'1e9'``.
Strings are accepted only where documented: data sizes (``'1GB'``, ``'15.6T tokens'``,
``'1e9'``), the deadline (``'24h'``) and token counts (``'32K'``). Anywhere a plain number
is expected a numeric-looking string is rejected with a message saying how to write it.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable

from llmsizing import catalog
from llmsizing.assumptions import Assumptions
from llmsizing.choices import (CUSTOMER_DATA_SIZES, DEEPSEEK_R1_FAMILY, DEFAULT_FRAMEWORK, ENGINES, FRAMEWORKS,
                               KV_PRECISIONS, LANGUAGES, METHODS, OPTIMIZE, OPTIMIZERS, REPORT_LANGUAGES,
                               TRAIN_PRECISIONS)
from llmsizing.errors import CatalogError, ScenarioError
from llmsizing.planner.audit import load_seed_table
from llmsizing.text import clean_text
from llmsizing.units import (GPU_MEMORY_RANGE_BYTES, count_range, parse_data_size, parse_duration_s, parse_latency_s,
                             parse_memory_bytes, parse_tokens, shown_value)

__all__ = [
    "KINDS",
    "MAX_NAME_CHARS",
    "MAX_PARAMS_FILE_BYTES",
    "MAX_TEXT_CHARS",
    "RESERVED_NAMES",
    "PARAMETERS",
    "Parameter",
    "parameter",
    "parameters_for",
    "parse_tokens",
    "scenario_name_problem",
]

#: Report kinds; each has a notebook ``notebooks/<kind>.ipynb``.
KINDS = ("serving", "finetune", "customer")

#: Longest scenario name (it becomes a folder name).
MAX_NAME_CHARS = 80
#: Longest free-text value (customer, title, notes).
MAX_TEXT_CHARS = {"customer": 200, "title": 200, "notes": 4000}
#: Largest params file read.
MAX_PARAMS_FILE_BYTES = 200_000

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
_NUMERIC_STR_RE = re.compile(r"^\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*$")


# --------------------------------------------------------------------------- checks
# Each check takes (value, ctx) and returns the normalized primitive, or raises ScenarioError.
# ``ctx.where`` names the file (or "notebook parameters"), ``ctx.key`` the key.


@dataclass(frozen=True)
class Ctx:
    where: str
    key: str

    def fail(self, problem: str) -> ScenarioError:
        return ScenarioError(f"{self.where}: key '{self.key}': {problem}")


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _numeric_string_hint(value: Any) -> str:
    if isinstance(value, str) and _NUMERIC_STR_RE.match(value):
        if "e" in value.lower():
            return (f" ({value!r} is text: YAML 1.1 reads an exponent without a dot, like 1e9, as a string;"
                    f" write 1.0e+9 or the plain number)")
        return f" ({value!r} is quoted text; write the number without quotes)"
    return ""


def _str(value: Any, ctx: Ctx, *, max_chars: int = 200, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise ctx.fail(f"expected a string, got {type_name(value)} {value!r}")
    if not allow_empty and not value.strip():
        raise ctx.fail("must not be empty")
    if len(value) > max_chars:
        raise ctx.fail(f"is {len(value)} characters long; at most {max_chars} allowed")
    if "\x00" in value:
        raise ctx.fail("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # JSON-style escapes of a character beyond U+FFFF ("\ud83d\ude80") reach us from YAML as two
        # surrogates: join such pairs; a lone surrogate ("\ud800") cannot be written to the report.
        try:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            raise ctx.fail("contains a character that is not valid Unicode (a lone surrogate such as "
                           "\\ud800)") from None
    return value


def _text(limit: int) -> Callable[[Any, Ctx], str]:
    def check(value: Any, ctx: Ctx) -> str:
        # control characters (ESC, BEL), bidi overrides and the like are removed once, here (llmsizing.text)
        return clean_text(_str(value, ctx, max_chars=limit))

    return check


def _int(minimum: int = 1, maximum: int | None = None) -> Callable[[Any, Ctx], int]:
    def check(value: Any, ctx: Ctx) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.fail(f"expected an integer, got {type_name(value)} {value!r}{_numeric_string_hint(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and <= {maximum:,}" if maximum is not None else ""
            raise ctx.fail(f"must be >= {minimum}{upper}, got {shown_value(value)}")
        return value

    return check


def _float(minimum: float = 0.0, maximum: float | None = None, *, open_min: bool = True) -> Callable[[Any, Ctx], float]:
    def check(value: Any, ctx: Ctx) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.fail(f"expected a number, got {type_name(value)} {value!r}{_numeric_string_hint(value)}")
        if isinstance(value, int) and abs(value) > 10**300:  # float() of it would overflow
            raise ctx.fail(f"must be a finite number, got a {len(str(abs(value)))}-digit integer")
        value = float(value)
        low_bad = value <= minimum if open_min else value < minimum
        if not math.isfinite(value) or low_bad or (maximum is not None and value > maximum):
            lo = ">" if open_min else ">="
            upper = f" and <= {maximum}" if maximum is not None else ""
            raise ctx.fail(f"must be a finite number {lo} {minimum}{upper}, got {value!r}")
        return value

    return check


def _choice(choices: tuple[str, ...]) -> Callable[[Any, Ctx], str]:
    def check(value: Any, ctx: Ctx) -> str:
        _str(value, ctx)
        if value not in choices:
            raise ctx.fail(f"unknown value {value!r}; choose one of: {', '.join(choices)}")
        return value

    return check


def _list_of(item: Callable[[Any, Ctx], Any], *, min_items: int = 1, max_items: int = 64,
             unique: bool = True) -> Callable[[Any, Ctx], list]:
    def check(value: Any, ctx: Ctx) -> list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ctx.fail(f"expected a list, got {type_name(value)} {value!r}")
        if not min_items <= len(value) <= max_items:
            raise ctx.fail(f"expected {min_items} to {max_items} items, got {len(value)}")
        out = []
        for i, v in enumerate(value):
            out.append(item(v, Ctx(ctx.where, f"{ctx.key}[{i}]")))
        if unique:
            seen: set = set()
            for i, v in enumerate(out):
                if v in seen:
                    raise Ctx(ctx.where, f"{ctx.key}[{i}]").fail(f"{v!r} is listed twice")
                seen.add(v)
        return out

    return check


#: Names the reports folder holds besides the scenario folders (refresh's index, manifest, lock,
#: staging); a scenario may not take them, nor a name ending like the files the tool writes beside
#: the scenario folders (``<name>.failed.ipynb``, ``<name>.failed.log``).
RESERVED_NAMES = frozenset({"manifest.json", "index.html", "history", "con", "nul", "prn", "aux"})
RESERVED_SUFFIXES = (".json", ".html", ".htm", ".ipynb", ".log", ".lock", ".tmp", ".old", ".pdf")


def scenario_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a scenario (report folder) name, or None: the one name rule.

    Lower-case letters, digits, ``-``, ``_`` and ``.``, starting and ending with a letter or digit
    (so no dot-names, no ``/``, and two names never differ only in case), no ``..``, at most
    :data:`MAX_NAME_CHARS` characters, not a reserved name (:data:`RESERVED_NAMES`) and not ending like a
    file the tool writes in the reports folder (:data:`RESERVED_SUFFIXES`).
    """
    if not isinstance(name, str) or not name:
        return "a scenario name must be a non-empty string"
    if len(name) > MAX_NAME_CHARS:
        return f"the scenario name is {len(name):,} characters long; at most {MAX_NAME_CHARS} allowed"
    shown = repr(name)
    if not SLUG_RE.match(name) or ".." in name:
        return (f"{shown} is not a safe folder name: use lower-case letters, digits, '-', '_' and '.', "
                f"starting and ending with a letter or digit, no '/' and no '..' (e.g. 'acme-chat-70b')")
    if name in RESERVED_NAMES or name.endswith(RESERVED_SUFFIXES):
        return (f"{shown} is not a safe folder name: it is reserved for the files of the reports folder "
                f"(reserved: {', '.join(sorted(RESERVED_NAMES))}, and names ending in "
                f"{', '.join(RESERVED_SUFFIXES)})")
    return None


def _slug(value: Any, ctx: Ctx) -> str:
    _str(value, ctx, max_chars=MAX_NAME_CHARS, allow_empty=False)
    problem = scenario_name_problem(value)
    if problem:
        raise ctx.fail(problem)
    return value


def _model(value: Any, ctx: Ctx) -> str:
    _str(value, ctx, allow_empty=False)
    try:
        spec = catalog.load_model(value)
    except CatalogError as exc:
        raise ctx.fail(str(exc)) from None
    entry = catalog.model_entry(spec)
    if entry is not None:
        return spec.slug
    if not os.path.exists(value):  # a Hugging Face id resolved from the cache or the Hub
        return value
    # a config.json path: absolute from here on, so the notebook (run in its build folder) reads the same file
    return os.path.abspath(value)


def _gpu(value: Any, ctx: Ctx) -> str:
    _str(value, ctx, allow_empty=False)
    try:
        return catalog.load_gpu(value).slug
    except CatalogError as exc:
        raise ctx.fail(str(exc)) from None


def _precision(value: Any, ctx: Ctx) -> str:
    _str(value, ctx, allow_empty=False)
    if value == "native":
        return value
    try:
        return catalog.load_precision(value).slug
    except CatalogError as exc:
        raise ctx.fail(f"{exc}, or 'native' (the checkpoint's own format)") from None


def _memory_override(value: Any, ctx: Ctx) -> str:
    _str(value, ctx)
    if value:
        try:
            parse_memory_bytes(value, bounds=GPU_MEMORY_RANGE_BYTES)
        except ScenarioError as exc:
            raise ctx.fail(str(exc)) from None
    return value


def _data_size(value: Any, ctx: Ctx) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ctx.fail(f"expected a data size such as '1GB', got {type_name(value)} {value!r}")
    try:
        parse_data_size(value)
    except ScenarioError as exc:
        raise ctx.fail(str(exc)) from None
    return value


def _duration(value: Any, ctx: Ctx) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ctx.fail(f"expected a duration such as '24h', got {type_name(value)} {value!r}")
    try:
        parse_duration_s(value)
    except ScenarioError as exc:
        raise ctx.fail(str(exc)) from None
    return value


def _latency(value: Any, ctx: Ctx) -> str:
    if value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ctx.fail(f"expected a latency such as '2s' or '50ms', got {type_name(value)} {value!r}")
    try:
        parse_latency_s(value)
    except ScenarioError as exc:
        raise ctx.fail(str(exc)) from None
    return value


def _tokens(value: Any, ctx: Ctx) -> int:
    try:
        return parse_tokens(value)
    except ScenarioError as exc:
        raise ctx.fail(f"{exc}") from None


def _date(value: Any, ctx: Ctx) -> str:
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        return value.isoformat()
    _str(value, ctx)
    if value:
        try:
            _dt.date.fromisoformat(value)
        except ValueError:
            raise ctx.fail(f"{value!r} is not a date; write YYYY-MM-DD, or leave empty for today") from None
    return value


def _assumptions(value: Any, ctx: Ctx) -> dict:
    """A mapping ``{name: value}``, or the same written as a JSON or YAML string (papermill's
    ``-p assumptions '{"mfu_lora_hopper": 0.3}'`` passes a string)."""
    if isinstance(value, str):
        value = catalog.safe_yaml_loads(_str(value, ctx, max_chars=MAX_TEXT_CHARS["notes"]), ctx.where,
                                        ScenarioError) if value.strip() else {}
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ctx.fail(f"expected a mapping of assumption name to value, got {type_name(value)} {value!r}")
    for k, v in value.items():
        if not isinstance(k, str):
            raise ctx.fail(f"assumption names must be strings, got {k!r}")
        hint = _numeric_string_hint(v)
        if hint:
            raise Ctx(ctx.where, f"{ctx.key}.{k}").fail(f"expected a number, got str {v!r}{hint}")
    try:
        Assumptions(value)
    except ScenarioError as exc:
        raise ctx.fail(str(exc)) from None
    return dict(value)


#: The shipped scenarios' folder: a relative path in parameters that come from no file (a notebook's
#: parameters cell) is looked up in the working directory, then here (as ``llmsizing audit`` finds its table).
PARAMS_DIR = Path(__file__).resolve().parents[3] / "params"


def resolve_beside(value: str, where: str) -> Path:
    """``value`` as a path: absolute as given; relative to the folder of the params file ``where`` when that
    is a file; otherwise relative to the working directory, else to the shipped ``params/`` folder."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    if Path(where).is_file():
        return Path(where).parent / p
    here = Path.cwd() / p
    return here if here.exists() or not (PARAMS_DIR / p).exists() else PARAMS_DIR / p


def _audit_table(value: Any, ctx: Ctx) -> str:
    """A hand-made hardware table to audit (checked strictly, as ``llmsizing audit`` reads it); '' for none."""
    _str(value, ctx, max_chars=1000)
    if value:
        path = resolve_beside(value, ctx.where)
        if not path.is_file():
            raise ctx.fail(f"{value!r}: no such file (a path relative to the params file, e.g. "
                           f"'audit/seed-table.yaml', or empty for no audit)")
        try:
            load_seed_table(path)
        except (ScenarioError, CatalogError) as exc:
            raise ctx.fail(str(exc)) from None
    return value


# --------------------------------------------------------------------------- the definition

#: Python type of a Scenario field per papermill type name (lists become tuples in a Scenario).
_FIELD_TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "list": tuple, "dict": Mapping}


@dataclass(frozen=True)
class Parameter:
    """One scenario key: type (as papermill documents it), default, help, the kinds that take it, its check.

    ``choices`` is the vocabulary of a one-of key; its check is then :func:`_choice` of it
    unless ``check`` says otherwise (a list of choices, say).
    """

    name: str
    type: str
    default: Any
    help: str
    kinds: tuple[str, ...]
    check: Callable[[Any, Ctx], Any] | None = field(default=None, repr=False, compare=False)
    choices: tuple[str, ...] = ()

    def validate(self, value: Any, where: str) -> Any:
        """The normalized value, or a ScenarioError naming ``where`` and this key."""
        check = self.check or _choice(self.choices)
        return check(value, Ctx(where, self.name))

    @property
    def field_type(self) -> Any:
        """The type of this key's :class:`~llmsizing.report.scenario.Scenario` field."""
        return _FIELD_TYPES[self.type]


_ALL = KINDS
_SERVE = ("serving", "customer")
_TUNE = ("finetune", "customer")

PARAMETERS: tuple[Parameter, ...] = (
    Parameter("kind", "str", "serving", "report kind: serving, finetune or customer (picks the notebook)", _ALL,
              choices=KINDS),
    Parameter("scenario_name", "str", "example", "report folder under reports/ (lower-case letters, digits, -)",
              _ALL, _slug),
    Parameter("customer", "str", "", "customer name on the cover and running header", _ALL,
              _text(MAX_TEXT_CHARS["customer"])),
    Parameter("title", "str", "LLM hardware sizing", "report title on the cover", _ALL,
              _text(MAX_TEXT_CHARS["title"])),
    Parameter("notes", "str", "", "free text shown under the executive summary", _ALL,
              _text(MAX_TEXT_CHARS["notes"])),
    Parameter("date", "str", "", "report date YYYY-MM-DD (empty: today)", _ALL, _date),
    Parameter("report_language", "str", "en", "language of the report: en (English) or zh (Simplified Chinese)",
              _ALL, choices=REPORT_LANGUAGES),
    Parameter("assumptions", "dict", {}, "assumption overrides {name: value}; see 'llmsizing assumptions'", _ALL,
              _assumptions),
    Parameter("models", "list", list(DEEPSEEK_R1_FAMILY), "models: catalog slugs, HF ids or config.json paths",
              _ALL, _list_of(_model)),
    Parameter("gpus", "list", ["h100-80gb", "h200", "a100-80gb", "l40s"],
              "candidate GPU types, preferred first (catalog slugs)", _ALL, _list_of(_gpu, max_items=16)),
    Parameter("gpu_memory", "str", "", "override the memory of the GPUs, e.g. '24GiB' (empty: catalog)", _ALL,
              _memory_override),
    # serving
    Parameter("users", "int", 3, "concurrent users, each with a full context in flight", _SERVE,
              _int(*count_range("users"))),
    Parameter("context_tokens", "int", 32768, "tokens per user (prompt + output), e.g. 32768 or '32K'", _SERVE,
              _tokens),
    Parameter("context_sweep", "list", [4096, 16384, 32768, 65536, 131072],
              "context lengths for the context-length figure", _SERVE, _list_of(_tokens, max_items=16)),
    Parameter("precision", "str", "native", "weight precision for serving: native (checkpoint), bf16, fp8, int4, ...",
              _SERVE, _precision),
    Parameter("kv_precision", "str", "auto", "KV-cache precision: auto (engine default), bf16, fp16, fp8",
              _SERVE, choices=KV_PRECISIONS),
    Parameter("engine", "str", "vllm", "serving engine: vllm, sglang, tensorrt-llm, transformers, llama.cpp", _SERVE,
              choices=ENGINES),
    Parameter("ttft", "str", "", "time-to-first-token target at the load, e.g. '2s' (empty: none)", _SERVE,
              _latency),
    Parameter("tpot", "str", "", "time-per-output-token target at the load, e.g. '50ms' (empty: none)", _SERVE,
              _latency),
    # fine-tuning
    Parameter("methods", "list", ["lora", "qlora", "full"], "fine-tuning methods: full, lora, qlora", _TUNE,
              _list_of(_choice(METHODS), max_items=3), choices=METHODS),
    Parameter("data_sizes", "list", list(CUSTOMER_DATA_SIZES),
              "dataset sizes: bytes of text ('1GB'), tokens ('1B tokens') or samples ('1K samples')", _TUNE,
              _list_of(_data_size, max_items=16)),
    Parameter("language", "str", "en", "language of the training text: en, zh, code, mixed (bytes per token)",
              _TUNE, choices=LANGUAGES),
    Parameter("deadline", "str", "24h", "wall-clock deadline per fine-tuning run, e.g. '24h' or '2d'", _TUNE,
              _duration),
    Parameter("epochs", "float", 1.0, "passes over the dataset", _TUNE, _float(0.0, 1000.0)),
    Parameter("seq_len", "int", 4096, "training sequence length in tokens", _TUNE, _tokens),
    Parameter("lora_rank", "int", 16, "LoRA rank", _TUNE, _int(*count_range("lora-rank"))),
    Parameter("optimizer", "str", "adamw", "optimizer: adamw, adamw-8bit, paged-adamw-8bit, paged-adamw, sgd, ...",
              _TUNE, choices=OPTIMIZERS),
    Parameter("train_precision", "str", "mixed-bf16", "training precision: mixed-bf16, bf16, fp32", _TUNE,
              choices=TRAIN_PRECISIONS),
    Parameter("framework", "str", DEFAULT_FRAMEWORK,
              "training stack whose memory behaviour the numbers assume: hf-peft, torchtune, litgpt, unsloth, "
              "deepspeed, fsdp, megatron, ...", _TUNE, choices=FRAMEWORKS),
    # customer
    Parameter("audit_table", "str", "",
              "the customer's own hardware table to audit (YAML, relative to the params file); empty: no audit",
              ("customer",), _audit_table),
    Parameter("optimize", "str", "cost", "what each fine-tuning plan minimises among those that meet the "
              "deadline: cost (whole instances, on-demand), time, or gpus", _TUNE, choices=OPTIMIZE),
)

_BY_NAME = {p.name: p for p in PARAMETERS}


def parameter(name: str) -> Parameter | None:
    """The parameter called ``name``, or None."""
    return _BY_NAME.get(name)


def parameters_for(kind: str) -> tuple[Parameter, ...]:
    """The parameters a scenario of ``kind`` takes, in notebook order."""
    if kind not in KINDS:
        raise ScenarioError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    return tuple(p for p in PARAMETERS if kind in p.kinds)

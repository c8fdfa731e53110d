"""Load and validate the catalogs (models, GPUs, cloud instances, precisions).

One YAML file per entry under ``catalog/<kind>/``, each with its source. This module is the
only place that reads them; it checks every key (unknown or missing keys are errors naming
the file and the key), converts units to base units once, and resolves user-typed names
(slug, alias, Hugging Face id, or a path to a ``config.json``) with close-match suggestions.

``LLMSIZING_CATALOG_DIR`` may point at an extra directory with the same layout
(``models/``, ``gpus/``, ``instances/``) for customer-specific hardware or models; its
entries override the built-in ones with the same slug.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from llmsizing import hub
from llmsizing.errors import CatalogError, ConfigError
from llmsizing.files import read_text_bounded
from llmsizing.text import clean_text
from llmsizing.specs import GpuSpec, ModelSpec, Precision, model_spec_from_config
from llmsizing.units import GB, GPU_MEMORY_RANGE_BYTES, MiB, parse_memory_bytes

CATALOG_DIR = Path(__file__).parent / "catalog"
MAX_CATALOG_FILE_BYTES = 1_000_000
#: Largest number a catalog key may hold (all catalog units keep real values far below it).
MAX_CATALOG_NUMBER = 1e15
#: Longest model name or slug taken from a config.json (a 100,000-character name is cut here, before any work).
MAX_CONFIG_NAME_CHARS = 200
#: Most GPUs one node (one NVLink/PCIe domain) may hold; layouts are searched up to it.
MAX_NODE_GPUS = 1024

MODEL_KEYS = {
    "slug", "name", "hf_id", "aliases", "family", "params_published", "params_published_note",
    "checkpoint_params_published", "config_read_directly", "sources", "config",
}
GPU_KEYS = {
    "slug", "name", "aliases", "vendor", "arch", "form", "memory_label_GB", "memory_total_MiB",
    "memory_total_source", "memory_type", "mem_bw_GB_per_s", "bf16_dense_TFLOP_per_s", "fp16_dense_TFLOP_per_s",
    "fp8_dense_TFLOP_per_s", "int8_dense_TOP_per_s", "int4_dense_TOP_per_s", "fp32_TFLOP_per_s", "interconnect",
    "node_gpus_max", "tdp_W", "confidence", "notes", "sources",
}
GPU_OPTIONAL_KEYS = {"derived_from"}
INTERCONNECT_KEYS = {"type", "intra_node_GB_per_s_unidirectional", "nvlink"}
INSTANCE_KEYS = {
    "slug", "provider", "name", "gpu", "gpus", "vcpus", "ram_GiB", "local_nvme_GB", "network_Gbps", "rdma",
    "gpu_interconnect", "price_usd_per_hour", "price_region", "price_date", "sources", "notes",
    "price_kind", "currency", "price", "confidence",
}
SERVER_KEYS = {
    "slug", "name", "vendor", "form_factor", "gpu", "gpus", "gpu_interconnect", "cpu_model", "cpu_sockets",
    "cpu_cores_total", "ram_GiB", "nvme_TB", "nics", "power_kW_max", "list_price", "list_price_note", "confidence",
    "sources", "notes",
}
SERVER_NIC_KEYS = {"count", "Gbps", "rdma", "purpose"}
SERVER_LIST_PRICE_KEYS = {"currency", "value", "date", "source"}
PRECISION_KEYS = {
    "slug", "name", "bits", "group_size", "scale_bytes_per_group", "second_level_bytes_per_group",
    "compute", "family", "aliases", "sources", "notes",
}


def _catalog_dirs(kind: str) -> list[Path]:
    dirs = [CATALOG_DIR / kind]
    extra = os.environ.get("LLMSIZING_CATALOG_DIR")
    if extra:
        dirs.append(Path(extra) / kind)
    return [d for d in dirs if d.is_dir()]


def read_text_file(path: Path, error: type[Exception] = CatalogError, max_bytes: int = MAX_CATALOG_FILE_BYTES,
                   what: str = "file") -> str:
    """Read a small UTF-8 text file through the one bounded reader (:mod:`llmsizing.files`)."""
    return read_text_bounded(path, max_bytes, error=error, what=what)


def read_yaml_file(path: Path) -> Any:
    """Read one catalog YAML file safely (no tags, no alias bombs, size-limited, UTF-8)."""
    return safe_yaml_loads(read_text_file(path), str(path), CatalogError)


_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
#: YAML 1.2 core schema scalars (https://yaml.org/spec/1.2.2/#1032-tag-resolution), replacing PyYAML's
#: YAML 1.1 ones: ``yes/no/on/off`` stay text, ``1:30`` is text (not 90, base 60), ``012`` is twelve (not
#: octal ten), no ``_`` digit separators. A float still needs a dot (``1e9`` stays the text '1e9', which the
#: scenario checks explain), as in PyYAML.
_STRICT_SCALARS = (
    (_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    (_INT_TAG, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")),
    (_FLOAT_TAG, re.compile(r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
                            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789.")),
)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses YAML aliases (no billion-laughs expansion), refuses duplicate keys and
    resolves plain scalars by the YAML 1.2 core schema (:data:`_STRICT_SCALARS`)."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_yaml_bool(self, node):  # type: ignore[override]
        return self.construct_scalar(node).lower() == "true"

    def construct_yaml_int(self, node):  # type: ignore[override]
        """Decimal, ``0o`` octal or ``0x`` hex only (PyYAML would read ``012`` as octal and ``1:30`` as 90)."""
        text = str(self.construct_scalar(node))
        check_integer_digits(text)
        if text.startswith("0x"):
            return int(text[2:], 16)
        if text.startswith("0o"):
            return int(text[2:], 8)
        return int(text, 10)

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(None, None, "YAML aliases (*name) are not allowed", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        """Refuse a key written twice in one mapping (YAML would silently keep the last)."""
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) < len(node.value):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is written twice",
                                                            key_node.start_mark)
                seen.add(key)
        return mapping


for _tag, _rx, _first in _STRICT_SCALARS:
    _NoAliasLoader.add_implicit_resolver(_tag, _rx, _first)
_NoAliasLoader.add_constructor(_BOOL_TAG, _NoAliasLoader.construct_yaml_bool)
_NoAliasLoader.add_constructor(_INT_TAG, _NoAliasLoader.construct_yaml_int)


#: Most digits an integer in an input file may have: every later float() of it stays finite (no
#: OverflowError on a 310-digit integer, no 4,300-digit conversion limit reached).
MAX_INTEGER_DIGITS = 30


def check_integer_digits(text: str) -> int:
    """The integer literal ``text`` (JSON or YAML), refused with ValueError when longer than
    :data:`MAX_INTEGER_DIGITS` digits."""
    digits = len(text.lstrip("+-"))
    if digits > MAX_INTEGER_DIGITS:
        raise ValueError(f"an integer with {digits:,} digits is too large (at most {MAX_INTEGER_DIGITS} digits)")
    return int(text, 0) if text.lstrip("+-").startswith(("0x", "0o")) else int(text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} is written twice")
        out[key] = value
    return out


def json_loads_strict(text: str, where: str, error: type[Exception]) -> Any:
    """Parse JSON refusing duplicate keys (JSON would keep the last) and integers too long to convert;
    errors are one line naming ``where``. NaN and Infinity are read (the field checks name them)."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_int=check_integer_digits)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise error(f"{where}: invalid JSON: nested too deeply") from None
    except ValueError as exc:  # a duplicate key, or an integer with more digits than Python converts
        raise error(f"{where}: invalid JSON: {' '.join(str(exc).split())[:200]}") from None


def safe_yaml_loads(text: str, where: str, error: type[Exception]) -> Any:
    """Parse YAML with the safe loader, no aliases; errors become one-line ``error``s."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where}:{line} invalid YAML: {problem}") from None
    except RecursionError:
        raise error(f"{where}: invalid YAML: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise error(f"{where}: invalid YAML: {' '.join(str(exc).split())[:200]}") from None


def _check_keys(data: Any, required: set[str], where: str, optional: set[str] = frozenset()) -> None:
    if not isinstance(data, dict):
        raise CatalogError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    unknown = sorted(set(data) - required - optional)
    if unknown:
        raise CatalogError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(required | optional))})")
    missing = sorted(required - set(data))
    if missing:
        raise CatalogError(f"{where}: missing key '{missing[0]}'")


def _num(data: Mapping[str, Any], key: str, where: str, *, allow_null: bool = False, positive: bool = True) -> float | None:
    value = data.get(key)
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CatalogError(f"{where}: key '{key}' must be a number, got {value!r}")
    if positive and value <= 0:
        raise CatalogError(f"{where}: key '{key}' must be positive, got {value!r}")
    if abs(value) > MAX_CATALOG_NUMBER:
        raise CatalogError(f"{where}: key '{key}' is implausibly large ({value!r}); check the unit")
    return value


def _whole(data: Mapping[str, Any], key: str, where: str, maximum: int) -> int:
    value = _num(data, key, where)
    if value != int(value) or value > maximum:
        raise CatalogError(f"{where}: key '{key}' must be a whole number from 1 to {maximum}, got {value!r}")
    return int(value)


def _str_list(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}: key '{key}' must be a list of strings")
    return tuple(value)


def _load_entries(kind: str) -> dict[str, tuple[Path, dict]]:
    entries: dict[str, tuple[Path, dict]] = {}
    for d in _catalog_dirs(kind):
        for path in sorted(d.glob("*.yaml")):
            data = read_yaml_file(path)
            if not isinstance(data, dict) or data.get("slug") != path.stem:
                raise CatalogError(f"{path}: key 'slug' must equal the file name '{path.stem}'")
            entries[path.stem] = (path, data)
    return entries


# ----------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelEntry:
    """A catalog model: its spec plus provenance."""

    spec: ModelSpec
    path: Path
    aliases: tuple[str, ...]
    checkpoint_params_published: int | None
    params_published_note: str


def _model_entry(path: Path, data: dict) -> ModelEntry:
    where = str(path)
    _check_keys(data, MODEL_KEYS, where)
    if not isinstance(data["config"], dict):
        raise CatalogError(f"{where}: key 'config' must be a mapping")
    for key in ("name", "hf_id"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise CatalogError(f"{where}: key '{key}' must be a non-empty string, got {data[key]!r}")
    if data["config"].get("model_type") != data["family"]:
        raise CatalogError(f"{where}: key 'family' ({data['family']}) differs from config.model_type")
    spec = model_spec_from_config(
        data["config"], slug=data["slug"], name=clean_text(data["name"]), where=where, hf_id=data["hf_id"],
        params_published=int(_num(data, "params_published", where)), sources=_str_list(data, "sources", where),
    )
    ck = _num(data, "checkpoint_params_published", where, allow_null=True)
    return ModelEntry(spec, path, _str_list(data, "aliases", where), int(ck) if ck else None,
                      str(data["params_published_note"]))


@lru_cache(maxsize=1)
def model_entries() -> dict[str, ModelEntry]:
    """Every catalog model by slug."""
    return {slug: _model_entry(path, data) for slug, (path, data) in _load_entries("models").items()}


def _model_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for slug, e in model_entries().items():
        names[slug.lower()] = slug
        names[e.spec.hf_id.lower()] = slug
        for a in e.aliases:
            names[a.lower()] = slug
    return names


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), choices, n=3, cutoff=0.5)
    return f"; closest: {', '.join(close)}" if close else ""


def load_model(name: str) -> ModelSpec:
    """Resolve a model by catalog slug, Hugging Face id, alias, or a path to a ``config.json``.

    A Hugging Face id ``org/name`` (or ``org/name@revision``) outside the catalog is read from the
    local Hugging Face cache, else downloaded from the Hub (:mod:`llmsizing.hub`); the spec
    records the commit hash read (``revision``).
    """
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(f"model name must be a non-empty string, got {name!r}")
    key = name.strip()
    names = _model_names()
    if key.lower() in names:
        return model_entries()[names[key.lower()]].spec
    path = Path(key)
    try:
        is_path = key.endswith(".json") or path.is_file() or path.is_dir()
    except OSError:  # e.g. a name longer than the file system allows: not a path
        is_path = False
    if is_path:
        return model_from_config_file(path)
    if hub.is_hub_id(key):
        found = hub.resolve_config(key)
        spec = model_from_config_file(found.path, slug=key, name=key)
        return replace(spec, hf_id=found.repo_id, revision=found.revision)
    raise CatalogError(f"unknown model '{name}'{_suggest(key, sorted(model_entries()))} "
                       f"(run 'llmsizing models' for the list, pass a path to a config.json, or a Hugging Face "
                       f"id org/name)")


def model_entry(spec: ModelSpec) -> ModelEntry | None:
    """The catalog entry behind a spec, or None for a spec built from a config file."""
    return model_entries().get(spec.slug)


def model_from_config_file(path: Path, *, slug: str | None = None, name: str | None = None) -> ModelSpec:
    """Build a spec from a Hugging Face ``config.json`` (or a directory holding one).

    ``slug`` and ``name`` default to the folder's name and the config's ``_name_or_path``.
    """
    try:
        if path.is_dir():
            path = path / "config.json"
    except OSError:
        pass  # reading it below reports the problem
    where = str(path)
    cfg = json_loads_strict(read_text_bounded(path, MAX_CATALOG_FILE_BYTES, error=ConfigError, what="config file"),
                            where, ConfigError)
    # the names a config.json brings reach tables, charts and the terminal: sanitized and bounded here
    slug = clean_text(slug or path.parent.name or path.stem)[:MAX_CONFIG_NAME_CHARS]
    if name is None:
        name = cfg.get("_name_or_path") if isinstance(cfg, dict) else None
    name = clean_text(name)[:MAX_CONFIG_NAME_CHARS] if isinstance(name, str) and name.strip() else slug
    return model_spec_from_config(cfg, slug=slug, name=name, where=where)


def list_models() -> list[ModelSpec]:
    """All catalog models, sorted by slug."""
    return [e.spec for _, e in sorted(model_entries().items())]


# ----------------------------------------------------------------------------- GPUs


def _gpu(path: Path, data: dict) -> GpuSpec:
    where = str(path)
    _check_keys(data, GPU_KEYS, where, GPU_OPTIONAL_KEYS)
    ic = data["interconnect"]
    _check_keys(ic, INTERCONNECT_KEYS, f"{where}: interconnect")
    flops: dict[str, float] = {}
    for compute, key, scale in (
        ("bf16", "bf16_dense_TFLOP_per_s", 1e12), ("fp16", "fp16_dense_TFLOP_per_s", 1e12),
        ("fp8", "fp8_dense_TFLOP_per_s", 1e12), ("int8", "int8_dense_TOP_per_s", 1e12),
        ("int4", "int4_dense_TOP_per_s", 1e12), ("fp32", "fp32_TFLOP_per_s", 1e12),
    ):
        v = _num(data, key, where, allow_null=True)
        if v is not None:
            flops[compute] = v * scale
    return GpuSpec(
        slug=data["slug"], name=clean_text(data["name"]), vendor=str(data["vendor"]), arch=str(data["arch"]),
        form=str(data["form"]),
        memory_bytes=int(_num(data, "memory_total_MiB", where) * MiB),
        memory_label_gb=float(_num(data, "memory_label_GB", where)),
        mem_bw_bytes_per_s=_num(data, "mem_bw_GB_per_s", where) * GB,
        flop_per_s=flops, interconnect=str(ic["type"]),
        intra_node_bytes_per_s=_num(ic, "intra_node_GB_per_s_unidirectional", f"{where}: interconnect") * GB,
        nvlink=bool(ic["nvlink"]), node_gpus_max=_whole(data, "node_gpus_max", where, MAX_NODE_GPUS),
        tdp_w=_num(data, "tdp_W", where, allow_null=True), confidence=str(data["confidence"]),
        aliases=_str_list(data, "aliases", where), sources=_str_list(data, "sources", where),
        notes=str(data.get("notes") or ""),
    )


@lru_cache(maxsize=1)
def gpu_catalog() -> dict[str, GpuSpec]:
    """Every catalog GPU by slug."""
    return {slug: _gpu(path, data) for slug, (path, data) in _load_entries("gpus").items()}


def load_gpu(name: str, memory_override: str | None = None) -> GpuSpec:
    """Resolve a GPU by slug or alias; ``memory_override`` (e.g. '24GiB') describes a variant."""
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(f"GPU name must be a non-empty string, got {name!r}")
    key = name.strip().lower()
    cat = gpu_catalog()
    found = cat.get(key)
    if found is None:
        for g in cat.values():
            if key in (a.lower() for a in g.aliases):
                found = g
                break
    if found is None:
        raise CatalogError(f"unknown GPU '{name}'{_suggest(key, sorted(cat))} (run 'llmsizing gpus' for the list)")
    if memory_override:
        found = replace(found, memory_bytes=parse_memory_bytes(memory_override, bounds=GPU_MEMORY_RANGE_BYTES))
    return found


def list_gpus() -> list[GpuSpec]:
    """All catalog GPUs, sorted by slug."""
    return [g for _, g in sorted(gpu_catalog().items())]


# ----------------------------------------------------------------------------- precisions


@lru_cache(maxsize=1)
def precision_catalog() -> dict[str, Precision]:
    """Weight storage formats by slug (``catalog/precisions.yaml``)."""
    path = CATALOG_DIR / "precisions.yaml"
    data = read_yaml_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("precisions"), list):
        raise CatalogError(f"{path}: expected a top-level key 'precisions' holding a list")
    out: dict[str, Precision] = {}
    aliases: dict[str, str] = {}
    for i, entry in enumerate(data["precisions"]):
        where = f"{path}: precisions[{i}]"
        _check_keys(entry, PRECISION_KEYS, where)
        p = Precision(
            slug=entry["slug"], name=entry["name"], bits=float(_num(entry, "bits", where)),
            group_size=int(_num(entry, "group_size", where, positive=False)),
            scale_bytes_per_group=float(_num(entry, "scale_bytes_per_group", where, positive=False)),
            second_level_bytes_per_group=float(_num(entry, "second_level_bytes_per_group", where, positive=False)),
            compute=entry["compute"], family=entry["family"], sources=_str_list(entry, "sources", where),
            notes=str(entry.get("notes") or ""),
        )
        out[p.slug] = p
        for a in _str_list(entry, "aliases", where):
            aliases[a.lower()] = p.slug
    _PRECISION_ALIASES.clear()
    _PRECISION_ALIASES.update(aliases)
    return out


_PRECISION_ALIASES: dict[str, str] = {}


def load_precision(name: str) -> Precision:
    """Resolve a precision by slug or alias (e.g. 'int4' -> GPTQ/AWQ int4 with group 128)."""
    cat = precision_catalog()
    key = str(name).strip().lower()
    slug = key if key in cat else _PRECISION_ALIASES.get(key)
    if slug is None:
        raise CatalogError(f"unknown precision '{name}'; choose one of: {', '.join(sorted(cat))}")
    return cat[slug]

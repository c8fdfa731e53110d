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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from llmsizing.errors import CatalogError, ConfigError
from llmsizing.specs import GpuSpec, ModelSpec, Precision, model_spec_from_config
from llmsizing.units import GB, MiB, parse_memory_bytes

CATALOG_DIR = Path(__file__).parent / "catalog"
MAX_CATALOG_FILE_BYTES = 1_000_000
#: Largest number a catalog key may hold (all catalog units keep real values far below it).
MAX_CATALOG_NUMBER = 1e15
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
    """Read a small UTF-8 text file; every problem is one ``error`` line naming the file."""
    where = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise error(f"{where}: no such {what}") from None
    except OSError as exc:
        raise error(f"{where}: cannot read ({exc.strerror or exc})") from None
    if not path.is_file():
        raise error(f"{where}: not a file")
    if size > max_bytes:
        raise error(f"{where}: file is {size} bytes, over the {max_bytes}-byte limit")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{where}: not UTF-8 text") from None
    except OSError as exc:
        raise error(f"{where}: cannot read ({exc.strerror or exc})") from None


def read_yaml_file(path: Path) -> Any:
    """Read one catalog YAML file safely (no tags, no alias bombs, size-limited, UTF-8)."""
    return safe_yaml_loads(read_text_file(path), str(path), CatalogError)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses YAML aliases (no billion-laughs expansion)."""

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
        data["config"], slug=data["slug"], name=data["name"], where=where, hf_id=data["hf_id"],
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
    """Resolve a model by catalog slug, Hugging Face id, alias, or a path to a ``config.json``."""
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
    raise CatalogError(f"unknown model '{name}'{_suggest(key, sorted(model_entries()))} "
                       f"(run 'llmsizing models' for the list, or pass a path to a config.json)")


def model_entry(spec: ModelSpec) -> ModelEntry | None:
    """The catalog entry behind a spec, or None for a spec built from a config file."""
    return model_entries().get(spec.slug)


def model_from_config_file(path: Path) -> ModelSpec:
    """Build a spec from a Hugging Face ``config.json`` (or a directory holding one)."""
    try:
        if path.is_dir():
            path = path / "config.json"
    except OSError:
        pass  # reading it below reports the problem
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read config file ({exc.strerror or exc})") from None
    if len(raw) > MAX_CATALOG_FILE_BYTES:
        raise ConfigError(f"{where}: file is {len(raw)} bytes, too large for a config.json")
    try:
        cfg = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(f"{where}: invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ConfigError(f"{where}: invalid JSON: {' '.join(str(exc).split())[:200]}") from None
    slug = path.parent.name or path.stem
    name = cfg.get("_name_or_path") if isinstance(cfg, dict) else None
    return model_spec_from_config(cfg, slug=slug, name=name if isinstance(name, str) and name else slug, where=where)


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
        slug=data["slug"], name=str(data["name"]), vendor=str(data["vendor"]), arch=str(data["arch"]),
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
        from dataclasses import replace

        found = replace(found, memory_bytes=parse_memory_bytes(memory_override))
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

"""What a report is built from, each input hashed (SHA-256 of file contents, never timestamps).

``scenario``     the params file
``notebook``     ``notebooks/<kind>.ipynb``
``template``     every file of the report template (``report/templates/report/``)
``catalog``      the catalog files the scenario names: its models and GPUs (aliases resolved
                 through the catalog, a GPU's ``derived_from`` parent included), the cloud
                 instances carrying those GPUs, and ``precisions.yaml``; a model given as a
                 ``config.json`` path hashes that file, a Hugging Face id its cached ``config.json``
``assumptions``  ``assumptions/*.py`` plus the scenario's overrides
``library``      the version and every ``lib/llmsizing/**/*.py`` outside ``assumptions/``
``formats``      the output formats asked for (html, pdf)

Reads files only: no notebook, no estimate, no rendering stack.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmsizing import __version__, catalog, hub
from llmsizing.errors import SizingError
from llmsizing.files import read_bytes_bounded
from llmsizing.report.render import TEMPLATE_DIR, TEMPLATE_NAME
from llmsizing.report.runner import notebooks_dir

__all__ = ["INPUT_KEYS", "Hasher", "SharedInputs", "canonical_json", "catalog_files", "combine"]

#: Input hash keys, in the order reasons are reported.
INPUT_KEYS = ("scenario", "notebook", "template", "catalog", "assumptions", "library", "formats")

_LIB_DIR = Path(__file__).resolve().parents[1]
#: Largest input file hashed (notebooks, templates, sources are far smaller); a bigger one hashes as "unreadable".
MAX_HASHED_FILE_BYTES = 64 * 2**20


def combine(parts: Mapping[str, str]) -> str:
    """One hash over named hashes (order-independent)."""
    h = hashlib.sha256()
    for k in sorted(parts):
        h.update(f"{k}\0{parts[k]}\n".encode())
    return h.hexdigest()


class Hasher:
    """SHA-256 of files, each read once per refresh."""

    def __init__(self) -> None:
        self._cache: dict[Path, str] = {}

    def file(self, path: Path) -> str:
        key = Path(os.path.abspath(path))
        if key not in self._cache:
            if not os.path.lexists(key):
                self._cache[key] = "missing"
            elif os.path.isdir(key):
                self._cache[key] = "directory"
            else:
                try:  # the one bounded reader: a FIFO or /dev/zero is refused, never read
                    self._cache[key] = hashlib.sha256(read_bytes_bounded(key, MAX_HASHED_FILE_BYTES)).hexdigest()
                except SizingError:
                    self._cache[key] = "unreadable"
        return self._cache[key]

    def tree(self, root: Path, pattern: str, skip: Callable[[Path], bool] = lambda p: False) -> str:
        files = {}
        for p in sorted(root.rglob(pattern)):
            if p.is_file() and "__pycache__" not in p.parts and not skip(p):
                files[p.relative_to(root).as_posix()] = self.file(p)
        return combine(files)


def _quick_yaml(path: Path) -> dict[str, Any]:
    """A catalog file's top-level mapping, read fast (libyaml when present) for indexing only.

    The catalog module validates these files strictly when estimates need them; here only
    ``gpu`` and ``derived_from`` are read, and an unreadable file gives an empty mapping.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(read_bytes_bounded(path, catalog.MAX_CATALOG_FILE_BYTES), Loader=loader)  # noqa: S506
    except (SizingError, yaml.YAMLError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _entry_files(kind: str) -> dict[str, Path]:
    """Catalog files of ``kind`` by slug (= file stem); ``$LLMSIZING_CATALOG_DIR`` overrides built-ins."""
    files: dict[str, Path] = {}
    for d in catalog._catalog_dirs(kind):
        for p in sorted(d.glob("*.yaml")):
            files[p.stem] = p
    return files


@dataclass
class SharedInputs:
    """Inputs every scenario shares, hashed once per refresh, and the catalog file index."""

    hasher: Hasher
    template: str
    library: str
    assumptions_code: str
    gpu_files: dict[str, Path]
    instances_by_gpu: dict[str, list[Path]]
    notebook_dir: Path
    _derived: dict[str, str | None] = field(default_factory=dict)

    def gpu_parent(self, slug: str) -> str | None:
        """The ``derived_from`` GPU of a GPU entry, if any."""
        if slug not in self._derived:
            path = self.gpu_files.get(slug)
            parent = _quick_yaml(path).get("derived_from") if path else None
            self._derived[slug] = parent if isinstance(parent, str) else None
        return self._derived[slug]

    @classmethod
    def collect(cls, notebook_dir: Path) -> "SharedInputs":
        hasher = Hasher()
        assumptions_dir = _LIB_DIR / "assumptions"
        library = combine({
            "version": __version__,
            "source": hasher.tree(_LIB_DIR, "*.py", skip=lambda p: assumptions_dir in p.parents),
        })
        by_gpu: dict[str, list[Path]] = {}
        for path in _entry_files("instances").values():
            gpu = _quick_yaml(path).get("gpu")
            if not isinstance(gpu, str):
                continue
            try:
                gpu = catalog.load_gpu(gpu).slug
            except SizingError:
                pass
            by_gpu.setdefault(gpu, []).append(path)
        return cls(
            hasher=hasher,
            template=hasher.tree(TEMPLATE_DIR / TEMPLATE_NAME, "*"),
            library=library,
            assumptions_code=hasher.tree(assumptions_dir, "*.py"),
            gpu_files=_entry_files("gpus"),
            instances_by_gpu=by_gpu,
            notebook_dir=notebook_dir,
        )


def catalog_files(scenario: Any, shared: SharedInputs | None = None) -> dict[str, Path]:
    """The catalog files ``scenario`` uses, by label (``gpus/h100-80gb.yaml``, ...).

    Its models and GPUs (already resolved to slugs by validation), each GPU's
    ``derived_from`` parent, every cloud instance whose GPU is one of them, and
    ``precisions.yaml``. A model given as a path to a ``config.json`` is that file.
    """
    if shared is None:
        shared = SharedInputs.collect(notebooks_dir())
    # Labels name an entry, not where it was found: an identical copy of a built-in entry in
    # LLMSIZING_CATALOG_DIR changes nothing; a different one changes the hash under the same label.
    out: dict[str, Path] = {}
    models = catalog.model_entries()
    for name in scenario.models:
        entry = models.get(name)
        if entry is not None:
            out[f"models/{entry.path.name}"] = entry.path
        elif hub.is_hub_id(name) and not Path(name).exists():
            # A Hugging Face id: the config.json its revision points at in the local cache.
            repo_id, revision = hub.parse_hub_id(name)
            found = hub.find_in_cache(repo_id, revision)
            out[f"hub:{name}"] = found.path if found is not None else Path(name)
        else:
            path = Path(name)
            if path.is_dir():
                path = path / "config.json"
            out[f"config:{path}"] = path
    gpus = list(scenario.gpus)
    for slug in list(gpus):
        parent = shared.gpu_parent(slug)
        if parent is not None and parent in shared.gpu_files and parent not in gpus:
            gpus.append(parent)
    for slug in gpus:
        path = shared.gpu_files.get(slug)
        if path is not None:
            out[f"gpus/{path.name}"] = path
    for slug in scenario.gpus:
        for path in shared.instances_by_gpu.get(slug, ()):
            out[f"instances/{path.name}"] = path
    out["precisions.yaml"] = catalog.CATALOG_DIR / "precisions.yaml"
    return out


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)

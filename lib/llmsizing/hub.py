"""Hugging Face model ids outside the catalog: their ``config.json`` from the local cache or the Hub.

``org/name`` (optionally ``org/name@revision``) resolves, in this order:

1. the local Hugging Face cache, offline, in the layout ``huggingface_hub`` writes
   (https://huggingface.co/docs/huggingface_hub/guides/manage-cache)::

       $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
         models--org--name/refs/main              -> the commit hash "main" pointed at
         models--org--name/snapshots/<hash>/config.json

2. the Hub, through ``huggingface_hub.hf_hub_download`` (which fills the same cache), unless
   ``HF_HUB_OFFLINE`` is set. A gated or private model gets one line about the token.

Only ``config.json`` is read, as JSON: no model code is ever imported or run (there is no
``trust_remote_code``); a ``model_type`` outside the supported families is refused by
:func:`llmsizing.specs.model_spec_from_config`. The commit hash read is returned with the path,
so reports can record exactly which revision they sized.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from llmsizing.errors import CatalogError

__all__ = ["HubConfig", "cache_dir", "find_in_cache", "is_hub_id", "offline", "parse_hub_id", "resolve_config"]

#: ``org/name`` with the characters the Hub allows, and an optional ``@revision``.
_HUB_ID_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,95})/([A-Za-z0-9][A-Za-z0-9._-]{0,95})(?:@([A-Za-z0-9._/-]{1,200}))?$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "on", "yes", "true"}
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class HubConfig:
    """A model's ``config.json`` found for a Hub id: where it is, which commit, and from where."""

    repo_id: str
    revision: str       # the commit hash
    path: Path          # the config.json file
    source: str         # "cache" or "hub"


def is_hub_id(name: str) -> bool:
    """``org/name`` or ``org/name@revision``, and not a ``.json`` path."""
    return bool(_HUB_ID_RE.match(name)) and not name.endswith(".json") and ".." not in name


def parse_hub_id(name: str) -> tuple[str, str]:
    """``"org/name@rev"`` -> ``("org/name", "rev")``; the revision defaults to ``main``."""
    m = _HUB_ID_RE.match(name)
    if not m or not is_hub_id(name):
        raise CatalogError(f"{name!r} is not a Hugging Face model id (write org/name or org/name@revision)")
    return f"{m.group(1)}/{m.group(2)}", m.group(3) or "main"


def offline() -> bool:
    """``HF_HUB_OFFLINE`` is set to a true value (as huggingface_hub reads it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def cache_dir() -> Path:
    """The hub cache folder: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def find_in_cache(repo_id: str, revision: str = "main", root: Path | None = None) -> HubConfig | None:
    """The cached ``config.json`` of ``repo_id`` at ``revision`` (a branch, tag or commit), or None."""
    repo = (root or cache_dir()) / ("models--" + repo_id.replace("/", "--"))
    commit = revision if _COMMIT_RE.match(revision) else None
    if commit is None:
        try:
            commit = (repo / "refs" / revision).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not _COMMIT_RE.match(commit):
            return None
    path = repo / "snapshots" / commit / CONFIG_FILE
    return HubConfig(repo_id, commit, path, "cache") if path.is_file() else None


def _check_reachable(repo_id: str) -> None:
    """Fail at once, not after huggingface_hub's minute of retries, when the Hub's name does not resolve.

    Skipped behind a proxy (the proxy resolves names then).
    """
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    host = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        raise CatalogError(f"{repo_id}: not in the local Hugging Face cache ({cache_dir()}) and the Hub ({host}) "
                           f"cannot be reached (no network?); set HF_HOME / HF_HUB_CACHE to a cache that holds it"
                           ) from None


def _download(repo_id: str, revision: str) -> HubConfig:
    """``config.json`` from the Hub through huggingface_hub (into the same cache)."""
    try:
        # Optional at run time: only a model id outside the catalog and the cache needs it.
        import huggingface_hub
        from huggingface_hub import errors as hub_errors
    except ImportError:
        raise CatalogError(f"{repo_id}: not in the local Hugging Face cache ({cache_dir()}); install "
                           f"huggingface_hub (pip install huggingface_hub) to download its config.json") from None

    def err(name: str) -> type[BaseException]:
        return getattr(hub_errors, name, ()) or ()  # type: ignore[return-value]

    _check_reachable(repo_id)
    try:
        path = Path(huggingface_hub.hf_hub_download(repo_id, CONFIG_FILE, revision=revision, cache_dir=cache_dir()))
    except err("GatedRepoError"):
        raise CatalogError(f"{repo_id} is a gated model: accept its licence on https://huggingface.co/{repo_id} "
                           f"and set HF_TOKEN to a token of that account (or run 'hf auth login')") from None
    except err("RepositoryNotFoundError"):
        raise CatalogError(f"{repo_id}: no such model on the Hugging Face Hub, or it is private (then set HF_TOKEN "
                           f"to a token that can read it)") from None
    except err("RevisionNotFoundError"):
        raise CatalogError(f"{repo_id}: no revision {revision!r} on the Hugging Face Hub") from None
    except err("LocalEntryNotFoundError"):
        raise CatalogError(f"{repo_id}: not in the local Hugging Face cache ({cache_dir()}) and the Hub cannot "
                           f"be reached (no network?)") from None
    except err("EntryNotFoundError"):
        raise CatalogError(f"{repo_id}: the repository has no {CONFIG_FILE} (not a transformers model)") from None
    except (OSError, ValueError, err("HfHubHTTPError")) as exc:
        text = " ".join(str(exc).split())[:200]
        raise CatalogError(f"{repo_id}: cannot download {CONFIG_FILE} from the Hugging Face Hub: {text}") from None
    commit = path.parent.name if _COMMIT_RE.match(path.parent.name) else revision
    return HubConfig(repo_id, commit, path, "hub")


def resolve_config(name: str) -> HubConfig:
    """The ``config.json`` of Hub id ``name``: the local cache first, then the Hub unless offline."""
    repo_id, revision = parse_hub_id(name)
    found = find_in_cache(repo_id, revision)
    if found is not None:
        return found
    if offline():
        raise CatalogError(f"{name}: not in the local Hugging Face cache ({cache_dir()}) and HF_HUB_OFFLINE is set; "
                           f"download it once with network (or point HF_HOME / HF_HUB_CACHE at the cache)")
    return _download(repo_id, revision)

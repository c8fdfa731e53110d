"""File and clock helpers every refresh step uses: UTC time stamps, atomic writes, permission modes."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from llmsizing.text import for_terminal

__all__ = ["dir_mode", "file_mode", "iso", "now_utc", "one_line", "read_json_file", "rel", "remove_path", "shown",
           "write_atomic"]


def now_utc() -> _dt.datetime:
    """Now, UTC, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)


def iso(t: _dt.datetime) -> str:
    """``2031-02-03T04:05:06Z``."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def one_line(text: object, limit: int = 600) -> str:
    """``text`` with whitespace collapsed, shortened to ``limit`` characters."""
    flat = for_terminal(text)  # goes to the terminal, manifest.json and index.html
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def file_mode() -> int:
    """Permissions of a new file under the process umask."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Permissions of a new folder under the process umask."""
    return 0o777 & ~_umask()


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_path(path: Path) -> None:
    """Delete a file or a folder tree (nothing if absent)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def shown(path: Path) -> str:
    """``path`` for messages: relative to the working directory when inside it."""
    try:
        return Path(os.path.abspath(path)).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def rel(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (as given when outside it)."""
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def read_json_file(path: Path) -> dict[str, Any] | None:
    """A JSON object read from ``path`` (None when missing, unreadable or not an object)."""
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc if isinstance(doc, dict) else None
    return None

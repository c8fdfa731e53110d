"""The one bounded reader for every input file (catalog entries, config.json, params files, audit tables).

Rules, enforced in one place:

* regular files only: a FIFO, a character device (``/dev/zero``, also through a symlink), a socket or a
  directory is refused at once, never read;
* nothing can block: the file is opened with ``O_NONBLOCK`` (opening a FIFO with no writer would
  otherwise wait forever) and the type is checked with ``fstat`` on that descriptor, so a file
  swapped between a check and the open cannot slip through;
* the size comes from ``fstat`` BEFORE reading; a file over the limit is refused without reading it
  (a 2 GB sparse file costs nothing), and at most ``limit + 1`` bytes are ever read (a file that
  grows while it is read is refused too);
* text must be UTF-8.

Every problem is one line naming the file, raised as the caller's error class.
"""

from __future__ import annotations

import os
import stat

from llmsizing.errors import SizingError

__all__ = ["is_regular_file", "read_bytes_bounded", "read_text_bounded"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_bytes_bounded(path: str | os.PathLike[str], max_bytes: int, *, error: type[Exception] = SizingError,
                       what: str = "file") -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them; else one ``error`` line."""
    where = os.fsdecode(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{where}: no such {what} (No such file or directory)") from None
    except IsADirectoryError:
        raise error(f"{where}: is a directory, not a {what}") from None
    except OSError as exc:
        try:  # a socket cannot be opened (ENXIO): name what it is
            mode = os.stat(path).st_mode
        except (OSError, ValueError):
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            raise error(f"{where}: is {_kind(mode)}, not a regular file; give a {what}") from None
        raise error(f"{where}: cannot read {what} ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{where}: is {_kind(st.st_mode)}, not a regular file; give a {what}")
        if st.st_size > max_bytes:
            raise error(f"{where}: {what} is {st.st_size:,} bytes, too large (over the {max_bytes:,}-byte limit)")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise error(f"{where}: {what} is over the {max_bytes:,}-byte limit (too large; it grew while being read)")
        return b"".join(chunks)
    except BlockingIOError:
        raise error(f"{where}: {what} would block; give a regular file") from None
    except OSError as exc:
        raise error(f"{where}: cannot read {what} ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_text_bounded(path: str | os.PathLike[str], max_bytes: int, *, error: type[Exception] = SizingError,
                      what: str = "file") -> str:
    """The UTF-8 text of the regular file ``path`` (see :func:`read_bytes_bounded`)."""
    raw = read_bytes_bounded(path, max_bytes, error=error, what=what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{os.fsdecode(path)}: not UTF-8 text") from None


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a regular file (following symlinks), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


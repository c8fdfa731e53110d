"""The refresh lock: an exclusive ``flock`` on ``reports/.refresh.lock`` while a refresh runs."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from llmsizing.errors import SizingError
from llmsizing.refresh.files import iso, now_utc

__all__ = ["EXIT_BUSY", "LOCK_FILE", "RefreshBusy", "refresh_lock"]

LOCK_FILE = ".refresh.lock"
#: Exit code of ``llmsizing refresh`` when another refresh holds the lock.
EXIT_BUSY = 75  # sysexits EX_TEMPFAIL: another refresh holds the lock; try again later


class RefreshBusy(SizingError):
    """Another refresh holds the lock on the reports folder."""


@contextlib.contextmanager
def refresh_lock(out_dir: str | os.PathLike[str], wait: float = 0.0,
                 on_wait: Callable[[str], None] | None = None):
    """Hold ``fcntl.flock`` on ``<out_dir>/.refresh.lock`` for the duration of the block.

    ``wait`` is how long to wait for another holder, in seconds (0: not at all, ``math.inf``:
    for ever); when it runs out, :class:`RefreshBusy` names the holder. ``on_wait`` is called
    once with a message when waiting starts. The lock file is never deleted (deleting a
    lock file lets two processes lock two different files); the kernel releases the lock
    when the process ends, however it ends.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(fd)
                if time.monotonic() >= deadline:
                    hint = ("; pass --wait to wait for it" if wait == 0 else
                            f"; gave up after waiting {wait:g} s")
                    raise RefreshBusy(f"another refresh is running on {root}/ ({holder}){hint}") from None
                if not told and on_wait is not None:
                    on_wait(f"waiting for another refresh on {root}/ to finish ({holder})")
                    told = True
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": iso(now_utc()),
                "command": " ".join(sys.argv[:1] + sys.argv[1:8])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _lock_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        if info:
            return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started_at')}"
    return "holder unknown"

"""One grading run per class folder: ``OUT/.grading.lock``, held with ``flock`` for the run.

The kernel releases the lock when the holder ends, however it ends, so a crashed run never
leaves a stale lock; the file's text (pid, user, host, start time) only serves the message.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import os
import socket
from pathlib import Path

LOCK_FILE = ".grading.lock"


class FolderBusy(RuntimeError):
    """Another run holds the folder; the message is one line saying who."""


def _describe() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        user = str(os.getuid())
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return f"pid {os.getpid()} of {user} on {socket.gethostname()}, started {started}"


@contextlib.contextmanager
def hold(out: Path):
    """Hold ``out``'s lock while the block runs; FolderBusy at once if another run has it."""
    path = Path(out) / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 1000, 0).decode("utf-8", "replace").strip()
            raise FolderBusy(f"{out} is being graded by another run ({holder or 'unknown'}); "
                             "wait for it to finish") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (_describe() + "\n").encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # releases the lock


def hold_unless_read_only(out: Path):
    """:func:`hold` for a folder this user can write; nothing for one it cannot (no grading run
    of this user can be changing it, and a read-only folder cannot take the lock file)."""
    return hold(out) if os.access(out, os.W_OK) else contextlib.nullcontext()

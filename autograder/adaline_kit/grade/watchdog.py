"""Caps on a whole submission: the memory of all its processes and the disk it writes.

Per-process limits (``RLIMIT_AS``, ``RLIMIT_FSIZE``) and the process cap (``RLIMIT_NPROC``) are
set in the student process itself (:mod:`adaline_kit.sandbox.child`); they cannot see that three
processes each take 500 MiB, or that a thousand files of 50 MiB fill the disk. A
:class:`Watchdog` thread in the grader measures, several times a second, the private memory of
the student process and every process beneath it (see :func:`private_bytes`; memfd files count
too, mapped or not) and the bytes under the working folder (deleted files still held open
count too), and ends the whole tree the moment either passes its cap. The session then
reports the cap as the reason (see :attr:`Watchdog.reason`).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

from ..sandbox.zygote import children_by_parent

POLL_SECONDS = 0.05


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (the student process is a subreaper: orphans stay)."""
    tree, found, todo = children_by_parent(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, ()))
    return found


def private_bytes(pid: int) -> int:
    """Memory that process ``pid`` holds for itself, in bytes: its private pages plus its share
    of shared memory it maps (``Pss_Shmem``: ``MAP_SHARED`` pages, mapped memfd files), so pages
    shared between two of the notebook's processes count once. Pages inherited from the warm
    zygote are not counted (they are shared, not shmem)."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith(("Private_Clean:", "Private_Dirty:", "Pss_Shmem:")):
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return total


def open_files(pids: list[int]) -> dict[tuple[int, int], tuple[str, int]]:
    """{(device, inode): (link text, bytes on disk or in memory)} of the files the processes
    hold open that have no name in any folder: memfd files and deleted files."""
    found = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                target = os.readlink(path)
                if not (target.startswith("/memfd:") or target.endswith(" (deleted)")):
                    continue
                info = os.stat(path)
            except OSError:
                continue
            found[(info.st_dev, info.st_ino)] = (target, info.st_blocks * 512)
    return found


def folder_bytes(folder: Path) -> int:
    """Bytes of disk the files under ``folder`` take."""
    total = 0
    for root, dirs, files in os.walk(folder):
        for name in files + dirs:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total


class Watchdog:
    """Ends the process tree of ``pid`` (through ``kill``) once it passes a cap; use ``with``."""

    def __init__(self, pid: int, workdir: Path, memory_bytes: int, disk_bytes: int,
                 kill: Callable[[], None], max_processes: int = 0):
        self.pid, self.workdir = pid, workdir
        self.memory_bytes, self.disk_bytes = memory_bytes, disk_bytes
        self.max_processes = max_processes
        self.kill = kill
        self.reason = ""  # why the tree was ended, "" while it runs within its caps
        self.peak_memory = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="watchdog")

    def __enter__(self) -> "Watchdog":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def check(self) -> str:
        """Measure once; return the reason to end the tree, or ""."""
        pids = process_tree(self.pid)
        if self.max_processes and len(pids) > self.max_processes:
            # RLIMIT_NPROC stops this first where it applies (not for a user the kernel exempts)
            return (f"the notebook started {len(pids)} processes, more than the "
                    f"{self.max_processes} allowed")
        unnamed = open_files(pids)
        in_memory = sum(size for target, size in unnamed.values() if target.startswith("/memfd:"))
        memory = sum(private_bytes(pid) for pid in pids) + in_memory
        self.peak_memory = max(self.peak_memory, memory)
        if self.memory_bytes and memory > self.memory_bytes:
            return (f"the notebook's processes used {memory >> 20} MiB of memory together, "
                    f"more than the {self.memory_bytes >> 20} MiB allowed")
        if self.disk_bytes:
            deleted = sum(size for target, size in unnamed.values()
                          if target.startswith(str(self.workdir) + os.sep))
            written = folder_bytes(self.workdir) + deleted
            if written > self.disk_bytes:
                return (f"the notebook wrote {written >> 20} MiB of files, more than the "
                        f"{self.disk_bytes >> 20} MiB allowed")
        return ""

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            reason = self.check()
            if reason:
                self.reason = reason
                self.kill()
                return

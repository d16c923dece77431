"""Peak memory of a process tree (PSS and RSS summed over its processes), sampled in a thread.

Used by the benchmark and by the tests that hold a submission's whole grading tree to its
memory budget.
"""

from __future__ import annotations

import threading

import psutil


class TreeSampler(threading.Thread):
    """Samples memory of a process tree every ``interval`` seconds until stopped.

    Keeps the peak PSS and RSS sums over the tree and, per student process (a child of the
    kit's zygote), the peak RSS, USS and PSS.
    """

    def __init__(self, root: psutil.Process, interval: float = 0.05, include_root: bool = True):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.include_root = include_root
        self.stopped = threading.Event()
        self.peak_pss = self.peak_rss = 0
        self.student = {"rss": 0, "uss": 0, "pss": 0}
        self.students_seen: set[int] = set()
        self._zygote: dict[int, bool] = {}

    def _is_zygote(self, process: psutil.Process) -> bool:
        if process.pid not in self._zygote:
            try:
                self._zygote[process.pid] = "adaline_kit.sandbox.zygote" in " ".join(
                    process.cmdline())
            except psutil.Error:
                return False
        return self._zygote[process.pid]

    def sample(self) -> None:
        try:
            processes = self.root.children(recursive=True)
        except psutil.Error:
            return
        if self.include_root:
            processes.append(self.root)
        zygotes = {p.pid for p in processes if self._is_zygote(p)}
        pss = rss = 0
        for process in processes:
            try:
                info = process.memory_full_info()
                parent = process.ppid()
            except psutil.Error:
                continue
            pss += info.pss
            rss += info.rss
            if parent in zygotes:
                self.students_seen.add(process.pid)
                for key in self.student:
                    self.student[key] = max(self.student[key], getattr(info, key))
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_rss = max(self.peak_rss, rss)

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(self.interval)

    def stop(self) -> "TreeSampler":
        self.stopped.set()
        self.join()
        return self

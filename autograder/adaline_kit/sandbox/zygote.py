"""The zygote: a warm interpreter that forks one student process per grading session.

Run as ``python -m adaline_kit.sandbox.zygote CONTROL_FD`` by :class:`adaline_kit.grade.sandbox.Zygote`,
which holds the other end of the control socket. It imports torch, matplotlib and the probes
once, installs the autograd spies, prints ``ready`` and then forks a child for every request on
the control socket (see :func:`main`). Forking saves each submission a fresh interpreter and a torch import
(over a second each), and every submission still gets a process of its own: nothing one
submission does is visible to the next.

The zygote is a child subreaper: a process that a student process leaves behind (even one that
called setsid() to leave its process group) becomes the zygote's child when its parents end, and
the zygote kills every child that is not a live student process it forked. So nothing a
submission starts outlives its grading session.

The zygote never runs student code and never imports hidden checks or reference solutions.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import pkgutil
import signal
import socket
import sys


# Standard modules never preloaded: they open windows, print on import or are not for Linux.
NOT_PRELOADED = frozenset({
    "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "ensurepip", "venv",
    "lib2to3", "pydoc_data", "curses", "_curses", "_curses_panel", "readline", "_tkinter",
    "__hello__", "__phello__", "msilib", "winreg", "winsound", "msvcrt", "nt", "_winapi",
    "_msi", "_overlapped", "_scproxy", "crypt", "_crypt", "nis", "spwd", "ossaudiodev",
})


# Submodules never preloaded: test suites, and modules that run a program when imported.
NOT_WALKED = frozenset({"test", "tests", "idle_test", "__main__"})


def standard_library_modules() -> list[str]:
    """The standard library's modules and, package by package, their submodules (found with
    pkgutil, imported as they are found: a package must be imported to list its own), minus
    NOT_PRELOADED and NOT_WALKED; what fails to import here is left out."""
    loaded, todo = [], sorted(sys.stdlib_module_names - NOT_PRELOADED, reverse=True)
    while todo:
        name = todo.pop()
        try:
            module = importlib.import_module(name)
        except (Exception, SystemExit):  # noqa: BLE001 - a module this platform lacks
            continue
        loaded.append(name)
        found = pkgutil.iter_modules(getattr(module, "__path__", None) or [], name + ".")
        todo.extend(sorted((info.name for info in found
                            if info.name.rpartition(".")[2] not in NOT_WALKED
                            and not info.name.rpartition(".")[2].startswith("test")),
                           reverse=True))
    return loaded


def _preload_standard_library() -> None:
    """Import the standard library, submodules included, once, before forking.

    Student processes may run as an unprivileged user who cannot read this interpreter's files
    (for example a Python installed under /root); preloading keeps ``import cProfile``,
    ``import logging.config`` and the like working there, and saves each submission the import
    time.
    """
    standard_library_modules()


def _warm_up():
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401 - imported to be shared by every child
    import numpy  # noqa: F401
    import torch
    import torch.nn.functional  # noqa: F401

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    import pandas  # noqa: F401 - the notebook reads the data with it
    import torch._dynamo  # noqa: F401 - optim.SGD imports it lazily, over a second each time

    _preload_standard_library()
    from . import child, spies

    return child, spies.install()


_PR_SET_DUMPABLE, _PR_SET_CHILD_SUBREAPER = 4, 36
ORPHAN_SWEEP_SECONDS = 0.25
SWEEP_SIGNALS = {signal.SIGCHLD, signal.SIGALRM}


def children_by_parent() -> dict[int, list[int]]:
    """Every process's children, keyed by parent pid (one pass over /proc)."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(parent, []).append(int(entry))
    return tree


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    return children_by_parent().get(pid, [])


def _refuse_ptrace() -> None:
    """Make this process (and every child it forks) non-dumpable: a process of the same user
    cannot attach to it or read its memory, environment or file descriptors through /proc."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def main(control_fd: int) -> None:
    """Serve the grader on the inherited control socket ``control_fd`` until it closes.

    Each message on the control socket is a JSON object (the student process's ``start``
    settings, see :mod:`adaline_kit.sandbox.child`) carrying one file descriptor: the student
    process's end of a fresh socket pair. The zygote forks; the child confines itself with those
    settings before it reads a single request, and the zygote answers ``{"pid": PID}``. The
    control socket has no name in the file system and is closed in every child, so no student
    process can ask the zygote for anything.
    """
    child, spy = _warm_up()
    _refuse_ptrace()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    control = socket.socket(fileno=control_fd)
    students: set[int] = set()  # the live student processes this zygote forked

    def on_child_exit(signum, frame):
        """Reap ended children; kill the orphans the zygote adopted (not student processes)."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            students.discard(pid)
        for pid in children(os.getpid()):
            if pid not in students:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    signal.signal(signal.SIGCHLD, on_child_exit)
    # Orphans adopted without a SIGCHLD (a student process that stopped being a subreaper leaves
    # its grandchildren here) are found by a sweep four times a second.
    signal.signal(signal.SIGALRM, on_child_exit)
    signal.setitimer(signal.ITIMER_REAL, ORPHAN_SWEEP_SECONDS, ORPHAN_SWEEP_SECONDS)
    print("ready", flush=True)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 1)
        except InterruptedError:
            continue
        if not message:  # the grader closed the control socket: it is done
            break
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            control.sendall(b'{"error": "one socket expected"}\n')
            continue
        settings = json.loads(message)
        connection = socket.socket(fileno=fds[0])
        # No sweep between fork() and recording the new student process (it is no orphan).
        signal.pthread_sigmask(signal.SIG_BLOCK, SWEEP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGALRM, signal.SIG_IGN)  # no timer here; cells set theirs
                signal.pthread_sigmask(signal.SIG_UNBLOCK, SWEEP_SIGNALS)
                os.setsid()
                child.serve_connection(connection, spy, settings)
            students.add(pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SWEEP_SIGNALS)
        connection.close()
        control.sendall((json.dumps({"pid": pid}) + "\n").encode())


if __name__ == "__main__":
    main(int(sys.argv[1]))

"""Watch, from inside the student process, for student code reaching into the grader.

:func:`watch` installs a Python audit hook (:pep:`578`), which nothing can remove once it is
in place. It reports, at the moment they happen, the acts a notebook has no reason to do and an
attempt on the grader needs: walking every object in memory (``gc.get_objects``,
``gc.get_referrers``, ``gc.get_referents``), importing the grading package, taking a frame of
the grader's code (``sys._getframe``, ``sys._current_frames``), adding audit hooks, and reading
raw memory or loading C functions with ``ctypes``. Each report is one line
``{"flag": "..."}`` written straight to the grader's socket, so undoing things afterwards cannot
take it back. The grader also reads the source (``adaline_kit.grade.tampering``); neither is
complete, and neither decides a score: flags are for course staff to look at.
"""

from __future__ import annotations

import json
import os
import sys
import threading

GRADER_PACKAGE = __name__.rsplit(".", 2)[0]  # "adaline_kit"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WRITE_LOCK = threading.Lock()
_CONNECTION: list[int] = []

EVENTS = {
    "gc.get_objects": "walked every object in memory (gc.get_objects)",
    "gc.get_referrers": "searched memory for the objects that refer to one (gc.get_referrers)",
    "gc.get_referents": "followed an object's references (gc.get_referents)",
    "sys._current_frames": "took the frames of every thread (sys._current_frames)",
    "sys.addaudithook": "tried to add an audit hook",
    "ctypes.dlopen": "loaded a C library with ctypes",
    "ctypes.dlsym": "looked up a C function with ctypes",
    "ctypes.cdata": "read raw memory with ctypes",
    "ctypes.string_at": "read raw memory with ctypes",
    "ctypes.wstring_at": "read raw memory with ctypes",
}


def write_line(message: dict) -> None:
    """Send one JSON line to the grader, never interleaved with another (threads)."""
    data = (json.dumps(message) + "\n").encode("utf-8")
    with _WRITE_LOCK:
        fd = _CONNECTION[0]
        while data:
            data = data[os.write(fd, data):]


def _grader_code(frame) -> bool:
    return frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR + os.sep)


def _cell(frame) -> bool:
    return frame is not None and frame.f_code.co_filename.startswith("<code cell ")


def _student_code(frame) -> bool:
    """A frame of a notebook cell, or of ``inspect`` called by one (``inspect.currentframe``)."""
    if _cell(frame):
        return True
    return (frame is not None and frame.f_code.co_filename.endswith(os.sep + "inspect.py")
            and _cell(frame.f_back))


SPAWNING = frozenset({"os.fork", "os.forkpty", "subprocess.Popen", "os.posix_spawn",
                      "os.spawn", "os.system"})


def descendants(pid: int = 0) -> int:
    """How many processes run beneath ``pid`` (0: this process), from /proc's children lists."""
    count, todo = 0, [pid or os.getpid()]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    found = [int(child) for child in handle.read().split()]
            except (OSError, ValueError):
                continue
            count += len(found)
            todo.extend(found)
    return count


def use_connection(connection_fd: int) -> None:
    """Send :func:`write_line`'s lines to ``connection_fd`` (the socket to the grader)."""
    _CONNECTION[:] = [connection_fd]


def watch(max_processes: int = 0) -> None:
    """Report flags to the grader from now on (call once, before any student code runs), and
    refuse (``BlockingIOError``) to start a process past ``max_processes`` beneath this one: a
    cap that holds also where the kernel exempts the user from ``RLIMIT_NPROC``.

    Flags go out on the connection's descriptor only while it is still the grader's socket (a
    notebook may put another file in its place, even for a moment), else on a spare descriptor
    to the same socket taken now; when neither is, the process ends itself at once, so hiding a
    flag costs the run instead of passing unseen.
    """
    sent: set[str] = set()
    busy = threading.local()
    primary = _CONNECTION[0]
    spare = os.dup(primary)
    identity = (os.fstat(primary).st_dev, os.fstat(primary).st_ino)
    fstat, write, kill, getpid = os.fstat, os.write, os.kill, os.getpid

    def intact(fd: int) -> bool:
        try:
            found = fstat(fd)
        except OSError:
            return False
        return (found.st_dev, found.st_ino) == identity

    def flag(what: str) -> None:
        if what in sent or len(sent) >= 20:
            return
        sent.add(what)
        data = (json.dumps({"flag": what}) + "\n").encode("utf-8")
        with _WRITE_LOCK:
            for fd in (primary, spare):
                if intact(fd):
                    while data:
                        data = data[write(fd, data):]
                    return
        kill(getpid(), 9)  # both descriptors replaced: no silent way past the flag

    def hook(event: str, args: tuple) -> None:
        if getattr(busy, "on", False):
            return
        if max_processes and event in SPAWNING and descendants() >= max_processes - 1:
            raise BlockingIOError(11, "the grading sandbox allows at most "
                                      f"{max_processes} processes")
        busy.on = True
        try:
            if event in EVENTS:
                flag(EVENTS[event])
            elif event == "import":
                name = args[0] if args else None
                if type(name) is str and (name == GRADER_PACKAGE
                                          or name.startswith(GRADER_PACKAGE + ".")):
                    flag(f"imported the grader's package ({name})")
            elif event == "sys._getframe":
                if args and _grader_code(args[0]):
                    flag("took a frame of the grader's code (sys._getframe)")
                elif _student_code(sys._getframe(1)):  # the caller of sys._getframe
                    flag("took a frame object to walk the call stack (sys._getframe or "
                         "inspect.currentframe)")
        except Exception:  # noqa: BLE001 - a hook must never break the student's code
            pass
        finally:
            busy.on = False

    sys.addaudithook(hook)


def hide_grader_modules() -> None:
    """Drop the grading package from ``sys.modules``: the student process keeps what it already
    holds, and ``import adaline_kit`` must find the (unreadable) files again, which is flagged."""
    for name in [n for n in sys.modules if n == GRADER_PACKAGE
                 or n.startswith(GRADER_PACKAGE + ".")]:
        del sys.modules[name]

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


def use_connection(connection_fd: int) -> None:
    """Send :func:`write_line`'s lines to ``connection_fd`` (the socket to the grader)."""
    _CONNECTION[:] = [connection_fd]


def watch() -> None:
    """Report flags to the grader from now on (call once, before any student code runs)."""
    sent: set[str] = set()
    busy = threading.local()

    def flag(what: str) -> None:
        if what not in sent and len(sent) < 20:
            sent.add(what)
            write_line({"flag": what})

    def hook(event: str, args: tuple) -> None:
        if getattr(busy, "on", False):
            return
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

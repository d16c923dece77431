"""The student process: executes notebook cells and probes, one JSON message per line.

Started by the zygote (a fork per grading session) with a connected Unix socket. The first line it
sends is ``{"pid": PID}``. Then, for each request line from the grader it answers one line with the
same ``nonce``:

``{"op": "start", "workdir", "uid", "gid", "memory_bytes", "output_bytes", "hidden"}``
    drop privileges, enter the working directory, apply limits, confine the process (see
    :mod:`adaline_kit.sandbox.landlock`; ``hidden``: folders it must not read)
    -> ``{"status": "ok", "confinement": "landlock ABI N" | "unconfined: why"}``
``{"op": "cell", "index", "source", "timeout"}``
    run one cell -> ``{"status": "ok" | "error" | "timeout" | "exit", "error": str}``
``{"op": "probe", "name", "args", "timeout"}``
    run a probe -> ``{"status": "ok", "data": {...}}`` or ``{"status": "error" | "timeout", ...}``
    (``"kind": "tamper"`` when the student's code removed an autograd spy while it ran)
``{"op": "output"}`` -> ``{"status": "ok", "text": the start of what the cells printed, "dropped": n}``

Everything here is public: student code shares this process.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import resource
import signal
import socket
import sys
import traceback
import types

from . import landlock, probes, spies

_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
_GUARD = spies.Spy.guard  # taken before any student code runs (a cell may replace the method)


class Interrupted(BaseException):
    """Raised in student code by the per-cell / per-probe alarm."""


class CappedOutput(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)


class _Shell:
    """Stands in for IPython's shell: magics and shell escapes do nothing while grading."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _grading_otter_module() -> types.ModuleType:
    """An ``otter`` stand-in: ``grader.check`` and ``export`` do nothing while grading."""

    class Notebook:
        def __init__(self, *args, **kwargs):
            pass

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    module = types.ModuleType("otter")
    module.Notebook = Notebook
    return module


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _on_alarm(signum, frame):
    raise Interrupted()


def _one_line(error: BaseException) -> str:
    message = str(error).strip().splitlines()
    first = message[0] if message else ""
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text[:300]


def _student_frame_line(error: BaseException) -> str:
    """``cell N, line L`` of the innermost frame that belongs to a notebook cell."""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename.startswith("<cell "):
            where = f"{frame.filename[1:-1]}, line {frame.lineno}"
    return where


class StudentProcess:
    def __init__(self, connection: socket.socket, spy):
        self.connection = connection
        self.reader = connection.makefile("r", encoding="utf-8", newline="\n")
        self.spy = spy
        self.output = CappedOutput(20000)
        self.namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__,
                                "get_ipython": lambda: _Shell(), "display": lambda *a, **k: None}

    def send(self, message: dict) -> None:
        self.connection.sendall((json.dumps(message) + "\n").encode("utf-8"))

    # --- requests -----------------------------------------------------------------------------
    def start(self, request: dict) -> dict:
        workdir = request["workdir"]
        libc = ctypes.CDLL(None, use_errno=True)
        # Orphans of the student's own processes (even after setsid) become this process's
        # children, so they stay in reach; the zygote ends whatever is left when it dies.
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        if request.get("gid") is not None and os.getuid() == 0:
            os.setgroups([])
            os.setgid(request["gid"])
        if request.get("uid") is not None and os.getuid() == 0:
            os.setuid(request["uid"])
        # After setuid (which clears it): end with the zygote, whatever else happens.
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.chdir(workdir)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # C-level writes of student code go nowhere, not to the grader
            os.dup2(devnull, fd)
        os.environ.update({"HOME": workdir, "MPLCONFIGDIR": workdir, "TMPDIR": workdir})
        memory = request.get("memory_bytes")
        if memory:  # on top of what the warm interpreter already maps
            limit = _address_space_bytes() + int(memory)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (50 << 20, 50 << 20))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self.output = CappedOutput(int(request.get("output_bytes", 20000)))
        sys.stdout = sys.stderr = self.output
        sys.modules["otter"] = _grading_otter_module()
        sys.argv = ["notebook"]
        confinement = landlock.confine(workdir, list(request.get("hidden") or []))
        return {"status": "ok", "confinement": confinement}

    def _guarded(self, timeout: float, action):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(float(timeout), 0.01))
        try:
            return action()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def cell(self, request: dict) -> dict:
        index = request["index"]
        try:
            code = compile(request["source"], f"<cell {index}>", "exec")
        except SyntaxError as error:
            return {"status": "error", "error": f"SyntaxError: {error.msg} (cell {index}, line "
                                                f"{error.lineno})"}
        try:
            self._guarded(request["timeout"], lambda: exec(code, self.namespace))
        except Interrupted:
            return {"status": "timeout", "error": f"cell {index} ran longer than "
                                                  f"{request['timeout']:g} s and was stopped"}
        except SystemExit as error:
            return {"status": "exit", "error": f"cell {index} called exit({error.code!r})"}
        except BaseException as error:  # noqa: BLE001 - student code may raise anything
            where = _student_frame_line(error)
            return {"status": "error", "error": _one_line(error) + (f" ({where})" if where else "")}
        return {"status": "ok"}

    def probe(self, request: dict) -> dict:
        _GUARD(self.spy)  # spies a notebook cell removed are back before the probe runs
        self.spy.reset()
        reply = self._run_probe(request)
        tampered = _GUARD(self.spy)
        if tampered:
            return {"status": "error", "kind": "tamper",
                    "error": "your code removed the grader's autograd spies while it was "
                             f"checked ({', '.join(tampered)}), so this check cannot be trusted"}
        if reply.get("status") == "ok":
            reply["data"]["spy"] = self.spy.snapshot()
        return reply

    def _run_probe(self, request: dict) -> dict:
        try:
            data = self._guarded(request["timeout"], lambda: probes.run(
                request["name"], self.namespace, request["args"]))
        except Interrupted:
            return {"status": "timeout", "error": f"stopped after {request['timeout']:g} s"}
        except probes.ProbeError as error:
            return {"status": "error", "error": str(error), "kind": "contract"}
        except BaseException as error:  # noqa: BLE001
            where = _student_frame_line(error)
            return {"status": "error", "error": _one_line(error) + (f" ({where})" if where else ""),
                    "exception": type(error).__name__}
        return {"status": "ok", "data": data}

    def captured_output(self, request: dict) -> dict:
        return {"status": "ok", "text": self.output.text(), "dropped": self.output.dropped}

    def serve(self) -> None:
        self.send({"pid": os.getpid()})
        handlers = {"start": self.start, "cell": self.cell, "probe": self.probe,
                    "output": self.captured_output}
        for line in self.reader:
            request = json.loads(line)
            reply = handlers[request["op"]](request)
            reply["nonce"] = request.get("nonce")
            try:
                self.send(reply)
            except (TypeError, ValueError) as error:
                self.send({"status": "error", "error": f"unusable result: {error}",
                           "nonce": request.get("nonce")})


def serve_connection(connection: socket.socket, spy) -> None:
    """Entry point in the forked child; never returns."""
    code = 0
    try:
        StudentProcess(connection, spy).serve()
    except BaseException:  # noqa: BLE001 - the grader sees the closed socket
        code = 1
    finally:
        os._exit(code)

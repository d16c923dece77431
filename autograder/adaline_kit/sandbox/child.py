"""The student process: executes notebook cells and probes, one JSON message per line.

Forked by the zygote for one grading session, with its end of a socket pair (the grader holds the
other) and the session's settings ``{"workdir", "uid", "gid", "memory_bytes", "output_bytes",
"max_processes", "hidden", "environment"}``. Before it reads a single request it drops privileges,
enters the working directory, scrubs its environment, applies its limits and confines itself (see
:mod:`adaline_kit.sandbox.landlock`; ``hidden``: folders it must not read). Its first line is
``{"pid": PID, "confinement": ..., "user": ...}``. Then, for each request line from the grader it
answers one line with the same ``nonce``:

``{"op": "cell", "index", "source", "timeout"}``
    run one cell -> ``{"status": "ok" | "error" | "timeout" | "exit", "error": str}``
``{"op": "probe", "name", "args", "timeout"}``
    run a probe -> ``{"status": "ok", "data": {...}}`` or ``{"status": "error" | "timeout", ...}``
    (``"kind": "tamper"`` when the student's code removed an autograd spy while it ran)
``{"op": "output"}`` -> ``{"status": "ok", "text": the start of what the cells printed, "dropped": n}``

Lines ``{"flag": "..."}`` may come at any time: evidence that student code reached for the
grader's machinery (see :mod:`adaline_kit.sandbox.audit`); they are written the moment it happens.

Everything here is public: student code shares this process.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import socket
import sys
import traceback
import types

from .. import assignment
from . import audit, facade, landlock, spies

# The assignment's probes, imported now: the zygote imports this module before it forks, and a
# confined student process can no longer read the grading package.
probes = assignment.probes()

_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_CHILD_SUBREAPER = 1, 4, 36
# Variables the student process keeps from the grader's environment (the zygote was started with
# these only, too): no token, key or path of the grader's reaches student code.
INHERITED_VARIABLES = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ",
                       "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "MPLBACKEND",
                       "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED")
_GUARD = spies.Spy.guard  # taken before any student code runs (a cell may replace the method)


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _one_line(error: BaseException) -> str:
    message = str(error).strip().splitlines()
    first = message[0] if message else ""
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text[:300]


def _student_frame_line(error: BaseException) -> str:
    """``code cell N, line L`` of the innermost frame that belongs to a notebook cell (N counts
    the notebook's code cells from 1, as the feedback does)."""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename.startswith("<code cell "):
            where = f"{frame.filename[1:-1]}, line {frame.lineno}"
    return where


class StudentProcess:
    def __init__(self, connection: socket.socket, spy):
        self.connection = connection
        self.reader = connection.makefile("r", encoding="utf-8", newline="\n")
        self.spy = spy
        self.output = facade.CappedOutput(20000)
        self.namespace: dict = facade.namespace()
        audit.use_connection(connection.fileno())

    def send(self, message: dict) -> None:
        audit.write_line(message)

    # --- set-up, before any student code -----------------------------------------------------
    def start(self, settings: dict) -> dict:
        """Confine this process for the session described by ``settings`` (module docstring)."""
        workdir = settings["workdir"]
        libc = ctypes.CDLL(None, use_errno=True)
        # Orphans of the student's own processes (even after setsid) become this process's
        # children, so they stay in reach; the zygote ends whatever is left when it dies.
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        user = None
        if settings.get("uid") is not None and os.getuid() == 0:
            os.setgroups([])
            os.setgid(settings["gid"])
            os.setuid(settings["uid"])
            user = settings.get("user") or str(settings["uid"])
        # After setuid (which clears it): end with the zygote, whatever else happens.
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.chdir(workdir)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # C-level writes of student code go nowhere, not to the grader
            os.dup2(devnull, fd)
        os.close(devnull)
        environment = {name: os.environ[name] for name in INHERITED_VARIABLES
                       if name in os.environ}
        environment.update({"HOME": workdir, "MPLCONFIGDIR": workdir, "TMPDIR": workdir})
        os.environ.clear()
        os.environ.update(environment)
        memory = settings.get("memory_bytes")
        if memory:  # on top of what the warm interpreter already maps
            limit = _address_space_bytes() + int(memory)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (50 << 20, 50 << 20))
        processes = _process_cap(settings.get("max_processes"))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self.output = facade.CappedOutput(int(settings.get("output_bytes", 20000)))
        sys.stdout = sys.stderr = self.output
        sys.modules["otter"] = facade.otter_module()
        sys.argv = ["notebook"]
        hidden = list(settings.get("hidden") or [])
        confinement = landlock.confine(workdir, hidden) if settings.get("landlock", True) \
            else "unconfined: Landlock turned off by the grader (ADALINE_KIT_LANDLOCK=off)"
        sys.path[:] = [entry for entry in sys.path
                       if entry in landlock.python_folders() and entry not in hidden]
        if confinement.startswith("landlock"):
            # Landlock already bars this process from tracing anything outside its sandbox, so
            # it may be traced again: the grader (same user) measures its memory through /proc.
            libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
        main = types.ModuleType("__main__")  # the notebook's namespace, as in Jupyter
        main.__dict__.update(self.namespace)
        self.namespace = main.__dict__
        sys.modules["__main__"] = main
        audit.watch(int(settings.get("max_processes") or 0))
        audit.hide_grader_modules()
        return {"confinement": confinement, "user": user, "processes": processes}

    def _guarded(self, timeout: float, action):
        signal.signal(signal.SIGALRM, facade.on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(float(timeout), 0.01))
        try:
            return action()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def cell(self, request: dict) -> dict:
        index = request["index"]
        try:
            code = compile(request["source"], f"<code cell {index + 1}>", "exec")
        except SyntaxError as error:
            return {"status": "error", "error": f"SyntaxError: {error.msg} (code cell "
                                                f"{index + 1}, line {error.lineno})"}
        try:
            self._guarded(request["timeout"], lambda: exec(code, self.namespace))
        except facade.Interrupted:
            return {"status": "timeout", "error": f"code cell {index + 1} ran longer than "
                                                  f"{request['timeout']:g} s and was stopped"}
        except SystemExit as error:
            return {"status": "exit", "error": f"code cell {index + 1} called exit({error.code!r})"}
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
        except facade.Interrupted:
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

    def serve(self, settings: dict) -> None:
        try:
            started = self.start(settings)
        except Exception as error:  # noqa: BLE001 - the grader must hear why, then we end
            self.send({"pid": os.getpid(), "error": _one_line(error)})
            return
        self.send(dict(started, pid=os.getpid()))
        handlers = {"cell": self.cell, "probe": self.probe, "output": self.captured_output}
        for line in self.reader:
            request = json.loads(line)
            handler = handlers.get(request.get("op")) if isinstance(request, dict) else None
            if handler is None:
                self.send({"status": "error", "error": "unknown request",
                           "nonce": request.get("nonce") if isinstance(request, dict) else None})
                continue
            reply = handler(request)
            reply["nonce"] = request.get("nonce")
            try:
                self.send(reply)
            except (TypeError, ValueError) as error:
                self.send({"status": "error", "error": f"unusable result: {error}",
                           "nonce": request.get("nonce")})


def _process_cap(cap) -> str:
    """Limit how many processes (threads count too) this process's user may have: ``cap`` more
    than it has now. Returns what applied, for the record."""
    if not cap:
        return "no process cap"
    uid = os.getuid()
    if uid == 0:
        return "no process cap (root)"
    running = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    running += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    limit = running + int(cap)
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    return f"{int(cap)} processes"


def serve_connection(connection: socket.socket, spy, settings: dict) -> None:
    """Entry point in the forked child; never returns."""
    code = 0
    try:
        StudentProcess(connection, spy).serve(settings)
    except BaseException:  # noqa: BLE001 - the grader sees the closed socket
        code = 1
    finally:
        os._exit(code)

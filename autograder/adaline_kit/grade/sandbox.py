"""The grader's side of the sandbox: the zygote process and one connection per student process.

The grader never runs student code itself. It sends cells and probe requests to a student process
(forked by the zygote, see :mod:`adaline_kit.sandbox.zygote`) and reads back one JSON line per
request. A reply that does not arrive within its time limit plus a grace period, or a process that
dies, ends that student process; the session can start a new one.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..outcomes import ProbeFailure
from ..sandbox.zygote import children

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds adaline_kit/
GRACE_SECONDS = 2.0  # how long past its own alarm a student process may take to answer
MAX_REPLY_BYTES = 8 << 20


def hidden_paths() -> list[str]:
    """Folders student code must never read: the grading package and the folder around it
    (``source/`` of the autograder on Gradescope, the repository in a checkout)."""
    paths = [PACKAGE_ROOT / "adaline_kit"]
    if PACKAGE_ROOT.name not in ("site-packages", "dist-packages"):
        paths.append(PACKAGE_ROOT.parent)
    return [str(path) for path in paths]


# The only variables of the grader's environment the zygote (and so every student process) gets:
# no token, key or folder of the instructor's shell reaches student code.
ZYGOTE_VARIABLES = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ",
                    "LD_LIBRARY_PATH", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def zygote_environment() -> dict:
    """The zygote's environment: the allow-listed variables and what the zygote needs."""
    env = {name: os.environ[name] for name in ZYGOTE_VARIABLES if name in os.environ}
    env.update(PYTHONPATH=str(PACKAGE_ROOT), MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1")
    return env


class Zygote:
    """A warm ``adaline_kit.sandbox.zygote`` process; :meth:`connect` forks a student process.

    The zygote is reached only through a socket pair whose other end it inherits (no name in the
    file system, closed in every student process), so only this grader can ask it for anything.
    Safe to share between threads.
    """

    def __init__(self, python: str | None = None, start_timeout: float = 120.0):
        self.directory = tempfile.mkdtemp(prefix="adaline-kit-zygote-")
        os.chmod(self.directory, 0o700)
        self.control, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lock = threading.Lock()
        try:
            # -P: no working folder on sys.path; -s: no user site folder.
            self.process = subprocess.Popen(
                [python or sys.executable, "-P", "-s", "-m", "adaline_kit.sandbox.zygote",
                 str(zygote_end.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=zygote_environment(), cwd=self.directory, start_new_session=True,
                pass_fds=(zygote_end.fileno(),))
        finally:
            zygote_end.close()
        ready, _, _ = select.select([self.process.stdout], [], [], start_timeout)
        line = self.process.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            error = self.process.stderr.read().decode(errors="replace") if not ready or \
                self.process.poll() is not None else ""
            self.close()
            raise RuntimeError(f"the grading sandbox did not start: {error.strip()[-2000:]}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def connect(self, settings: dict, timeout: float = 30.0) -> "StudentConnection":
        """Fork a student process that confines itself with ``settings`` (see
        :mod:`adaline_kit.sandbox.child`) before it runs anything; return the connection."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self.lock:
                self.control.settimeout(timeout)
                socket.send_fds(self.control, [json.dumps(settings).encode()], [theirs.fileno()])
                reply = json.loads(self.control.recv(1 << 16) or b"{}")
        except (OSError, ValueError) as error:
            ours.close()
            raise ProbeFailure("crash", "the grading sandbox did not answer") from error
        finally:
            theirs.close()
        if "pid" not in reply:
            ours.close()
            raise ProbeFailure("crash", f"the grading sandbox refused: {reply.get('error')}")
        return StudentConnection(ours, int(reply["pid"]))

    def close(self) -> None:
        self.control.close()
        if self.process.poll() is None:
            self._end_student_processes()
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _end_student_processes(self, patience: float = 3.0) -> None:
        """Kill the zygote's children (student processes, adopted orphans) until none is left:
        the zygote adopts what each killed process leaves behind."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            found = children(self.process.pid)
            if not found:
                return
            for pid in found:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.05)

    def __enter__(self) -> "Zygote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StudentConnection:
    """One student process. :meth:`request` sends a message and waits for its reply.

    ``started`` is the process's first line (its confinement); ``flags`` collects the
    ``{"flag": ...}`` lines it sent (see :mod:`adaline_kit.sandbox.audit`).
    """

    def __init__(self, connection: socket.socket, pid: int):
        self.socket = connection
        self.pid = pid  # from the zygote, not from the student process
        self.buffer = b""
        self.alive = True
        self.flags: list[str] = []
        try:
            self.started = self._read_line(deadline=time.monotonic() + 30)
        except (TimeoutError, ConnectionError, OSError, ValueError) as error:
            self.kill()
            raise ProbeFailure("crash", "the student process could not be prepared") from error
        if not isinstance(self.started, dict) or self.started.get("error"):
            self.kill()
            raise ProbeFailure("crash", "the student process could not be prepared: "
                                        f"{self.started.get('error')}")

    def _read_line(self, deadline: float) -> dict:
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.socket.settimeout(remaining)
            try:
                chunk = self.socket.recv(65536)
            except socket.timeout as error:
                raise TimeoutError from error
            except OSError:
                chunk = b""
            if not chunk:
                raise ConnectionError
            self.buffer += chunk
            if len(self.buffer) > MAX_REPLY_BYTES:
                raise ConnectionError
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def request(self, op: str, timeout: float, **fields) -> dict:
        """Send ``op`` and return the reply; raise ProbeFailure on a timeout or a dead process.

        The student process applies ``timeout`` itself; the grader waits ``GRACE_SECONDS`` more,
        then ends the process. Replies must echo a fresh random nonce, so stray lines written to
        the socket by student code are skipped.
        """
        if not self.alive:
            raise ProbeFailure("crash", "the student process is no longer running")
        nonce = secrets.token_hex(8)
        message = dict(fields, op=op, nonce=nonce, timeout=timeout)
        deadline = time.monotonic() + timeout + GRACE_SECONDS
        try:
            self.socket.sendall((json.dumps(message) + "\n").encode())
            while True:
                reply = self._read_line(deadline)
                if isinstance(reply, dict) and reply.get("nonce") == nonce:
                    return reply
                if isinstance(reply, dict) and set(reply) == {"flag"} and len(self.flags) < 20:
                    self.flags.append(str(reply["flag"])[:200])
        except TimeoutError:
            self.kill()
            raise ProbeFailure("timeout", f"no answer within {timeout:g} s; the run was stopped")
        except (ConnectionError, OSError, ValueError, RecursionError):
            self.kill()
            raise ProbeFailure("crash", "the notebook's process ended unexpectedly "
                                        "(exit(), a crash or a killed process)")

    def end_processes(self) -> None:
        """Kill the student process and its process group (safe from any thread); the zygote
        ends whatever else it leaves behind."""
        for kill in (lambda: os.killpg(self.pid, signal.SIGKILL),
                     lambda: os.kill(self.pid, signal.SIGKILL)):
            try:
                kill()
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        self.alive = False
        self.end_processes()
        self.socket.close()

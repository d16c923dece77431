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


class Zygote:
    """A warm ``adaline_kit.sandbox.zygote`` process; :meth:`connect` forks a student process."""

    def __init__(self, python: str | None = None, start_timeout: float = 120.0):
        self.directory = tempfile.mkdtemp(prefix="adaline-kit-zygote-")
        os.chmod(self.directory, 0o700)
        self.socket_path = os.path.join(self.directory, "zygote.sock")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["MPLBACKEND"] = "Agg"
        env["OMP_NUM_THREADS"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.process = subprocess.Popen(
            [python or sys.executable, "-m", "adaline_kit.sandbox.zygote", self.socket_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            cwd=self.directory, start_new_session=True)
        ready, _, _ = select.select([self.process.stdout], [], [], start_timeout)
        line = self.process.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            error = self.process.stderr.read().decode(errors="replace") if not ready or \
                self.process.poll() is not None else ""
            self.close()
            raise RuntimeError(f"the grading sandbox did not start: {error.strip()[-2000:]}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def connect(self) -> "StudentConnection":
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(self.socket_path)
        return StudentConnection(connection)

    def close(self) -> None:
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
    """One student process. :meth:`request` sends a message and waits for its reply."""

    def __init__(self, connection: socket.socket):
        self.socket = connection
        self.buffer = b""
        self.alive = True
        hello = self._read_line(deadline=time.monotonic() + 30)
        self.pid = int(hello["pid"])

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
        except TimeoutError:
            self.kill()
            raise ProbeFailure("timeout", f"no answer within {timeout:g} s; the run was stopped")
        except (ConnectionError, OSError, ValueError, RecursionError):
            self.kill()
            raise ProbeFailure("crash", "the notebook's process ended unexpectedly "
                                        "(exit(), a crash or a killed process)")

    def kill(self) -> None:
        self.alive = False
        for kill in (lambda: os.killpg(self.pid, signal.SIGKILL),
                     lambda: os.kill(self.pid, signal.SIGKILL)):
            try:
                kill()
            except (ProcessLookupError, PermissionError):
                pass
        self.socket.close()

"""One submission's grading session: run its cells in a student process, then answer probes.

If a cell ends the student process (``os._exit``, a crash, a hang past its limit), the session
starts a new process and runs the cells again without that one, so the rest of the notebook still
counts. Running (and re-running) the notebook's cells has its own budget, ``submission_seconds``;
when it runs out, the cells not run yet are skipped (the report names the slowest cells) and the
questions are still checked. Each question's probes get ``question_seconds`` of their own, so
slow exploration cells never cost a question its time. Cell magics run as in Jupyter
(:mod:`.magics`).
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import tempfile
import time
from pathlib import Path

from ..assignment import current as current_assignment
from ..outcomes import ProbeFailure
from ..settings import Limits
from . import magics
from .sandbox import StudentConnection, Zygote, hidden_paths
from .watchdog import Watchdog

STUDENT_USERS = ("adaline-student", "nobody")  # who runs student code when grading as root
# ADALINE_KIT_LANDLOCK=off in the grader's environment: no Landlock (to see how grading behaves
# on a system without it; grading then refuses to run unconfined without --unsafe-unconfined).
LANDLOCK_SWITCH = "ADALINE_KIT_LANDLOCK"
MAX_RESTARTS = 6


@dataclasses.dataclass
class CellOutcome:
    index: int
    status: str  # ok, error, timeout, exit, crash, skipped
    error: str = ""


def _cell_error(index: int, source: str, error: str) -> str:
    """The student process's error for code cell ``index`` (0-based) in one numbering: the
    report already says "code cell N", so drop the process's own "code cell N" and name what
    the cell defines."""
    import ast
    import re

    error = re.sub(rf"\(code cell {index + 1}, line (\d+)\)", r"(line \1)", error)
    error = re.sub(rf"\bcode cell {index + 1}\b", "this cell", error)
    try:
        names = [node.name for node in ast.parse(source).body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    except SyntaxError:
        names = []
    return (f"the one that defines {', '.join(names[:3])}: " if names else "") + error


def _unprivileged_user() -> tuple[str | None, int | None, int | None]:
    """(name, uid, gid) of the user that runs student code; all None unless grading as root."""
    if os.getuid() != 0:
        return None, None, None
    for name in STUDENT_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return name, entry.pw_uid, entry.pw_gid
    return None, None, None


def student_user() -> str | None:
    """The name of the user that runs student code (None: the grader's own user)."""
    return _unprivileged_user()[0]


class Unconfined(BaseException):
    """Student code would run unconfined and the instructor did not allow it (a BaseException:
    no check may take it for the student's failure)."""


def describe_confinement(started: dict) -> tuple[str, bool]:
    """A one-line account of how a student process was confined, and whether it was.

    Confined means student code cannot act as the grader: it runs as another user, or Landlock
    keeps it away from the grader's files and processes (see :mod:`adaline_kit.sandbox.landlock`).
    """
    user, landlock = started.get("user"), str(started.get("confinement", ""))
    walls = ([f"user {user}"] if user else []) + ([landlock] if landlock.startswith("landlock")
                                                  else [])
    confined = bool(walls)
    text = " + ".join(walls) if walls else "unconfined (same user as the grader, " + \
        landlock.removeprefix("unconfined: ") + ")"
    if walls and not landlock.startswith("landlock"):
        text += f" (no Landlock: {landlock.removeprefix('unconfined: ')})"
    processes = started.get("processes")
    text += "; caps: " + ("rlimits + watchdog" if processes else "watchdog")
    return text, confined


def _process_settings(workdir: Path, limits: Limits) -> dict:
    """What a student process needs to confine itself (see :mod:`adaline_kit.sandbox.child`)."""
    user, uid, gid = _unprivileged_user()
    return dict(workdir=str(workdir), user=user, uid=uid, gid=gid,
                memory_bytes=limits.memory_mib << 20, output_bytes=limits.output_bytes,
                max_processes=limits.max_processes, hidden=hidden_paths(),
                landlock=os.environ.get(LANDLOCK_SWITCH, "on") != "off")


def _private_workdir(uid: int | None, gid: int | None) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="adaline-kit-submission-"))
    if uid is not None:
        os.chown(workdir, uid, gid)
    return workdir


def check_confinement(zygote: Zygote, limits: Limits) -> tuple[str, bool]:
    """How student code would be confined here (:func:`describe_confinement`), found by
    starting one student process that runs nothing."""
    _, uid, gid = _unprivileged_user()
    workdir = _private_workdir(uid, gid)
    try:
        connection = zygote.connect(_process_settings(workdir, limits))
        connection.kill()
        return describe_confinement(connection.started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class Session:
    """Grades one submission's ``cells`` within ``limits``; use as a context manager."""

    def __init__(self, zygote: Zygote, cells: list[str], limits: Limits, data_file: Path,
                 allow_unconfined: bool = False):
        self.zygote = zygote
        self.cells = [magics.expand(cell) for cell in cells]
        self.cell_seconds: dict[int, float] = {}  # how long each cell ran (its last run)
        self.limits = limits
        self.deadline = time.monotonic() + limits.submission_seconds
        self.user, self.uid, self.gid = _unprivileged_user()
        self.allow_unconfined = allow_unconfined
        self.data_file = data_file
        self.data_name = current_assignment().DATA_FILE  # where the notebook reads it
        self.workdir = _private_workdir(self.uid, self.gid)
        self._reset_workdir()
        self.connection: StudentConnection | None = None
        self.skipped: set[int] = set()
        self.cell_outcomes: dict[int, CellOutcome] = {}
        self.restarts = 0
        self.question_deadlines: dict[str, float] = {}
        self.printed = ""
        self.confinement = ""  # how the student process was confined (describe_confinement)
        self.flags: list[str] = []  # what student code did to the grader (see sandbox.audit)
        self.watchdog: Watchdog | None = None  # caps on all the current process's processes

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.connection is not None and self.connection.alive:
            try:
                self.printed = self.connection.request("output", 5).get("text", "")
            except ProbeFailure:
                pass
            self.connection.kill()
        self._stop_watchdog()
        self._collect_flags()
        for _ in range(20):  # a process being killed may still be writing into the folder
            shutil.rmtree(self.workdir, ignore_errors=True)
            if not self.workdir.exists():
                break
            time.sleep(0.05)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    # --- running the notebook -----------------------------------------------------------------
    def _stop_watchdog(self) -> None:
        if self.watchdog is not None:
            self.watchdog.__exit__(None, None, None)

    def _request(self, op: str, timeout: float, **fields) -> dict:
        """``connection.request``, with the watchdog's reason when it ended the processes."""
        try:
            return self.connection.request(op, timeout, **fields)
        except ProbeFailure as failure:
            reason = self.watchdog.reason if self.watchdog is not None else ""
            if reason:
                raise ProbeFailure("memory" if "memory" in reason else "crash",
                                   reason) from failure
            raise

    def _collect_flags(self) -> None:
        if self.connection is not None:
            for flag in self.connection.flags:
                if flag not in self.flags:
                    self.flags.append(flag)

    def _reset_workdir(self) -> None:
        """Give a restarted process the folder the first one got: only the data (what the
        cells wrote is written again as they re-run; files past the disk cap are gone)."""
        for entry in self.workdir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        folders = [self.workdir / p for p in reversed(Path(self.data_name).parents)
                   if p != Path(".")]
        for folder in folders:
            folder.mkdir()
        shutil.copyfile(self.data_file, self.workdir / self.data_name)
        if self.uid is not None:
            for path in (*folders, self.workdir / self.data_name):
                os.chown(path, self.uid, self.gid)

    def _start_process(self) -> StudentConnection:
        self._stop_watchdog()
        self._collect_flags()
        if self.connection is not None:  # a restart
            self._reset_workdir()
        connection = self.zygote.connect(_process_settings(self.workdir, self.limits))
        self.confinement, confined = describe_confinement(connection.started)
        if not confined and not self.allow_unconfined:
            connection.kill()
            raise Unconfined(f"student code would run {self.confinement}; refusing to grade "
                             "(--unsafe-unconfined grades anyway)")
        self.watchdog = Watchdog(connection.pid, self.workdir, self.limits.memory_mib << 20,
                                 self.limits.disk_mib << 20, connection.end_processes,
                                 self.limits.max_processes)
        self.watchdog.__enter__()
        return connection

    def _run_cells(self) -> None:
        """Run every cell not skipped; a cell that ends the process is skipped from then on."""
        while True:
            if self.restarts > MAX_RESTARTS:
                raise ProbeFailure("crash", f"not graded: the notebook's process ended "
                                            f"{MAX_RESTARTS + 1} times ({MAX_RESTARTS} restarts "
                                            "are allowed), so grading stopped")
            self.connection = self._start_process()
            for index, source in enumerate(self.cells):
                if index in self.skipped:
                    continue
                timeout = min(self.limits.cell_seconds, self.remaining())
                if timeout <= 0 and index in self.cell_seconds \
                        and index not in self.cell_outcomes:
                    # A cell that already ran cleanly is re-run after a restart even past the
                    # budget (else a late crash would undo the whole notebook), within a second
                    # budget of the same size.
                    timeout = min(self.limits.cell_seconds,
                                  self.remaining() + self.limits.submission_seconds)
                if timeout <= 0:
                    self._skip_rest(index)
                    return
                started = time.monotonic()
                try:
                    reply = self._request("cell", timeout, index=index, source=source)
                except ProbeFailure as failure:
                    self.cell_seconds[index] = time.monotonic() - started
                    self.skipped.add(index)
                    self.cell_outcomes.setdefault(index, CellOutcome(
                        index, "timeout" if failure.kind == "timeout" else "crash",
                        _cell_error(index, source, failure.message)))
                    self.restarts += 1
                    break
                self.cell_seconds[index] = time.monotonic() - started
                if reply.get("status") == "timeout":
                    self.skipped.add(index)  # a rerun after a restart would only time out again
                if reply.get("status") != "ok":
                    self.cell_outcomes.setdefault(index, CellOutcome(
                        index, str(reply.get("status")),
                        _cell_error(index, source, str(reply.get("error", ""))[:500])))
            else:
                return

    def _skip_rest(self, first: int) -> None:
        """The notebook's time budget is used up: cells from ``first`` on are not run."""
        slowest = sorted(self.cell_seconds.items(), key=lambda item: -item[1])[:3]
        named = ", ".join(f"code cell {i + 1} ({seconds:.0f} s)" for i, seconds in slowest)
        reason = (f"not run: the notebook's cells used up their {self.limits.submission_seconds:g} s"
                  + (f"; the slowest were {named}" if named else ""))
        for index in range(first, len(self.cells)):
            if index not in self.skipped:
                self.skipped.add(index)
                self.cell_outcomes.setdefault(index, CellOutcome(index, "skipped", reason))

    def ensure_running(self) -> StudentConnection:
        if self.connection is None or not self.connection.alive:
            if self.connection is not None:
                self.restarts += 1
            self._run_cells()
        return self.connection

    # --- probes -------------------------------------------------------------------------------
    def probe(self, name: str, args: dict) -> dict:
        """Run probe ``name`` in the student process; return its data or raise ProbeFailure."""
        question = name.split("_", 1)[0]
        if self.question_deadlines.get(question, float("inf")) <= time.monotonic():
            raise ProbeFailure("timeout", f"{question}'s checks ran longer than "
                                          f"{self.limits.question_seconds:g} s")
        started = time.monotonic()
        connection = self.ensure_running()
        if question in self.question_deadlines:  # the notebook's (re)run is not the question's
            self.question_deadlines[question] += time.monotonic() - started
        else:
            self.question_deadlines[question] = time.monotonic() + self.limits.question_seconds
        timeout = self.question_deadlines[question] - time.monotonic()
        if timeout <= 0:
            raise ProbeFailure("timeout", f"{question}'s checks ran longer than "
                                          f"{self.limits.question_seconds:g} s")
        reply = self._request("probe", timeout, name=name, args=args)
        status = reply.get("status")
        if status == "ok" and isinstance(reply.get("data"), dict):
            return reply["data"]
        if status == "timeout":
            raise ProbeFailure("timeout", f"{question}: the code ran longer than {timeout:.3g} s "
                                          "and was stopped (an endless loop?)")
        error = str(reply.get("error", "unknown error"))[:500]
        if "MemoryError" in error or "can't allocate memory" in error:
            raise ProbeFailure("memory", f"the memory limit ({self.limits.memory_mib} MiB) "
                                         f"was reached: {error}")
        raise ProbeFailure("error", error)

"""Grade a whole class on this machine: find the submissions, grade them in parallel, resume.

:func:`discover` turns the paths an instructor gives (notebooks, folders of notebooks, zips from
``grader.export()``, Gradescope "Export Submissions" folders) into :class:`Job` records, each
with a stable ``key`` that names its results folder ``OUT/<key>/``.

:func:`grade_all` grades the jobs with a pool of worker threads that share ONE warm
:class:`~adaline_kit.grade.sandbox.Zygote`: every submission still runs in a student process of
its own (forked from the zygote), but no submission pays for a fresh interpreter or a torch
import. Each finished submission is staged in ``OUT/.partial/`` and moved into place with one
rename, ``record.json`` last inside it, so an interrupted run loses nothing that had finished
and never leaves a half-written result that looks complete.

Resume: ``OUT/<key>/record.json`` stores the autograder's :func:`fingerprint` and the sha256 of
the graded file; a later run skips a submission whose record matches (unless ``force``). Results
with status ``error`` (a fault of the grader, possibly transient) are always graded again.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
import uuid
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Sequence

from . import gradescope_export
from .submission import SUBMISSION_SUFFIXES, find_submission

RECORD_FILE = "record.json"
RESULTS_FILE = "results.json"
STAGING_DIR = ".partial"
RECORD_FORMAT = 1
SKIPPED_DIRS = ("__MACOSX", ".ipynb_checkpoints", "__pycache__")
# Names at the top of OUT that a results folder must not take.
RESERVED_KEYS = {"grades.csv", "feedback.zip", "summary.png", "stats.csv", "overrides.csv",
                 "similarity.html", "similarity.csv", "class.json", STAGING_DIR}
# Package files that do not decide a submission's results (packaging, this batch front end,
# other entry points); every other file of the package is part of the fingerprint.
NOT_GRADING = ("build/", "validate/", "cli.py", "gradescope.py", "otter_plugin.py",
               "otter_tests.py", "grade/batch.py", "grade/command.py", "grade/gradebook.py",
               "grade/reports.py", "grade/gradescope_export.py", "grade/emulation.py",
               "grade/classbook.py", "grade/overrides.py", "grade/stats.py", "grade/lock.py",
               "export/", "similarity/")
FINGERPRINT_DISTRIBUTIONS = ("torch", "numpy")


class BatchError(Exception):
    """A problem with what the instructor asked for (paths, output folder); one line."""


# --- discovery -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Job:
    """One submission to grade. ``path`` is the notebook or zip (None if there is none, then
    ``problem`` says why); ``source`` is what it was found from."""

    key: str
    path: Path | None
    source: Path
    student: str = ""
    submitters: tuple = ()
    problem: str | None = None
    submitted_at: str = ""
    due: str = ""


def _slug(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return text[:100] or "submission"


def _key_for(relative: Path) -> str:
    """``alice/work.ipynb`` -> ``alice__work``; other suffixes stay."""
    parts = list(relative.parts)
    if parts and parts[-1].endswith(".ipynb"):
        parts[-1] = parts[-1][: -len(".ipynb")]
    return _slug("__".join(parts))


def _skipped(path: Path, out: Path | None) -> bool:
    if path.name.startswith(".") or path.name in SKIPPED_DIRS:
        return True
    return out is not None and path.resolve() == out


def _export_jobs(folder: Path, prefix: Path | None) -> list[Job]:
    jobs = []
    try:
        entries = gradescope_export.read_export(folder)
    except gradescope_export.ExportError as error:
        raise BatchError(str(error)) from None
    for entry in entries:
        jobs.append(_entry_job(entry, _key_for(prefix / entry.name if prefix else Path(entry.name))))
    return jobs


def _entry_job(entry: gradescope_export.ExportedSubmission, key: str) -> Job:
    path, problem = None, None
    if not entry.folder.is_dir():
        problem = "the export lists this submission but its folder is missing"
    else:
        path = find_submission(entry.folder)
        if path is None:
            problem = "no notebook (.ipynb) or export zip was found in the submission"
    return Job(key, path, entry.folder, entry.student(), entry.submitters, problem,
               entry.submitted_at, entry.due)


def _export_member_job(given: Path) -> Job | None:
    """A job for one submission folder of an export (or a file in one), with the students and
    the time the export's metadata gives; None if ``given`` is not inside an export."""
    folder = given if given.is_dir() else given.parent
    found = gradescope_export.export_of(folder)
    if found is None:
        return None
    _, entry = found
    job = _entry_job(entry, _key_for(Path(entry.name)))
    if given.is_file():
        job.path, job.problem = given, None
    return job


def _folder_jobs(root: Path, out: Path | None) -> list[Job]:
    """Every notebook and zip under ``root``; Gradescope exports inside it are read as such."""
    if gradescope_export.is_export(root):
        return _export_jobs(root, None)
    jobs = []
    for directory, subdirs, files in os.walk(root):
        here = Path(directory)
        subdirs[:] = sorted(d for d in subdirs if not _skipped(here / d, out))
        relative = here.relative_to(root)
        if here != root and gradescope_export.is_export(here):
            jobs += _export_jobs(here, relative)
            subdirs[:] = []
            continue
        for name in sorted(files):
            path = here / name
            if path.suffix.lower() in SUBMISSION_SUFFIXES and not _skipped(path, out):
                jobs.append(Job(_key_for(relative / name), path, path))
    return jobs


def _refuse_export_zip(path: Path) -> None:
    """A zipped Gradescope export is many submissions, not one: ask for it unzipped."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return
    if any(Path(name).name == gradescope_export.METADATA_FILE for name in names):
        raise BatchError(f"{path} is a zipped Gradescope export: unzip it and give the folder")


def discover(paths: Sequence[Path], out: Path | None = None) -> list[Job]:
    """Jobs for ``paths``, sorted by key, each file once; BatchError for a missing path.

    A file named on the command line is graded whatever its suffix (an unreadable one becomes an
    ``invalid`` result); inside folders only ``.ipynb`` and ``.zip`` files count. ``out`` (the
    output folder) is never searched.
    """
    out = out.resolve() if out is not None else None
    jobs: list[Job] = []
    for given in paths:
        given = Path(given)
        if not given.exists():
            raise BatchError(f"no such file or folder: {given}")
        member = _export_member_job(given)
        if member is not None:
            jobs.append(member)
        elif given.is_dir():
            jobs += _folder_jobs(given, out)
        else:
            jobs.append(Job(_key_for(Path(given.name)), given, given))
    for job in jobs:
        if job.path is not None and job.path.suffix.lower() == ".zip":
            _refuse_export_zip(job.path)
    unique: dict[str, Job] = {}
    for job in jobs:  # the same file reached twice (a folder and a file in it) is graded once
        identity = str((job.path or job.source).resolve())
        unique.setdefault(identity, job)
    jobs = list(unique.values())
    _disambiguate(jobs)
    if out is not None:
        adopt_keys(jobs, out)
    return sorted(jobs, key=lambda j: j.key)


def _identity(path) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError, TypeError):
        return ""


def adopt_keys(jobs: list[Job], out: Path) -> None:
    """A job whose file was graded into ``out`` before under another key (the export given
    whole then, one of its folders now) takes that key, so a regrade replaces its row."""
    if not out.is_dir():
        return
    known = {}
    for record in collect(out):
        identity = _identity(record.get("source", ""))
        if identity:
            known.setdefault(identity, record["key"])
    taken = {job.key for job in jobs}
    for job in jobs:
        key = known.get(_identity(job.path or job.source))
        if key and key != job.key and key not in taken:
            taken.discard(job.key)
            job.key = key
            taken.add(key)


def matches(job: Job, wanted: str) -> bool:
    """``wanted`` (``--only``) names this submission: its key, or a submitter's SID, email or
    name (case-insensitive)."""
    wanted = wanted.strip().casefold()
    values = [job.key] + [value for s in job.submitters for value in (s.sid, s.email, s.name)]
    return any(value and value.casefold() == wanted for value in values)


def _disambiguate(jobs: list[Job]) -> None:
    """Give keys that collide (or take a reserved name) a suffix from the file's location."""
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.key.lower()] = counts.get(job.key.lower(), 0) + 1
    for job in jobs:
        if counts[job.key.lower()] > 1 or job.key.lower() in RESERVED_KEYS:
            where = str((job.path or job.source).resolve())
            job.key = f"{job.key}-{hashlib.sha1(where.encode()).hexdigest()[:8]}"


# --- fingerprints --------------------------------------------------------------------------------

def _package_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def fingerprint(data_file: str | None = None) -> str:
    """sha256 over what decides a result: the grading package's files (grading.toml among them),
    the data file and the versions of Python, torch and numpy. The assignment's validation corpus
    is no part of grading."""
    from .. import settings as settings_module
    from ..assignment import current
    from ..build import paths

    package = _package_dir()
    digest = hashlib.sha256(f"adaline-kit-fingerprint {RECORD_FORMAT}\n".encode())
    corpus = Path(current().CORPUS).resolve()
    files = sorted(p for p in package.rglob("*") if p.is_file()
                   and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
                   and not p.resolve().is_relative_to(corpus))
    for path in files:
        name = path.relative_to(package).as_posix()
        if name.startswith(NOT_GRADING):
            continue
        digest.update(f"file {name} {path.stat().st_size}\n".encode())
        digest.update(path.read_bytes())
    settings_file = Path(settings_module.SETTINGS_FILE)
    digest.update(b"settings\n" + settings_file.read_bytes())
    digest.update(b"data\n" + Path(data_file or paths.DATA_FILE).read_bytes())
    digest.update(f"python {sys.version_info[:3]}\n".encode())
    for name in FINGERPRINT_DISTRIBUTIONS:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{name} {version}\n".encode())
    return digest.hexdigest()


def file_sha256(path: Path | None) -> str:
    if path is None:
        return ""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


# --- records -------------------------------------------------------------------------------------

def read_record(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None


def is_current(record: dict | None, folder: Path, autograder: str, submission_sha: str,
               seed: int | None) -> bool:
    """True if ``record`` is a finished result of this autograder for these file contents."""
    return (record is not None
            and record.get("autograder") == autograder
            and record.get("submission_sha256") == submission_sha
            and record.get("status") in ("graded", "flagged", "invalid")
            and (seed is None or record.get("seed") == seed)
            and (folder / RESULTS_FILE).is_file())


def identity_fields(job: Job) -> dict:
    """Who submitted and when, as the record keeps it (refreshed on every run: the export's
    metadata may have been corrected since)."""
    return {"student": job.student,
            "submitters": [dataclasses.asdict(s) for s in job.submitters],
            "submitted_at": job.submitted_at,
            "due": job.due}


def collect(out: Path) -> list[dict]:
    """Every finished record in ``out`` (one per results folder), sorted by key."""
    found = []
    for folder in sorted(out.iterdir()) if out.is_dir() else []:
        if folder.is_dir() and not folder.name.startswith("."):
            record = read_record(folder)
            if record is not None and record.get("key") == folder.name:
                found.append(record)
    return found


def make_record(job: Job, report, autograder: str, submission_sha: str, seconds: float,
                run_id: str) -> dict:
    return {
        "format": RECORD_FORMAT,
        "key": job.key,
        "source": _identity(job.path or job.source) or str(job.path or job.source),
        **identity_fields(job),
        "status": report.status,
        "message": report.message,
        "total": report.total,
        "max_total": report.max_total,
        "questions": {q: {"score": r.score, "max_score": r.max_score, "status": r.status,
                          "diagnoses": list(r.diagnoses)}
                      for q, r in report.questions.items()},
        "seed": report.seed,
        "confinement": report.confinement,
        "flags": list(report.flags),
        "execution_seconds": round(report.execution_seconds, 3),
        "seconds": round(seconds, 3),
        "autograder": autograder,
        "submission_sha256": submission_sha,
        "graded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "run_id": run_id,
    }


def write_json_atomically(path: Path, value) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(json.dumps(value, indent=2))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def commit(staging: Path, target: Path) -> None:
    """Replace ``target`` with the complete folder ``staging`` (a rename on the same disk)."""
    if target.exists():
        trash = staging.parent / f"{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(target, trash)
        os.rename(staging, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(staging, target)


# --- the grading pool ----------------------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    """What happened to one job: its record (as written or found) and whether it was graded now."""

    job: Job
    record: dict
    graded_now: bool


# Runs beside the zygote: if the grading process ends without saying "done" (killed outright),
# it ends the zygote and the student processes the zygote forked (each leads its own group).
_WATCHDOG = """
import os, signal, sys
zygote = int(sys.argv[1])
if sys.stdin.readline().strip() != "done":
    students = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError, ValueError):
            continue
        if entry.isdigit() and int(fields[1]) == zygote:
            students.append(int(entry))
    for group in [zygote] + students:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
"""


class SharedZygote:
    """One zygote for all workers, restarted if it dies; a watchdog process ends it even if this
    process is killed outright (SIGKILL leaves no chance to clean up)."""

    def __init__(self):
        from .sandbox import Zygote

        self._factory = Zygote
        self._lock = threading.Lock()
        self.generation = 0
        self.zygote = None
        self.watchdog = None
        self._start()

    def _start(self) -> None:
        self.zygote = self._factory()
        self.generation += 1
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.zygote.process.pid)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def _stop(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
        if self.watchdog is not None:
            try:
                self.watchdog.stdin.write(b"done\n")
                self.watchdog.stdin.close()
            except OSError:
                pass
            try:
                self.watchdog.wait(5)
            except subprocess.TimeoutExpired:
                self.watchdog.kill()

    def current(self):
        return self.zygote, self.generation

    def alive(self) -> bool:
        return self.zygote.process.poll() is None

    def restart_if_dead(self, generation: int) -> None:
        """Start a new zygote if generation ``generation`` died (once, whichever worker asks)."""
        with self._lock:
            if generation == self.generation and not self.alive():
                self._stop()
                self._start()

    def close(self) -> None:
        with self._lock:
            self._stop()


class Grader:
    """Grades jobs into ``out``; shared by the worker threads."""

    def __init__(self, out: Path, settings, data, data_file: Path, seed: int | None,
                 autograder: str, zygote: SharedZygote, stop: threading.Event,
                 allow_unconfined: bool = False):
        self.out = out
        self.allow_unconfined = allow_unconfined
        self.settings = settings
        self.data = data
        self.data_file = data_file
        self.seed = seed
        self.autograder = autograder
        self.zygote = zygote
        self.stop = stop
        self.run_id = uuid.uuid4().hex  # marks what this run graded (as opposed to found)

    def _report(self, job: Job):
        from .runner import grade_submission, unusable_message, zero_report

        if job.path is None:
            return zero_report(job.key, self.settings, "invalid", unusable_message(job.problem),
                               seed=self.seed or 0)
        for attempt in range(2):
            zygote, generation = self.zygote.current()
            report = grade_submission(job.path, zygote, self.settings, self.data, self.data_file,
                                      self.seed, self.allow_unconfined)
            # A zygote that died (killed by student code running as the same user, or by the
            # OOM killer) leaves an error report: grade once more with a fresh zygote.
            if zygote.process.poll() is None or attempt or self.stop.is_set():
                return report  # (a stopped run closed the zygote itself: start no other)
            self.zygote.restart_if_dead(generation)
        return report

    def _error_report(self, job: Job, error: BaseException):
        from .runner import grader_failure_message, zero_report

        return zero_report(job.key, self.settings, "error", grader_failure_message(error),
                           seed=self.seed or 0)

    def grade(self, job: Job, submission_sha: str) -> Outcome | None:
        """Grade ``job`` and commit its folder; None if the run was stopped meanwhile."""
        from . import reports

        started = time.monotonic()
        try:
            report = self._report(job)
        except Exception as error:  # noqa: BLE001 - grade_submission should never raise
            report = self._error_report(job, error)
        if self.stop.is_set():
            return None  # possibly cut short by the interruption: leave it for the next run
        staging = self.out / STAGING_DIR / f"{job.key}-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            try:
                reports.write_submission_files(staging, job, report, self.settings)
            except Exception as error:  # noqa: BLE001 - still record the submission
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                report = self._error_report(job, error)
                reports.write_submission_files(staging, job, report, self.settings, plots=False)
            record = make_record(job, report, self.autograder, submission_sha,
                                 time.monotonic() - started, self.run_id)
            (staging / RECORD_FILE).write_text(json.dumps(record, indent=2))
            if self.stop.is_set():
                return None
            commit(staging, self.out / job.key)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Outcome(job, record, True)


ProgressCallback = Callable[[Outcome], None]


def plan(jobs: Iterable[Job], out: Path, autograder: str, force: bool,
         seed: int | None) -> tuple[list[tuple[Job, str]], list[Outcome]]:
    """Split jobs into (to grade, with their file's sha256) and already finished outcomes."""
    todo, done = [], []
    for job in jobs:
        sha = file_sha256(job.path)
        folder = out / job.key
        record = read_record(folder)
        if not force and is_current(record, folder, autograder, sha, seed):
            fresh = identity_fields(job)  # the metadata may have been corrected since
            if any(record.get(name) != value for name, value in fresh.items()):
                record.update(fresh)
                write_json_atomically(folder / RECORD_FILE, record)
            done.append(Outcome(job, record, False))
        else:
            todo.append((job, sha))
    return todo, done


def start_sandbox(allow_unconfined: bool = False) -> SharedZygote:
    """Start the zygote and make sure student code will be confined here.

    Raises BatchError (one line) when the sandbox cannot start, or when student code could not
    be confined (see :func:`adaline_kit.grade.session.check_confinement`) and
    ``allow_unconfined`` is false.
    """
    from .. import settings as settings_module
    from .session import check_confinement

    try:
        zygote = SharedZygote()
    except RuntimeError as error:
        raise BatchError(str(error).splitlines()[0]) from None
    confinement, confined = check_confinement(zygote.current()[0],
                                              settings_module.load().limits)
    if not confined and not allow_unconfined:
        zygote.close()
        raise BatchError(f"refusing to grade: student code would run {confinement}; it could "
                         "act as you (read your files, change other results). Grade as root, "
                         "or on Linux 5.13+ with Landlock, or pass --unsafe-unconfined.")
    return zygote


def grade_all(todo: list[tuple[Job, str]], out: Path, workers: int, seed: int | None,
              autograder: str, on_result: ProgressCallback | None = None,
              data_file: Path | None = None, allow_unconfined: bool = False,
              sandbox: SharedZygote | None = None) -> list[Outcome]:
    """Grade ``todo`` with ``workers`` threads sharing one zygote; return the outcomes.

    ``sandbox``: a zygote from :func:`start_sandbox` (else one is started, and BatchError
    raised as there); it is closed at the end.

    ``on_result`` is called in this (the calling) thread after each submission. Interrupting
    (KeyboardInterrupt) stops at once: finished results are on disk, unfinished ones are not.
    """
    from .. import settings as settings_module
    from ..assignment import current
    from ..build import paths

    if not todo:
        return []
    data_file = Path(data_file or paths.DATA_FILE)
    settings = settings_module.load()
    data = current().load_data(data_file)  # once, shared by every submission
    stop = threading.Event()
    zygote = sandbox or start_sandbox(allow_unconfined)
    grader = Grader(out, settings, data, data_file, seed, autograder, zygote, stop,
                    allow_unconfined)
    jobs: queue.Queue = queue.Queue()
    for item in todo:
        jobs.put(item)
    finished: queue.Queue = queue.Queue()

    def work() -> None:
        while not stop.is_set():
            try:
                job, sha = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                outcome = grader.grade(job, sha)
            except BaseException as error:  # noqa: BLE001 - e.g. the disk is full
                outcome = error
            finished.put((job, outcome))

    # Daemon threads: an interrupt ends the run at once instead of waiting for busy workers.
    threads = [threading.Thread(target=work, name=f"grade-{i}", daemon=True)
               for i in range(max(1, min(workers, len(todo))))]
    outcomes: list[Outcome] = []
    try:
        for thread in threads:
            thread.start()
        for _ in range(len(todo)):
            while True:
                try:
                    job, outcome = finished.get(timeout=0.25)
                    break
                except queue.Empty:
                    if not any(t.is_alive() for t in threads) and finished.empty():
                        raise RuntimeError("the grading workers stopped unexpectedly")
            if isinstance(outcome, BaseException):
                detail = "".join(traceback.format_exception_only(type(outcome), outcome))
                raise BatchError(f"could not write the results of {job.key}: {detail.strip()}")
            if outcome is None:
                continue
            outcomes.append(outcome)
            if on_result is not None:
                on_result(outcome)
    finally:
        stop.set()
        zygote.close()
    return outcomes


def clean_staging(out: Path) -> None:
    """Remove what an interrupted run left half-written (and the empty staging folder)."""
    shutil.rmtree(out / STAGING_DIR, ignore_errors=True)

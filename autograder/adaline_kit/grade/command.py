"""``adaline-kit grade PATH... -o OUT``: grade a whole class on this machine.

Registered on the ``adaline-kit`` group in :mod:`adaline_kit.cli`. The heavy imports (torch, the
sandbox) happen only once the arguments have been checked, so mistakes are reported at once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click


def _user_error(message: str) -> click.ClickException:
    from ..cli import KitError  # imported here: cli.py imports this module

    return KitError(message)


def _progress(total: int, skipped: int):
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                               SpinnerColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.2f} sub/s" if speed else "-.-- sub/s",
                        style="progress.data.speed")

    console = Console(stderr=True)
    progress = Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"),
                        BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(),
                        TextColumn("left"), TimeRemainingColumn(), console=console)
    note = f" ({skipped} already graded, skipped)" if skipped else ""
    task = progress.add_task(f"Grading{note}", total=total)
    return progress, task


def _out_folder(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _user_error(f"cannot create the output folder {out}: {error.strerror}") from None
    if not os.access(out, os.W_OK):
        raise _user_error(f"the output folder {out} is not writable")
    return out


def _due_option(value: str | None) -> str | None:
    from .gradescope_export import parse_time

    if value is None:
        return None
    moment = parse_time(value)
    if moment is None:
        raise _user_error(f"--due {value!r} is not a date and time (for example "
                          "2026-03-01T23:59-08:00; without an offset it is UTC)")
    return moment.isoformat()


def _select(found: list, only: tuple[str, ...]) -> list:
    """The jobs ``--only`` names (by submission, SID, email or name); all if none given."""
    from . import batch

    if not only:
        return found
    chosen = [job for job in found if any(batch.matches(job, wanted) for wanted in only)]
    missing = [w for w in only if not any(batch.matches(job, w) for job in found)]
    if missing:
        raise _user_error(f"--only {missing[0]!r} matches no submission (give a submission "
                          "folder name, or a student's SID, email or full name)")
    return chosen


@click.command("grade")
@click.argument("paths", nargs=-1, required=False, metavar="[PATH]...",
                type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="The class folder: grades.csv, stats.csv, feedback.zip, summary.png and a "
                   "folder per submission.")
@click.option("-j", "--jobs", type=click.IntRange(min=1, max=256), default=None,
              help="Submissions graded at once (default: the number of CPUs).")
@click.option("--force", is_flag=True,
              help="Grade again even submissions already graded by this same autograder.")
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=None,
              help="Seed of the hidden checks' random inputs (default: a fresh one each).")
@click.option("--only", multiple=True, metavar="WHO",
              help="Grade only this submission (folder name) or student (SID, email or full "
                   "name); repeatable. The rest of the class folder is kept.")
@click.option("--due", default=None, metavar="TIME",
              help="Due date for the late column, ISO 8601 (e.g. 2026-03-01T23:59-08:00); kept "
                   "in OUT/class.json for later runs. Default: the export's, if it has one.")
@click.option("--unsafe-unconfined", is_flag=True,
              help="Grade even where student code cannot be confined (no separate user, no "
                   "Landlock): it then runs as you, with your rights. Unsafe.")
def grade(paths: tuple[Path, ...], out: Path, jobs: int | None, force: bool,
          seed: int | None, only: tuple[str, ...], due: str | None,
          unsafe_unconfined: bool) -> None:
    """Grade every submission in PATH... into the class folder OUT.

    PATH may be a notebook, a zip made by otter's grader.export(), a folder of those (searched
    recursively), a Gradescope "Export Submissions" folder or one submission folder of it (its
    submission_metadata.yml gives the students' names, emails, SIDs and submission times).
    Results already in OUT from this same autograder and the same file are kept (rerunning
    resumes an interrupted run); --force grades them again. Grading some submissions keeps
    every other one in OUT: grades.csv, stats.csv, feedback.zip and summary.png are rebuilt
    from all of them, with OUT/overrides.csv applied. Without PATH, only that rebuild is done.
    """
    from . import batch, classbook, lock, overrides
    from ..assignment import check_built

    check_built()  # one line, status 2, if grading.toml changed since the last build
    for path in paths:
        if not path.exists():
            raise _user_error(f"no such file or folder: {path}")
    if out.exists() and not out.is_dir():
        raise _user_error(f"the output path {out} is a file, not a folder")
    due = _due_option(due)
    found = []
    if paths:
        try:
            found = _select(batch.discover(paths, out), only)
        except batch.BatchError as error:
            raise _user_error(str(error)) from None
        if not found:
            raise _user_error("no submissions (.ipynb notebooks or .zip exports) were found in "
                              + ", ".join(str(p) for p in paths))
    elif only:
        raise _user_error("--only needs the PATH of the submissions to choose from")
    elif not out.is_dir():
        raise _user_error(f"no such class folder: {out} (give the submissions to grade)")
    out = _out_folder(out)
    try:
        with lock.hold(out):
            if due is not None:
                classbook.save_settings(out, due=due)
            malformed = classbook.load(out).malformed
            if malformed:  # a broken overrides.csv stops here, before any grading
                raise overrides.OverrideError(malformed)
            _grade_into(found, out, jobs, force, seed, unsafe_unconfined)
    except lock.FolderBusy as error:
        raise _user_error(str(error)) from None
    except overrides.OverrideError as error:
        from ..cli import ProblemsError

        raise ProblemsError(error.problems) from None


def stopped_message(graded: int, todo: int, finished: int, found: int, force: bool) -> str:
    """The one line printed when a run is interrupted: ``graded`` of the ``todo`` submissions
    this run was to grade got a result; ``finished`` of all ``found`` have a current one."""
    if not force:
        return (f"Stopped: {finished} of {found} submissions are done; run the same command "
                "again to grade the rest.")
    return (f"Stopped: this run graded {graded} of the {todo} submissions it was to grade "
            f"({todo - graded} left); the same command with --force would grade all {todo} "
            "again: drop --force to keep what is done and grade only the submissions without "
            "a current result.")


def _warn_unreadable_python() -> None:
    """One line on stderr when student code will run as a user who cannot read this Python."""
    from .emulation import unreadable_python_warning
    from .session import student_user

    warning = unreadable_python_warning(student_user())
    if warning:
        click.echo(warning, err=True)


def _grade_into(found: list, out: Path, jobs: int | None, force: bool,
                seed: int | None, unsafe_unconfined: bool = False) -> None:
    """Grade ``found`` into ``out`` (its lock held), then rebuild the class files."""
    from . import batch, classbook, gradebook

    batch.clean_staging(out)
    autograder = batch.fingerprint()
    todo, done = batch.plan(found, out, autograder, force, seed)
    workers = jobs or os.cpu_count() or 1
    started = time.monotonic()
    last_write = [started]

    def save_gradebook() -> None:
        book = classbook.load(out)
        if not book.malformed:  # overrides.csv edited into a bad state mid-run: the end says so
            gradebook.write(out / "grades.csv", book.records, book.due)

    try:
        sandbox = batch.start_sandbox(unsafe_unconfined) if todo else None
    except batch.BatchError as error:
        raise _user_error(str(error)) from None
    if sandbox is not None:
        _warn_unreadable_python()
    progress, task = _progress(len(todo), len(done))

    def on_result(outcome) -> None:
        if outcome.record["status"] == "error":
            progress.console.print(f"[red]error[/red] {outcome.job.key}: "
                                   f"{outcome.record['message']}", markup=True, highlight=False)
        progress.advance(task)
        if time.monotonic() - last_write[0] > 2.0:  # an interrupted run keeps a current gradebook
            save_gradebook()
            last_write[0] = time.monotonic()

    # Each record names the run that wrote it: what this run graded is told apart on disk.
    earlier = {job.key: (batch.read_record(out / job.key) or {}).get("run_id")
               for job, _ in todo}
    graded = 0
    try:
        if todo:
            with progress:
                graded = len(batch.grade_all(todo, out, workers, seed, autograder, on_result,
                                             allow_unconfined=unsafe_unconfined,
                                             sandbox=sandbox))
    except batch.BatchError as error:
        save_gradebook()
        raise _user_error(str(error)) from None
    except KeyboardInterrupt:
        save_gradebook()
        finished = batch.plan(found, out, autograder, False, seed)[1]
        now = sum(1 for outcome in finished if outcome.job.key in earlier
                  and outcome.record.get("run_id") != earlier[outcome.job.key])
        click.echo(stopped_message(now, len(todo), len(finished), len(found), force), err=True)
        raise
    batch.clean_staging(out)
    book, summary = classbook.rebuild(out)
    elapsed = time.monotonic() - started
    rate = f", {graded / elapsed:.2f} submissions/s" if graded and elapsed > 0 else ""
    click.echo(f"Graded {graded}, skipped {len(done)} already graded "
               f"({elapsed:.1f} s, {workers} worker(s){rate}); the class folder holds "
               f"{len(book.records)}.")
    click.echo(summary.line())
    click.echo("Wrote " + ", ".join(str(out / name) for name in classbook.CLASS_FILES))
    for problem in book.unmatched:
        click.echo(f"Warning: {problem}", err=True)
    if book.unmatched:
        click.echo(f"{len(book.unmatched)} override row(s) of {out / 'overrides.csv'} were not "
                   "applied (see above); export-grades refuses until they match or are removed.",
                   err=True)
    if summary.confinement_warning():
        click.echo(summary.confinement_warning(), err=True)
    errors = summary.statuses.get("error", 0)
    if errors:
        click.echo(f"{errors} submission(s) could not be graded (status error): see the message "
                   "column; a rerun grades them again.", err=True)
    sys.stdout.flush()

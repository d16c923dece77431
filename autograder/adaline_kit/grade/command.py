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


@click.command("grade")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...",
                type=click.Path(path_type=Path))
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path),
              help="Folder for grades.csv, feedback.zip, summary.png and a folder per submission.")
@click.option("-j", "--jobs", type=click.IntRange(min=1, max=256), default=None,
              help="Submissions graded at once (default: the number of CPUs).")
@click.option("--force", is_flag=True,
              help="Grade again even submissions already graded by this same autograder.")
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=None,
              help="Seed of the hidden checks' random inputs (default: a fresh one each).")
def grade(paths: tuple[Path, ...], out: Path, jobs: int | None, force: bool,
          seed: int | None) -> None:
    """Grade every submission in PATH... and write the results to OUT.

    PATH may be a notebook, a zip made by otter's grader.export(), a folder of those (searched
    recursively) or a Gradescope "Export Submissions" folder (its submission_metadata.yml gives
    the students' names and emails). Results already in OUT from this same autograder and the
    same file are kept (rerunning resumes an interrupted run); --force grades everything again.
    """
    from . import batch, gradebook, reports
    from ..answer_key import load as load_answer_key

    load_answer_key()  # one line, status 2, if grading.toml changed since the last build
    for path in paths:
        if not path.exists():
            raise _user_error(f"no such file or folder: {path}")
    if out.exists() and not out.is_dir():
        raise _user_error(f"the output path {out} is a file, not a folder")
    try:
        found = batch.discover(paths, out)
    except batch.BatchError as error:
        raise _user_error(str(error)) from None
    if not found:
        raise _user_error("no submissions (.ipynb notebooks or .zip exports) were found in "
                          + ", ".join(str(p) for p in paths))
    out = _out_folder(out)
    batch.clean_staging(out)
    autograder = batch.fingerprint()
    todo, done = batch.plan(found, out, autograder, force, seed)
    records = {o.job.key: o.record for o in done}
    workers = jobs or os.cpu_count() or 1
    started = time.monotonic()
    last_write = [started]

    def save_gradebook() -> None:
        gradebook.write(out / "grades.csv", list(records.values()))

    progress, task = _progress(len(todo), len(done))

    def on_result(outcome) -> None:
        records[outcome.job.key] = outcome.record
        if outcome.record["status"] == "error":
            progress.console.print(f"[red]error[/red] {outcome.job.key}: "
                                   f"{outcome.record['message']}", markup=True, highlight=False)
        progress.advance(task)
        if time.monotonic() - last_write[0] > 2.0:  # an interrupted run keeps a current gradebook
            save_gradebook()
            last_write[0] = time.monotonic()

    try:
        with progress:
            batch.grade_all(todo, out, workers, seed, autograder, on_result)
    except batch.BatchError as error:
        save_gradebook()
        raise _user_error(str(error)) from None
    except KeyboardInterrupt:
        # Results committed after the last progress update are on disk: count them too.
        records.update((o.job.key, o.record) for o in batch.plan(found, out, autograder, False,
                                                                 seed)[1])
        save_gradebook()
        click.echo(f"Stopped: {len(records)} of {len(found)} submissions are done; run the same "
                   "command again to grade the rest.", err=True)
        raise
    batch.clean_staging(out)
    ordered = [records[job.key] for job in found if job.key in records]
    save_gradebook()
    reports.write_feedback_zip(out, ordered)
    summary = reports.ClassSummary(ordered)
    summary.write_png(out / "summary.png")
    elapsed = time.monotonic() - started
    graded = len(ordered) - len(done)
    rate = f", {graded / elapsed:.2f} submissions/s" if graded and elapsed > 0 else ""
    click.echo(f"Graded {graded}, skipped {len(done)} already graded "
               f"({elapsed:.1f} s, {workers} worker(s){rate}).")
    click.echo(summary.line())
    click.echo(f"Wrote {out / 'grades.csv'}, {out / 'feedback.zip'}, {out / 'summary.png'}")
    errors = summary.statuses.get("error", 0)
    if errors:
        click.echo(f"{errors} submission(s) could not be graded (status error): see the message "
                   "column; a rerun grades them again.", err=True)
    sys.stdout.flush()

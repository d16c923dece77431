"""``adaline-kit export-grades OUT --format canvas|gradescope|csv``."""

from __future__ import annotations

from pathlib import Path

import click

@click.command("export-grades")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--format", "kind", type=click.Choice(["canvas", "gradescope", "csv"]),
              required=True, help="Canvas gradebook import; Name, SID, Email, Total Score "
                                  "for Gradescope; or the gradebook as CSV.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="File to write (default: OUT/export-FORMAT.csv).")
@click.option("--excel", is_flag=True,
              help="Start the file with a UTF-8 byte-order mark, so Excel reads names right.")
@click.option("--assignment", default=None,
              help="The assignment's column (Canvas; default: the assignment's title): its "
                   "exact title in Canvas, or "
                   "'Title (ID)' with the assignment's Canvas id; an unknown title makes Canvas "
                   "create a new assignment.")
@click.option("--ignore-unmatched-overrides", is_flag=True,
              help="Export even though rows of OUT/overrides.csv name no graded submission "
                   "(they are left out, each with a warning). Malformed rows always stop.")
def export_grades(out: Path, kind: str, output: Path | None, excel: bool,
                  assignment: str, ignore_unmatched_overrides: bool) -> None:
    """Write the grades of the class folder OUT as an LMS upload file.

    Scores are the totals after OUT/overrides.csv; group submissions give a row per member.
    While overrides.csv has a malformed row, or a row that names no graded submission, nothing
    is written: each problem is printed as FILE:LINE and the exit status is 2.
    """
    from ..assignment import current
    from ..cli import KitError
    from ..grade import lock

    assignment = assignment or current().TITLE

    if not out.is_dir():
        raise KitError(f"no such class folder: {out}")
    try:
        with lock.hold_unless_read_only(out):  # not while a grading run is changing the folder
            _export(out, kind, output, excel, assignment, ignore_unmatched_overrides)
    except lock.FolderBusy as error:
        raise KitError(str(error)) from None


def _export(out: Path, kind: str, output: Path | None, excel: bool, assignment: str,
            ignore_unmatched_overrides: bool) -> None:
    from ..cli import KitError, ProblemsError
    from ..grade import classbook, gradebook
    from . import formats

    book = classbook.load(out)
    unmatched = [] if ignore_unmatched_overrides else [
        f"{line} (fix or remove the row, or pass --ignore-unmatched-overrides)"
        for line in book.unmatched]
    if book.malformed or unmatched:
        raise ProblemsError(book.malformed + unmatched)
    if not book.records:
        raise KitError(f"{out} holds no graded submissions (grade them with adaline-kit grade)")
    text, warnings = formats.render(kind, book.records, book.due, assignment)
    target = output or out / f"export-{kind}.csv"
    try:
        gradebook.write_text(target, text, excel=excel)
    except OSError as error:
        raise KitError(f"cannot write {target}: {error.strerror}") from None
    for warning in [*book.unmatched, *warnings]:
        click.echo(f"Warning: {warning}", err=True)
    rows = text.count("\n") - (2 if kind == "canvas" else 1)
    click.echo(f"Wrote {target} ({rows} student row(s), {kind} format"
               f"{', with a byte-order mark for Excel' if excel else ''}).")

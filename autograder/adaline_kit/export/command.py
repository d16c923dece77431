"""``adaline-kit export-grades OUT --format canvas|gradescope|csv``."""

from __future__ import annotations

from pathlib import Path

import click

@click.command("export-grades")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--format", "kind", type=click.Choice(["canvas", "gradescope", "csv"]),
              required=True, help="Canvas gradebook import, Gradescope score upload, or the "
                                  "gradebook as CSV.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="File to write (default: OUT/export-FORMAT.csv).")
@click.option("--excel", is_flag=True,
              help="Start the file with a UTF-8 byte-order mark, so Excel reads names right.")
@click.option("--assignment", default=None,
              help="The assignment's column name (Canvas; default: the assignment's title).")
def export_grades(out: Path, kind: str, output: Path | None, excel: bool,
                  assignment: str) -> None:
    """Write the grades of the class folder OUT as an LMS upload file.

    Scores are the totals after OUT/overrides.csv; group submissions give a row per member.
    """
    from ..assignment import current
    from ..cli import KitError
    from ..grade import classbook, gradebook, overrides
    from . import formats

    assignment = assignment or current().TITLE
    if not out.is_dir():
        raise KitError(f"no such class folder: {out}")
    try:
        book = classbook.load(out)
    except overrides.OverrideError as error:
        raise KitError(str(error)) from None
    if not book.records:
        raise KitError(f"{out} holds no graded submissions (grade them with adaline-kit grade)")
    text, warnings = formats.render(kind, book.records, book.due, assignment)
    target = output or out / f"export-{kind}.csv"
    try:
        gradebook.write_text(target, text, excel=excel)
    except OSError as error:
        raise KitError(f"cannot write {target}: {error.strerror}") from None
    for warning in book.warnings + warnings:
        click.echo(warning, err=True)
    rows = text.count("\n") - (2 if kind == "canvas" else 1)
    click.echo(f"Wrote {target} ({rows} student row(s), {kind} format"
               f"{', with a byte-order mark for Excel' if excel else ''}).")

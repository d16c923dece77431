"""``adaline-kit similarity OUT``: the similarity report of a graded class folder."""

from __future__ import annotations

from pathlib import Path

import click


def students(records: list[dict], template) -> tuple[list, list[str]]:
    """The class's submissions with their stub code, and the keys that could not be read."""
    from .compare import Student
    from .stubs import load_stub_code

    found, unreadable = [], []
    for record in records:
        source = Path(str(record.get("source", "")))
        code = load_stub_code(source, template) if source.is_file() else None
        if code is None:
            unreadable.append(str(record.get("key")))
            continue
        found.append(Student(str(record["key"]), str(record.get("student") or ""), code))
    return found, unreadable


@click.command("similarity")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
def similarity(out: Path) -> None:
    """Write OUT/similarity.html and OUT/similarity.csv: pairs of submissions ranked by how alike
    their stub code is, likeness the rest of the class shares ranked lower. Changes no score.

    The submissions are read from where they were graded from (the source in each record).
    """
    from ..cli import KitError
    from ..grade import lock

    if not out.is_dir():
        raise KitError(f"no such class folder: {out}")
    try:
        with lock.hold_unless_read_only(out):  # not while a grading run is changing the folder
            _similarity(out)
    except lock.FolderBusy as error:
        raise KitError(str(error)) from None


def _similarity(out: Path) -> None:
    from ..build import paths
    from ..cli import KitError
    from ..grade import batch
    from . import compare, report
    from .stubs import template_definitions

    records = batch.collect(out)
    if not records:
        raise KitError(f"{out} holds no graded submissions (grade them with adaline-kit grade)")
    found, unreadable = students(records, template_definitions(paths.STUDENT_NOTEBOOK))
    pairs = compare.rank(found)
    csv_path, html_path = report.write(out, pairs, len(found))
    if unreadable:
        click.echo(f"{len(unreadable)} submission(s) left out (no readable notebook at their "
                   f"source): {', '.join(unreadable[:10])}{' ...' if len(unreadable) > 10 else ''}",
                   err=True)
    top = (f"; top pair {pairs[0].a.key} and {pairs[0].b.key} (score {pairs[0].score:.2f})"
           if pairs else "")
    click.echo(f"Compared {len(found)} submissions, {len(pairs)} pairs{top}.")
    click.echo(f"Wrote {html_path}, {csv_path} (informs only: no score changed)")

"""``adaline-kit``: build the bundles, grade submissions, validate the grader.

Each subcommand is a user's verb and maps to the subpackage of the same name.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


class KitError(click.ClickException):
    """A user error: printed as one line, exit status 1, no traceback."""


def _summary_line(label: str, results: dict) -> str:
    scores = ", ".join(f"{t['name']} {t['score']:g}/{t['max_score']:g}" for t in results["tests"])
    total = sum(t["max_score"] for t in results["tests"])
    return f"  {label:<28} {results['score']:>5g} / {total:g}   ({scores})"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="adaline-kit")
def main() -> None:
    """Autograded Adaline assignment: build bundles, grade submissions, validate the grader."""


@main.command()
@click.option("--out", "out_root", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Folder for the bundles (default: dist/ in the repository).")
@click.option("--no-solutions", is_flag=True, help="Skip executing the solution notebook.")
@click.option("--no-verify", is_flag=True,
              help="Skip grading the reference and the stubs with the built autograder.")
def build(out_root: Path | None, no_solutions: bool, no_verify: bool) -> None:
    """Build student.zip, autograder.zip and solutions.zip, then check the autograder.

    The check grades the reference solution (expected: full marks) and the untouched student
    notebook (expected: no hidden points, no crash) exactly as Gradescope runs the zip.
    """
    from .build import build_all, verify_autograder

    outputs = build_all(out_root, solutions=not no_solutions)
    click.echo(f"student bundle     {outputs.student_zip}")
    click.echo(f"autograder         {outputs.autograder_zip}")
    if outputs.solutions_zip:
        click.echo(f"solutions bundle   {outputs.solutions_zip}")
    if no_verify:
        return
    click.echo("Grading with the built autograder, as Gradescope runs it:")
    verdicts = verify_autograder(outputs.autograder_zip)
    for label, results in verdicts.items():
        click.echo(_summary_line(label, results))
    reference, stubs = verdicts["reference solution"], verdicts["untouched student notebook"]
    full = sum(t["max_score"] for t in reference["tests"])
    if reference["score"] < full:
        raise KitError("the reference solution did not get full marks: the autograder is wrong")
    if stubs["score"] > 0:
        raise KitError("the untouched student notebook earned hidden points: the stubs leak")
    click.echo("OK: reference at full marks, untouched stubs at zero.")


def run() -> None:
    """Console entry point: user errors as one line, Ctrl-C as "Interrupted." and status 130."""
    try:
        main(standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)

from .grade.command import grade as grade_command  # noqa: E402 - registered after main exists
main.add_command(grade_command)
from .validate.command import validate as validate_command  # noqa: E402
main.add_command(validate_command)
from .export.command import export_grades as export_grades_command  # noqa: E402
main.add_command(export_grades_command)
from .similarity.command import similarity as similarity_command  # noqa: E402
main.add_command(similarity_command)

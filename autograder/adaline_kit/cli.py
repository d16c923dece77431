"""``adaline-kit``: build the bundles, grade submissions, validate the grader.

Each subcommand is a user's verb and maps to the subpackage of the same name.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


class KitError(click.ClickException):
    """A user error: printed as one line, exit status 1, no traceback."""


class ConfigError(click.ClickException):
    """grading.toml, the master notebook or the reference solution is wrong: one line, status 2."""

    exit_code = 2


class ProblemsError(click.ClickException):
    """Problems in a file the user wrote (``FILE:LINE: what``): one ``Error:`` line each,
    exit status 2, no traceback."""

    exit_code = 2

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def show(self, file=None) -> None:
        for problem in self.problems:
            click.echo(f"Error: {problem}", err=True, file=file)


def _summary_line(label: str, results: dict) -> str:
    scores = ", ".join(f"{t['name']} {t['score']:g}/{t['max_score']:g}" for t in results["tests"])
    total = sum(t["max_score"] for t in results["tests"])
    return f"  {label:<28} {results['score']:>5g} / {total:g}   ({scores})"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="adaline-kit")
def main() -> None:
    """Autograded assignment kit: build bundles, grade submissions, validate the grader."""


@main.command()
@click.option("--out", "out_root", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Folder for the bundles (default: dist/ in the repository).")
@click.option("--no-solutions", is_flag=True, help="Skip the solutions bundle.")
@click.option("--no-verify", is_flag=True,
              help="Skip grading the reference and the stubs with the built autograder.")
def build(out_root: Path | None, no_solutions: bool, no_verify: bool) -> None:
    """Check grading.toml and the master notebook, record the reference solution's results
    (the answer key), build student.zip, autograder.zip and solutions.zip, then check the
    autograder.

    The check grades the reference solution (expected: the declared total, question by
    question) and the untouched student notebook (expected: 0 points) exactly as Gradescope
    runs the zip; the bundles reach dist/ only when it passes.
    """
    from .build import build_all, verdict_problems, verify_autograder

    def verify(outputs) -> None:
        click.echo("Grading with the built autograder, as Gradescope runs it:")
        verdicts = verify_autograder(outputs.autograder_zip)
        for label, results in verdicts.items():
            click.echo(_summary_line(label, results))
        points = outputs.settings.points
        click.echo(f"  declared: {', '.join(f'{q} {p:g}' for q, p in points.items())}, "
                   f"total {sum(points.values()):g}")
        problems = verdict_problems(verdicts, points)
        if problems:
            raise KitError("; ".join(problems) + " (nothing written to dist/)")

    def announce(outputs) -> None:
        click.echo(outputs.answer_key.summary())
        if not no_verify:
            verify(outputs)

    outputs = build_all(out_root, solutions=not no_solutions, verify=announce)
    click.echo(f"student bundle     {outputs.student_zip}")
    click.echo(f"autograder         {outputs.autograder_zip}")
    if outputs.solutions_zip:
        click.echo(f"solutions bundle   {outputs.solutions_zip}")
    if not no_verify:
        click.echo("OK: reference at the declared total, untouched stubs at zero.")


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
    except Exception as error:  # noqa: BLE001 - configuration errors are one line, status 2
        from .settings import SettingsError
        from .build.student_notebook import MarkerError

        if not isinstance(error, (SettingsError, MarkerError)):
            raise
        message = str(error)
        if isinstance(error, MarkerError):
            from .build import paths
            message = f"{paths.shown(paths.MASTER_NOTEBOOK)}: {message}"
        ConfigError(message).show()
        sys.exit(ConfigError.exit_code)
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


if __name__ == "__main__":  # python -m adaline_kit.cli
    run()

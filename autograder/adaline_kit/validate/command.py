"""``adaline-kit validate``: grade the corpus of known submissions and check every verdict.

Registered on the ``adaline-kit`` group in :mod:`adaline_kit.cli`. Prints one table row per
case (expected and received score per question, the diagnoses received, what went wrong), then
a last line with the catch rate over the ``wrong`` group and the false-failure rate over the
``correct`` group. Exits 1 when any case is not graded as its corpus entry says.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


def _user_error(message: str) -> click.ClickException:
    from ..cli import KitError  # imported here: cli.py imports this module

    return KitError(message)


def _console():
    from rich.console import Console

    # Piped output (make, CI, tests) gets a wide table instead of rich's 80-column default.
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200, soft_wrap=False)
    return console


def _table(validation, questions):
    from rich.table import Table
    from rich.text import Text

    from . import meets

    table = Table(title=f"Corpus validation ({len(validation.results)} cases)", show_lines=False)
    table.add_column("case", no_wrap=True)
    for question in questions:
        table.add_column(f"{question}\nexpected / got", no_wrap=True)
    table.add_column("public checks\nfailing", no_wrap=True)
    table.add_column("diagnoses received", overflow="fold")
    table.add_column("result", overflow="fold")
    for result in validation.results:
        case, received = result.case, result.received
        cells = [Text(case.label)]
        for question in questions:
            outcome = received.questions.get(question)
            expectation = case.expect.get(question)
            shown = expectation if isinstance(expectation, str) else \
                " ".join(f"{k} {v:g}" for k, v in (expectation or {}).items()) or "-"
            if outcome is None:
                cells.append(Text(f"{shown} / -", style="red" if expectation else ""))
                continue
            ok = expectation is None or meets(expectation, outcome.score, outcome.max_score)
            cells.append(Text(f"{shown} / {outcome.score:g}/{outcome.max_score:g}",
                              style="" if ok else "bold red"))
        public = result.public
        cells.append(Text("-" if public is None else
                          ", ".join(q for q in questions if not public.get(q)) or "none"))
        diagnosed = "; ".join(f"{q}: {', '.join(o.diagnoses)}"
                              for q, o in received.questions.items() if o.diagnoses)
        cells.append(Text(diagnosed or "-"))
        if result.problems:
            seed = f" (seed {received.seed})" if received.seed is not None else ""
            cells.append(Text("FAIL: " + "; ".join(result.problems) + seed, style="red"))
        else:
            cells.append(Text("ok", style="green"))
        table.add_row(*cells)
    return table


@click.command("validate")
@click.option("--corpus", type=click.Path(path_type=Path), default=None,
              help="Corpus folder, one subfolder per group (default: the assignment "
                   "package's corpus).")
@click.option("--group", "groups", multiple=True, metavar="NAME",
              help="Validate only this group (repeatable; default: every group).")
@click.option("--autograder", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Autograder zip for --gradescope (default: build one into a temporary "
                   "folder); implies --gradescope.")
@click.option("-j", "--jobs", type=click.IntRange(min=1, max=64), default=None,
              help="Submissions graded at once (default: the number of CPUs).")
@click.option("--gradescope", is_flag=True,
              help="Grade each case through the autograder zip exactly as Gradescope runs it "
                   "(slower) instead of the fast grader.")
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=None,
              help="Seed of the hidden checks' random inputs for the fast grader (default: a "
                   "fresh one per case; a failing case shows its seed).")
@click.option("--public/--no-public", default=True, show_default=True,
              help="Also run the public checks (the student bundle's tests) on the correct and "
                   "wrong cases and print their catch and false-failure rates.")
@click.option("--report", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write every case's expected and received results, feedback included, "
                   "to this JSON file.")
def validate(corpus: Path | None, groups: tuple[str, ...], autograder: Path | None,
             jobs: int | None, gradescope: bool, seed: int | None, public: bool,
             report: Path | None) -> None:
    """Grade the corpus of correct and wrong submissions and check every verdict.

    Fails (exit status 1) when a wrong submission keeps full marks on its question, a correct
    one loses a point or fails a public check, an expected diagnosis is missing or not
    explained in the feedback, the feedback shows a line of the hidden checks' code, or the
    grader fails on a case.
    """
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    from . import CorpusError, default_corpus, discover, validate as run_validation
    from ..assignment import check_built
    from ..settings import questions

    check_built()  # one line, status 2, if grading.toml changed since the last build
    if autograder is not None:
        if not autograder.is_file():
            raise _user_error(f"no autograder zip at {autograder}")
        gradescope = True
    if seed is not None and gradescope:
        raise _user_error("--seed applies to the fast grader only (Gradescope draws its own)")
    try:
        cases = discover(corpus or default_corpus(), groups or None)
    except CorpusError as error:
        raise _user_error(str(error)) from None
    workers = jobs or os.cpu_count() or 1
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
    mode = "the autograder zip, run as Gradescope runs it" if gradescope else "the fast grader"
    task = progress.add_task(f"Validating with {mode}", total=len(cases))

    def on_build(path: Path) -> None:
        progress.console.print(f"autograder zip: {path}", highlight=False)

    try:
        with progress:
            validation = run_validation(cases, workers, gradescope, autograder, seed,
                                        on_result=lambda case, received: progress.advance(task),
                                        on_build=on_build, public=public)
    except RuntimeError as error:  # e.g. the sandbox did not start
        raise _user_error(str(error).strip().splitlines()[0]) from None

    if report is not None:
        import json

        try:
            report.write_text(json.dumps(validation.as_json(), indent=2) + "\n")
        except OSError as error:
            raise _user_error(f"cannot write the report {report}: {error.strerror}") from None
    console = _console()
    console.print(_table(validation, questions()))
    groups_seen = sorted({c.group for c in cases})
    click.echo(f"{len(cases)} cases ({', '.join(groups_seen)}) graded with {mode} in "
               f"{validation.seconds:.1f} s, {workers} worker(s).")
    failures = validation.failures
    for result in failures:
        seed_note = f" [seed {result.received.seed}]" if result.received.seed is not None else ""
        click.echo(f"FAIL {result.case.label}: {'; '.join(result.problems)}{seed_note}")
    if failures:
        click.echo(f"{len(failures)} of {len(cases)} cases are not graded as the corpus says.")
    click.echo(validation.rates_line())
    if public:
        click.echo(validation.public_line())
    sys.stdout.flush()
    if failures:
        sys.exit(1)

"""The ``build`` verb: the answer key, the student notebook, the three bundles.

:func:`build_all` checks grading.toml and the question declarations, runs the reference solution
and records the answer key (``reference_run``), regenerates the student notebook, then writes
``dist/<assignment>/{student,autograder,solutions}.zip``. Everything is checked before
anything is written; the bundles are written to a staging folder and moved into ``dist/`` only
when complete. :func:`verify_autograder` grades the reference solution and the untouched student
notebook with the built autograder exactly as Gradescope runs it; :func:`verdict_problems` says
what in those results is wrong.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

import nbformat


@dataclasses.dataclass
class BuildOutputs:
    student_zip: Path
    autograder_zip: Path
    solutions_zip: Path | None
    answer_key: object = None            # the AnswerKey recorded by this build
    settings: object = None              # the Settings it was built for


@dataclasses.dataclass
class Prepared:
    """What a build checked and computed before writing anything."""

    settings: object
    values: object                       # student_notebook.Values for the placeholders
    answer_key: object
    executed_solution: nbformat.NotebookNode
    student_text: str


def write_student_notebook() -> bool:
    """Regenerate the committed student notebook from the master and the recorded answer key;
    True if it changed."""
    from . import paths
    from .student_notebook import make_student_notebook

    master = nbformat.read(paths.MASTER_NOTEBOOK, as_version=4)
    text = nbformat.writes(make_student_notebook(master)) + "\n"
    return _write_if_changed(paths.STUDENT_NOTEBOOK, text)


def _write_if_changed(path: Path, text: str) -> bool:
    old = path.read_text() if path.exists() else ""
    if text != old:
        path.write_text(text)
    return text != old


def prepare() -> Prepared:
    """Check everything and compute the answer key; write nothing. Raises a SettingsError
    subclass (one line) on any problem."""
    from .. import assignment, settings as settings_module
    from . import declarations, paths
    from .student_notebook import Values, make_student_notebook, strip_markers

    settings = settings_module.load()
    package = assignment.current()
    master = nbformat.read(paths.MASTER_NOTEBOOK, as_version=4)
    declarations.check(settings.points, package.QUESTIONS, master, paths.MASTER_NOTEBOOK.name,
                       paths.PUBLIC_TESTS)
    data = package.load_data(paths.DATA_FILE, settings.assignment)
    # The markdown's {expected[...]} need the answer key this run records; the kernel only
    # runs code, so the completed notebook it runs gets the independent reference's numbers.
    provisional = package.provisional_answer_key(settings.assignment, data)
    completed = strip_markers(master, Values(settings.points, settings.assignment, provisional,
                                              settings.method_rules))
    key, solution = package.record_answer_key(completed, settings.assignment, data,
                                              list(settings.points), settings.scoring())
    values = Values(settings.points, settings.assignment, key, settings.method_rules)
    student = make_student_notebook(master, values)
    declarations.check_total(student, settings.max_total, paths.MASTER_NOTEBOOK.name)
    final = strip_markers(master, values)
    for executed, filled in zip(solution.cells, final.cells):
        if executed.cell_type == "markdown":  # now with the answer key's numbers
            executed.source = filled.source
    return Prepared(settings, values, key, solution, nbformat.writes(student) + "\n")


def build_all(out_root: Path | None = None, solutions: bool = True,
              verify=None) -> BuildOutputs:
    """Check, record the answer key, write the student notebook and the bundles.

    ``verify(outputs)``, if given, runs on the staged bundles and may raise to keep them out
    of ``dist/``.
    """
    from ..assignment import current
    from . import autograder_zip, bundles, paths

    prepared = prepare()
    current().write_answer_key(prepared.answer_key)
    _write_if_changed(paths.STUDENT_NOTEBOOK, prepared.student_text)
    dist = paths.dist_dir(out_root)
    dist.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dist.name}-staging-", dir=dist.parent))
    try:
        outputs = BuildOutputs(
            bundles.build_student_zip(staging / "student.zip"),
            autograder_zip.build(staging / "autograder.zip"),
            bundles.build_solutions_zip(staging / "solutions.zip", prepared.executed_solution)
            if solutions else None,
            prepared.answer_key, prepared.settings)
        if verify is not None:
            verify(outputs)
        dist.mkdir(exist_ok=True)
        moved = {}
        for field in ("student_zip", "autograder_zip", "solutions_zip"):
            staged = getattr(outputs, field)
            if staged is not None:
                moved[field] = Path(shutil.move(str(staged), dist / staged.name))
        return dataclasses.replace(outputs, **moved)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def reference_submission(folder: Path) -> Path:
    """The completed notebook (solution markers removed) written to ``folder``."""
    from . import paths
    from .student_notebook import strip_markers

    notebook = strip_markers(nbformat.read(paths.MASTER_NOTEBOOK, as_version=4))
    target = folder / paths.MASTER_NOTEBOOK.name
    nbformat.write(notebook, target)
    return target


def verify_autograder(autograder: Path, student_notebook: Path | None = None) -> dict[str, dict]:
    """results.json of the reference solution and of the untouched stubs, graded like Gradescope."""
    from ..grade.emulation import gradescope_python, run_like_gradescope
    from . import paths

    with tempfile.TemporaryDirectory(prefix="adaline-kit-verify-") as tmp:
        tmp = Path(tmp)
        (tmp / "reference").mkdir()
        python = gradescope_python()
        return {
            "reference solution": run_like_gradescope(
                autograder, reference_submission(tmp / "reference"), python),
            "untouched student notebook": run_like_gradescope(
                autograder, student_notebook or paths.STUDENT_NOTEBOOK, python),
        }


def verdict_problems(verdicts: dict[str, dict], points: dict) -> list[str]:
    """What is wrong with :func:`verify_autograder`'s results for the declared ``points``.

    The reference must score the declared total on exactly the declared questions, each at its
    declared points (a 0/0 or "could not start" fallback fails this); the untouched stubs must
    score 0.
    """
    problems = []
    total = float(sum(points.values()))
    reference, stubs = verdicts["reference solution"], verdicts["untouched student notebook"]
    for label, results in verdicts.items():
        tests = {t["name"]: t for t in results.get("tests", [])}
        if sorted(tests) != sorted(points):
            problems.append(f"{label}: results for {', '.join(sorted(tests)) or 'no questions'}, "
                            f"declared {', '.join(points)}")
            continue
        for question, value in points.items():
            if float(tests[question]["max_score"]) != float(value):
                problems.append(f"{label}: {question} is worth {tests[question]['max_score']:g}, "
                                f"declared {value:g}")
    if total <= 0:
        problems.append("the declared total is 0")
    if float(reference.get("score", 0)) != total:
        problems.append(f"the reference solution got {reference.get('score', 0):g} of the "
                        f"declared {total:g} points: the autograder or the reference is wrong")
    if float(stubs.get("score", 0)) != 0:
        problems.append(f"the untouched student notebook got {stubs['score']:g} points: "
                        "the stubs leak")
    return problems

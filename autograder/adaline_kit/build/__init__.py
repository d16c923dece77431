"""The ``build`` verb: the student notebook, the student, autograder and solutions bundles.

:func:`build_all` writes ``dist/adaline_autograd/{student,autograder,solutions}.zip``;
:func:`verify_autograder` grades the reference solution and the untouched student notebook with
the built autograder exactly as Gradescope runs it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import nbformat


@dataclasses.dataclass
class BuildOutputs:
    student_zip: Path
    autograder_zip: Path
    solutions_zip: Path | None


def write_student_notebook() -> bool:
    """Regenerate the committed student notebook from the master; True if it changed."""
    from . import paths
    from .student_notebook import make_student_notebook

    master = nbformat.read(paths.MASTER_NOTEBOOK, as_version=4)
    text = nbformat.writes(make_student_notebook(master)) + "\n"
    old = paths.STUDENT_NOTEBOOK.read_text() if paths.STUDENT_NOTEBOOK.exists() else ""
    if text != old:
        paths.STUDENT_NOTEBOOK.write_text(text)
    return text != old


def build_all(out_root: Path | None = None, solutions: bool = True) -> BuildOutputs:
    from . import autograder_zip, bundles, paths

    write_student_notebook()
    dist = paths.dist_dir(out_root)
    student = bundles.build_student_zip(dist / "student.zip")
    autograder = autograder_zip.build(dist / "autograder.zip")
    solution = bundles.build_solutions_zip(dist / "solutions.zip") if solutions else None
    return BuildOutputs(student, autograder, solution)


def reference_submission(folder: Path) -> Path:
    """The completed notebook (solution markers removed) written to ``folder``."""
    from . import paths
    from .student_notebook import strip_markers

    notebook = strip_markers(nbformat.read(paths.MASTER_NOTEBOOK, as_version=4))
    target = folder / paths.MASTER_NOTEBOOK.name
    nbformat.write(notebook, target)
    return target


def verify_autograder(autograder: Path) -> dict[str, dict]:
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
                autograder, paths.STUDENT_NOTEBOOK, python),
        }

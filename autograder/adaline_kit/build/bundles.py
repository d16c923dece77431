"""The student bundle and the solutions bundle.

``student.zip``: the student notebook, its public tests and the data, nothing hidden.
``solutions.zip``: the completed notebook, executed with its plots, and an HTML rendering, for
release after the due date.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from . import paths
from .leaks import find_leaks
from .student_notebook import strip_markers
from .zips import write_zip

STUDENT_REQUIREMENTS = """\
# What the notebook needs on a student's machine. On Linux and Windows, add
#   --extra-index-url https://download.pytorch.org/whl/cpu
# to `pip install -r requirements.txt` to get the small CPU-only build of torch.
torch==2.13.0
otter-grader==7.0.0
matplotlib
pandas
jupyter
"""


def student_members() -> dict[str, bytes | Path]:
    """Archive name -> content of everything a student receives."""
    members: dict[str, bytes | Path] = {
        f"{paths.ASSIGNMENT}/{paths.STUDENT_NOTEBOOK.name}": paths.STUDENT_NOTEBOOK,
        f"{paths.ASSIGNMENT}/{paths.DATA_NAME}": paths.DATA_FILE,
        f"{paths.ASSIGNMENT}/requirements.txt": STUDENT_REQUIREMENTS.encode(),
    }
    readme = paths.DATA_FILE.with_name("README.md")  # the data's provenance, if written
    if readme.is_file():
        members[f"{paths.ASSIGNMENT}/{Path(paths.DATA_NAME).with_name('README.md').as_posix()}"] = \
            readme
    for test in sorted(paths.PUBLIC_TESTS.glob("q*.py")):
        members[f"{paths.ASSIGNMENT}/tests/{test.name}"] = test
    return members


class LeakError(RuntimeError):
    """The student bundle would contain hidden material."""


def build_student_zip(target: Path) -> Path:
    """Write the student bundle; raise LeakError rather than ship hidden material."""
    members = student_members()
    contents = {name: (value.read_bytes() if isinstance(value, Path) else value)
                for name, value in members.items()}
    leaks = find_leaks(contents, nbformat.read(paths.MASTER_NOTEBOOK, as_version=4))
    if leaks:
        raise LeakError("the student bundle would leak hidden material:\n" + "\n".join(leaks))
    return write_zip(target, contents)


def executed_solution(timeout: int = 300) -> nbformat.NotebookNode:
    """The completed notebook without solution markers, run top to bottom in a fresh kernel."""
    from .notebook_run import execute

    notebook = strip_markers(nbformat.read(paths.MASTER_NOTEBOOK, as_version=4))
    return execute(notebook, timeout=timeout)[0]


def build_solutions_zip(target: Path, notebook: nbformat.NotebookNode | None = None) -> Path:
    """Write the solutions bundle from ``notebook`` (the executed completed notebook; default:
    execute it now)."""
    from nbconvert import HTMLExporter

    notebook = notebook if notebook is not None else executed_solution()
    html, _ = HTMLExporter().from_notebook_node(notebook)
    name = paths.ASSIGNMENT
    return write_zip(target, {
        f"{name}_solutions/{name}.ipynb": nbformat.writes(notebook).encode(),
        f"{name}_solutions/{name}.html": html.encode(),
        f"{name}_solutions/{paths.DATA_NAME}": paths.DATA_FILE,
    })

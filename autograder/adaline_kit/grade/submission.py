"""Read a submission (a notebook, or a zip from ``grader.export()``) into code cells.

Nothing in a submission is ever unpickled or executed here: a zip's ``.OTTER_LOG`` and any other
stray file is ignored. A file that cannot be read still yields a :class:`Submission` with no
cells and a ``problem`` that says why, so grading can write a result for it.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import nbformat

MAX_NOTEBOOK_BYTES = 20 << 20
NOTEBOOK_NAME = "adaline_autograd.ipynb"
SUBMISSION_SUFFIXES = (".ipynb", ".zip")


@dataclasses.dataclass
class Submission:
    """``cells``: the Python source of each code cell, IPython syntax already transformed."""

    path: Path
    cells: list[str]
    problem: str | None = None


def _python_source(cell_source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(cell_source)
    except Exception:  # noqa: BLE001 - leave it to the cell run to report the syntax error
        return cell_source


def notebook_from_text(text: str) -> nbformat.NotebookNode:
    """Parse notebook JSON of any nbformat version into version 4; ValueError if unusable."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the file is not a notebook (not valid JSON: {error.msg})") from error
    if not isinstance(raw, dict) or "nbformat" not in raw:
        raise ValueError("the file is JSON but not a Jupyter notebook")
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as error:  # noqa: BLE001 - nbformat raises several kinds
        raise ValueError(f"the notebook could not be read: {error}") from error


def code_cells(notebook: nbformat.NotebookNode) -> list[str]:
    return [_python_source(cell.source) for cell in notebook.cells
            if cell.get("cell_type") == "code" and cell.source.strip()]


def _notebook_text_from_zip(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        names = [info for info in archive.infolist()
                 if info.filename.endswith(".ipynb") and "__MACOSX" not in info.filename
                 and ".ipynb_checkpoints" not in info.filename]
        if not names:
            raise ValueError("the zip holds no notebook (.ipynb)")
        preferred = [i for i in names if Path(i.filename).name == NOTEBOOK_NAME]
        chosen = (preferred or sorted(names, key=lambda i: i.filename.count("/")))[0]
        if chosen.file_size > MAX_NOTEBOOK_BYTES:
            raise ValueError("the notebook in the zip is too large")
        return archive.read(chosen).decode("utf-8", errors="replace")


def find_submission(folder: Path) -> Path | None:
    """The file to grade in a submission folder: ``adaline_autograd.ipynb`` if present, else the
    first notebook, else the first zip (``grader.export()`` output); None if there is none."""
    candidates = sorted(p for p in folder.rglob("*") if p.is_file()
                        and p.suffix in SUBMISSION_SUFFIXES and ".ipynb_checkpoints" not in p.parts)
    notebooks = [p for p in candidates if p.suffix == ".ipynb"]
    named = [p for p in notebooks if p.name == NOTEBOOK_NAME]
    return (named or notebooks or candidates or [None])[0]


def load(path: Path | str) -> Submission:
    """Load ``path`` (.ipynb or .zip); never raises for a bad file, sets ``problem`` instead."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            text = _notebook_text_from_zip(path)
        else:
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                raise ValueError("the file is too large to be this notebook")
            text = path.read_text(encoding="utf-8", errors="replace")
        cells = code_cells(notebook_from_text(text))
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        return Submission(path, [], str(error))
    if not cells:
        return Submission(path, [], "the notebook has no code cells")
    return Submission(path, cells)

"""Read a submission (a notebook, a zip from ``grader.export()``, or a folder) into code cells.

Nothing in a submission is ever unpickled or executed here: a zip's ``.OTTER_LOG`` and any other
stray file is ignored. A file that cannot be read, or a notebook whose structure is broken (a
cell without ``source``, a ``source`` that is not text, JSON nested far deeper than any notebook)
still yields a :class:`Submission` with no cells and a ``problem`` that says why, so grading can
write an ``invalid`` result for it.

Several notebooks in one zip or folder (a student's ``NAME-Copy1.ipynb`` beside the untouched
``NAME.ipynb``, ``NAME`` the assignment's): exactly one is graded, the one with the student's
work, meaning the fewest parts still left as given (``raise NotImplementedError`` lines); ties go
to ``NAME.ipynb``, then to the shallowest, then the first name. ``Submission.note`` says
which one was graded and why.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zipfile
from pathlib import Path

import nbformat

# A notebook file may carry large stored outputs (plots, printed tables): they are dropped, only
# code cells are graded. The file itself may be up to MAX_NOTEBOOK_BYTES; its code cells
# together up to MAX_CODE_BYTES.
MAX_NOTEBOOK_BYTES = 64 << 20
MAX_CODE_BYTES = 20 << 20
MAX_JSON_DEPTH = 100  # a notebook nests a handful of levels (its metadata a few more)
MAX_CANDIDATES = 10  # notebooks compared in one zip or folder
SUBMISSION_SUFFIXES = (".ipynb", ".zip")
STUB_LINE = re.compile(r"^\s*raise\s+NotImplementedError\b", re.MULTILINE)


@dataclasses.dataclass
class Submission:
    """``cells``: the Python source of each code cell, IPython syntax already transformed.
    ``path``: the file graded (a zip, or the chosen notebook of a folder); ``note``: which of
    several notebooks was graded, and why (None when there was only one)."""

    path: Path
    cells: list[str]
    problem: str | None = None
    note: str | None = None


def _python_source(cell_source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(cell_source)
    except Exception:  # noqa: BLE001 - leave it to the cell run to report the syntax error
        return cell_source


# --- one notebook ---------------------------------------------------------------------------

def _json_depth(value, limit: int) -> int:
    """Nesting depth of parsed JSON, counted without recursion; stops once past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth + 1)
                         for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _kind(value) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list holding something other than text"
    return type(value).__name__


def structure_problem(notebook: dict) -> str | None:
    """Why an nbformat-4 notebook's cells cannot be graded, or None: every cell must be an
    object with a ``cell_type`` and a ``source`` that is text (a string or a list of them)."""
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        return "the notebook has no list of cells" if cells is None else \
            f"the notebook's cells are {_kind(cells)}, not a list"
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            return f"cell {number} is {_kind(cell)}, not a cell"
        kind = cell.get("cell_type")
        if not isinstance(kind, str):
            return f"cell {number} has no cell_type"
        if "source" not in cell:
            return f"cell {number} (a {kind} cell) has no source"
        source = cell["source"]
        if not (isinstance(source, str) or isinstance(source, list)
                and all(isinstance(line, str) for line in source)):
            return f"the source of cell {number} (a {kind} cell) is {_kind(source)}, not text"
    return None


def notebook_from_text(text: str) -> nbformat.NotebookNode:
    """Parse notebook JSON of any nbformat version into version 4; ValueError (with a reason a
    student can act on) if it is not a usable notebook."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the file is not a notebook (not valid JSON: {error.msg})") from error
    except RecursionError:
        raise ValueError("the file's JSON is nested far too deeply to be a notebook") from None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        raise ValueError("the file is JSON but not a Jupyter notebook")
    depth = _json_depth(raw, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"the notebook's JSON is nested more than {MAX_JSON_DEPTH} levels "
                         "deep; a notebook never is")
    problem = structure_problem(raw) if raw.get("nbformat") == 4 else None
    if problem:
        raise ValueError(problem)
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # noqa: BLE001 - nbformat raises several kinds
        raise ValueError(f"the notebook could not be read: {error}") from error
    problem = structure_problem(notebook)  # an older format, as converted
    if problem:
        raise ValueError(problem)
    return notebook


def code_cells(notebook: nbformat.NotebookNode) -> list[str]:
    return [_python_source(cell.source) for cell in notebook.cells
            if cell.get("cell_type") == "code" and cell.source.strip()]


def _from_text(path: Path, text: str) -> Submission:
    try:
        cells = code_cells(notebook_from_text(text))
    except ValueError as error:
        return Submission(path, [], str(error))
    if not cells:
        return Submission(path, [], "the notebook has no code cells")
    code = sum(len(cell.encode("utf-8")) for cell in cells)
    if code > MAX_CODE_BYTES:
        return Submission(path, [], f"its code cells hold {code >> 20} MiB of code, more than "
                                    f"the {MAX_CODE_BYTES >> 20} MiB allowed")
    return Submission(path, cells)


# --- several notebooks: the one with the student's work ---------------------------------------

def stubs_left(submission: Submission) -> int:
    """How many parts still raise NotImplementedError as the untouched notebook does."""
    return sum(len(STUB_LINE.findall(cell)) for cell in submission.cells)


def _progress(submission: Submission) -> str:
    if submission.problem:
        return f"unusable: {submission.problem}"
    left = stubs_left(submission)
    count = "no part" if left == 0 else "1 part" if left == 1 else f"{left} parts"
    return f"{count} still raising NotImplementedError"


def notebook_name() -> str:
    """The assignment's notebook file name (``NAME.ipynb``)."""
    from ..assignment import current

    return f"{current().NAME}.ipynb"


def _preference(name: str) -> tuple:
    """Order among equally advanced notebooks: the assignment's own name, shallow, by name."""
    return Path(name).name != notebook_name(), name.count("/"), name


def choose(candidates: list[tuple[str, Submission]], holder: str) -> Submission:
    """The candidate with the student's work (see the module docstring), with a ``note``
    naming every candidate when there are several; ``holder``: "zip" or "submission"."""
    candidates = sorted(candidates, key=lambda item: _preference(item[0]))
    if len(candidates) == 1:
        return candidates[0][1]
    def rank(item):
        return item[1].problem is not None, stubs_left(item[1])

    ranked = sorted(candidates, key=rank)
    (name, chosen), others = ranked[0], ranked[1:]
    why = "the one with the most work done" if rank(ranked[0]) < rank(ranked[1]) else \
        "first by name among the most advanced"
    note = (f"The {holder} holds {len(candidates)} notebooks; only {name} was graded, {why} "
            f"({_progress(chosen)}). Not graded: "
            + "; ".join(f"{other} ({_progress(sub)})" for other, sub in others)
            + ". Submit one notebook.")
    return dataclasses.replace(chosen, note=note)


def _load_zip(path: Path) -> Submission:
    with zipfile.ZipFile(path) as archive:
        entries = [info for info in archive.infolist()
                   if info.filename.endswith(".ipynb") and "__MACOSX" not in info.filename
                   and ".ipynb_checkpoints" not in info.filename]
        if not entries:
            raise ValueError("the zip holds no notebook (.ipynb)")
        entries.sort(key=lambda info: _preference(info.filename))
        candidates = []
        for info in entries[:MAX_CANDIDATES]:
            if info.file_size > MAX_NOTEBOOK_BYTES:
                found = Submission(path, [], "the notebook in the zip is too large")
            else:
                found = _from_text(path, archive.read(info).decode("utf-8", errors="replace"))
            candidates.append((info.filename, found))
    return choose(candidates, "zip")


def _load_file(path: Path) -> Submission:
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"the file is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB, too large "
                             "to be this notebook even with its outputs (clear the outputs and "
                             "submit again)")
        return _from_text(path, path.read_text(encoding="utf-8", errors="replace"))
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        return Submission(path, [], str(error))


def _candidate_files(folder: Path) -> list[Path]:
    """A submission folder's notebooks, or its zips when it holds no notebook."""
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and p.suffix in SUBMISSION_SUFFIXES and ".ipynb_checkpoints" not in p.parts
                   and "__MACOSX" not in p.parts)
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    return sorted(notebooks or files,
                  key=lambda p: _preference(p.relative_to(folder).as_posix()))


def _load_folder(folder: Path) -> Submission:
    files = _candidate_files(folder)
    if not files:
        return Submission(folder, [], "no notebook (.ipynb) or export zip was found in the "
                                      "submission")
    return choose([(p.relative_to(folder).as_posix(), _load_file(p))
                   for p in files[:MAX_CANDIDATES]], "submission")


def find_submission(folder: Path) -> Path | None:
    """The file to grade in a submission folder (see the module docstring for several
    notebooks; a zip only if there is no notebook); None if there is none."""
    files = _candidate_files(folder)
    if len(files) <= 1:
        return files[0] if files else None
    return _load_folder(folder).path


def load(path: Path | str) -> Submission:
    """Load ``path`` (.ipynb, .zip or a submission folder); never raises for a bad file, sets
    ``problem`` instead."""
    path = Path(path)
    return _load_folder(path) if path.is_dir() else _load_file(path)

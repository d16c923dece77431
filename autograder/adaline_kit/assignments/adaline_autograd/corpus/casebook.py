"""Build the grader's corpus: complete submissions, each stating what the grader must say.

A :class:`Case` starts from the reference solution (or the untouched student notebook) and
applies small edits: replace one top-level definition, append cells, or transform the notebook.
:func:`write_case` writes ``<group>/<name>.ipynb`` with the expectations in the notebook's
metadata under ``adaline_kit_case``:

``expect``      question -> "full" | "zero" | "loses" | {"max": points}
``diagnosis``   question -> a diagnosis key that must be among that question's diagnoses
``feedback``    question -> substrings that must appear in that question's feedback
``description`` one line: what the submission does

Case lists live in ``cases_*.py`` beside this file; ``casebook.py`` rewrites
every corpus notebook from them (a test checks the committed notebooks are in sync).
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib
import json
import sys
from pathlib import Path
from typing import Callable

import nbformat

CORPUS = Path(__file__).resolve().parent
METADATA_KEY = "adaline_kit_case"


@dataclasses.dataclass
class Case:
    name: str
    group: str
    description: str
    expect: dict
    diagnosis: dict = dataclasses.field(default_factory=dict)
    feedback: dict = dataclasses.field(default_factory=dict)
    base: str = "reference"  # or "student"
    replace: dict = dataclasses.field(default_factory=dict)  # top-level name -> new source
    add_cells: list = dataclasses.field(default_factory=list)
    transform: Callable | None = None  # NotebookNode -> NotebookNode
    raw: bytes | None = None  # write these bytes instead of a notebook
    suffix: str = ".ipynb"

    @property
    def path(self) -> Path:
        return CORPUS / self.group / f"{self.name}{self.suffix}"


def base_notebook(kind: str) -> nbformat.NotebookNode:
    from adaline_kit.build import paths
    from adaline_kit.build.student_notebook import strip_markers

    if kind == "student":
        return nbformat.read(paths.STUDENT_NOTEBOOK, as_version=4)
    return strip_markers(nbformat.read(paths.MASTER_NOTEBOOK, as_version=4))


def _top_level_span(source: str, name: str) -> tuple[int, int] | None:
    """Line span (0-based start, exclusive end) of the top-level def/class ``name``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            return start, node.end_lineno
    return None


def replace_definition(notebook: nbformat.NotebookNode, name: str, new_source: str):
    """Replace the top-level definition of ``name`` in whichever code cell holds it."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        span = _top_level_span(cell.source, name)
        if span:
            lines = cell.source.splitlines()
            cell.source = "\n".join(lines[:span[0]] + new_source.strip("\n").splitlines()
                                    + lines[span[1]:])
            return notebook
    raise KeyError(f"no top-level definition of {name!r} in the notebook")


def build_case(case: Case) -> bytes:
    if case.raw is not None:
        return case.raw
    notebook = copy.deepcopy(base_notebook(case.base))
    for name, source in case.replace.items():
        replace_definition(notebook, name, source)
    for source in case.add_cells:
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    if case.transform is not None:
        notebook = case.transform(notebook)
    # Stable ids keep regenerated files identical (nbformat would invent random ones).
    for number, cell in enumerate(notebook.cells):
        if (notebook.nbformat, notebook.nbformat_minor) >= (4, 5):
            cell["id"] = f"cell-{number}"
        else:
            cell.pop("id", None)
    notebook.metadata[METADATA_KEY] = {
        "description": case.description, "expect": case.expect,
        "diagnosis": case.diagnosis, "feedback": case.feedback,
    }
    nbformat.validator.normalize(notebook)
    text = nbformat.writes(notebook, version=4)
    return (text + "\n").encode()


def all_cases() -> list[Case]:
    if str(CORPUS) not in sys.path:
        sys.path.insert(0, str(CORPUS))
    cases = []
    for module_path in sorted(CORPUS.glob("cases_*.py")):
        module = importlib.import_module(f"cases_{module_path.stem[len('cases_'):]}")
        cases.extend(module.CASES)
    return cases


def expectations(path: Path) -> dict:
    """The ``adaline_kit_case`` metadata of a corpus file (non-notebooks: a sidecar .json)."""
    sidecar = path.with_suffix(path.suffix + ".expect.json")
    if sidecar.exists():
        return json.loads(sidecar.read_text())
    return json.loads(path.read_text())["metadata"][METADATA_KEY]


def write_case(case: Case) -> Path:
    case.path.parent.mkdir(parents=True, exist_ok=True)
    case.path.write_bytes(build_case(case))
    if case.raw is not None or case.suffix != ".ipynb" or case.transform is not None:
        meta = {"description": case.description, "expect": case.expect,
                "diagnosis": case.diagnosis, "feedback": case.feedback}
        sidecar = case.path.with_suffix(case.path.suffix + ".expect.json")
        sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    return case.path


if __name__ == "__main__":
    for case in all_cases():
        print(write_case(case).relative_to(CORPUS))

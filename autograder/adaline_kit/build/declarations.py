"""The questions are declared in grading.toml ``[points]``: check that everything agrees.

Every declared question needs hidden checks, a public test file and a place in the master
notebook; nothing in the notebook or the public tests may name an undeclared question; a total
written in the notebook's text must be the grader's total. :func:`check` raises
:class:`DeclarationError` with one line naming the question and what is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from ..settings import SettingsError

_QUESTION_USES = (
    ("a points placeholder", re.compile(r"\{points\[(q\d+)\]\}")),
    ("a stub", re.compile(r"#\s*STUB:\s*(q\d+):")),
    ("a grader.check call", re.compile(r"grader\.check\(\s*[\"'](q\d+)[\"']")),
    ("a run_part call", re.compile(r"run_part\(\s*[\"'](q\d+)[\"']")),
)
_TOTAL = re.compile(r"\bTotal\b\W{0,8}(\d+(?:\.\d+)?)")


class DeclarationError(SettingsError):
    """A question is used but not declared, or declared but missing something (one line)."""


def check(points: dict, graders, master: nbformat.NotebookNode, master_name: str,
          public_tests: Path) -> None:
    """Raise DeclarationError unless ``points`` (declared questions), ``graders`` (questions
    with hidden checks), the master notebook and the public tests agree."""
    declared = list(points)
    for question in declared:
        if question not in graders:
            raise DeclarationError(f"grading.toml [points] {question}: declared, but there are no "
                                   "hidden checks for it (the assignment package's QUESTIONS)")
    for question in graders:
        if question not in declared:
            raise DeclarationError(f"grading.toml [points]: {question} has hidden checks but no "
                                   f"points ({question} = <positive number>)")
    tests = {path.stem for path in public_tests.glob("q*.py")}
    for question in declared:
        if question not in tests:
            raise DeclarationError(f"{public_tests.name}/{question}.py: missing: the declared "
                                   f"question {question} needs a public test file")
    for question in sorted(tests - set(declared)):
        raise DeclarationError(f"{public_tests.name}/{question}.py: a public test for {question}, "
                               "which grading.toml [points] does not declare")
    found = {}
    for cell in master.cells:
        for what, pattern in _QUESTION_USES:
            for question in pattern.findall(cell.source):
                if question not in points:
                    raise DeclarationError(
                        f"{master_name}, cell {cell.get('id', '?')!r}: {what} for {question}, "
                        "which grading.toml [points] does not declare")
                found.setdefault(question, set()).add(what)
    for question in declared:
        for what in ("a points placeholder", "a grader.check call"):
            if what not in found.get(question, ()):
                raise DeclarationError(f"{master_name}: the declared question {question} has no "
                                       f"{what} in the notebook")


def check_total(notebook: nbformat.NotebookNode, total: float, where: str) -> None:
    """A 'Total N' in the (filled) notebook's markdown must be the grader's total."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for written in _TOTAL.findall(cell.source):
            if float(written) != total:
                raise DeclarationError(
                    f"{where}, cell {cell.get('id', '?')!r}: the notebook says Total {written}, "
                    f"the grader's total is {total:g} (write {{points[total]}})")

"""Find hidden material in files meant for students.

Students must never receive the reference solutions, the hidden tests or the grading code. The
build refuses to write a student bundle for which :func:`find_leaks` reports anything, and the
test suite runs it over the bundle and over ``assignments/``.
"""

from __future__ import annotations

import re

import nbformat

SOLUTION_BLOCK = re.compile(r"#\s*BEGIN SOLUTION\s*\n(.*?)#\s*END SOLUTION", re.DOTALL)
# Lines this short or generic (``return cost``) appear in given code too; they prove nothing.
MIN_DISTINCTIVE_LENGTH = 24
HIDDEN_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "adaline_kit", "check_question",
                  '"hidden": True', "'hidden': True", '"hidden": true')


def solution_lines(master: nbformat.NotebookNode) -> set[str]:
    """Distinctive code lines inside the master notebook's solution blocks."""
    lines = set()
    for cell in master.cells:
        for block in SOLUTION_BLOCK.findall(cell.source):
            for line in block.splitlines():
                line = line.strip()
                if len(line) >= MIN_DISTINCTIVE_LENGTH and not line.startswith("#"):
                    lines.add(line)
    return lines


def find_leaks(files: dict[str, bytes], master: nbformat.NotebookNode) -> list[str]:
    """One line per leak found in ``files`` (archive name -> content); empty when clean."""
    reference = solution_lines(master)
    leaks = []
    for name, content in sorted(files.items()):
        if name.startswith("lib/") or "/lib/" in name or "adaline_kit/" in name:
            leaks.append(f"{name}: grading code")
            continue
        text = content.decode("utf-8", errors="replace")
        for marker in HIDDEN_MARKERS:
            if marker in text:
                leaks.append(f"{name}: contains {marker!r}")
        for line in sorted(reference):
            if line in text:
                leaks.append(f"{name}: contains the solution line {line!r}")
    return leaks

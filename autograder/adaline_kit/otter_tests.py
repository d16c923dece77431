"""Entry point of the hidden otter test files (``tests/q*.py`` in the autograder zip).

Plain ``otter run`` executes those tests inside the student's kernel; each calls
:func:`check_question`, which runs the kit's checks for one question in-process and prints either
``qN: all hidden checks passed`` (what the doctest expects) or the feedback. In-process results
can be tampered with by student code; the kit's otter plugin re-grades in the sandbox and its
scores replace these.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from . import settings as settings_module
from .assignment import current as current_assignment
from .grade import submission as submission_loader
from .grade.feedback import question_feedback


def _notebook_cells() -> list[str]:
    for path in sorted(Path.cwd().glob("*.ipynb")):
        return submission_loader.load(path).cells
    return []


def check_question(question: str, namespace: dict) -> None:
    settings = settings_module.load()
    assignment = current_assignment()
    data_file = Path(assignment.DATA_FILE)
    with contextlib.redirect_stdout(io.StringIO()):  # the student's own prints
        probe = assignment.in_process_probe(namespace, runtime_spy=False)
        results = assignment.grade_questions(probe, _notebook_cells(), settings,
                                             np.random.default_rng(),
                                             assignment.load_data(data_file),
                                             questions=(question,))
    verdict = results[question]
    if verdict.score >= verdict.max_score:
        print(f"{question}: all hidden checks passed")
    else:
        print(question_feedback(verdict))

"""Grade one submission: load it, run it in a sandboxed session, judge each question.

Whatever the submission does, :func:`grade_submission` returns a complete
:class:`SubmissionReport` (every question scored, a status and a message): an unreadable file,
a crashing notebook or an error in the grader itself become a report, not an exception.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from pathlib import Path

import numpy as np

from .. import checks
from ..data import LectureData
from ..outcomes import CheckResult, QuestionResult
from ..settings import QUESTIONS, Settings
from . import submission as submission_loader
from .sandbox import Zygote
from .session import CellOutcome, Session


@dataclasses.dataclass
class SubmissionReport:
    """``status``: ``graded`` (the notebook ran and was judged), ``invalid`` (the file is not a
    usable notebook) or ``error`` (the grader itself failed; the reason is in ``message``)."""

    name: str
    questions: dict[str, QuestionResult]
    status: str
    message: str = ""
    cells: list[CellOutcome] = dataclasses.field(default_factory=list)
    execution_seconds: float = 0.0
    printed: str = ""
    seed: int = 0
    confinement: str = ""  # how the student process was confined; see confinement_summary()

    @property
    def total(self) -> float:
        return round(sum(q.score for q in self.questions.values()), 4)

    @property
    def max_total(self) -> float:
        return sum(q.max_score for q in self.questions.values())


def zero_questions(settings: Settings, status: str, message: str) -> dict[str, QuestionResult]:
    """Every question at zero points with the same explanation."""
    return {q: QuestionResult(q, 0.0, settings.points[q], status,
                              [CheckResult("notebook", False, 1.0, message)])
            for q in QUESTIONS}


def zero_report(name: str, settings: Settings, status: str, message: str,
                **fields) -> SubmissionReport:
    """A report with every question at zero and ``message``; ``status`` is ``invalid`` (the
    submission is unusable) or ``error`` (the grader failed)."""
    question_status = "failed" if status == "invalid" else "error"
    return SubmissionReport(name, zero_questions(settings, question_status, message), status,
                            message, **fields)


def unusable_message(problem: str) -> str:
    return f"This submission could not be graded: {problem}."


def grader_failure_message(error: BaseException) -> str:
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    return f"The grader failed on this submission ({detail}); please report it."


def confinement_summary(separate_user: bool, landlock: str) -> str:
    """One phrase for the gradebook: ``separate user + landlock ABI 7``, ``separate user (no
    landlock: why)``, ``landlock ABI 7 (same user)`` or ``unconfined: same user, why``."""
    landlock = landlock or "unconfined: no report from the student process"
    if not landlock.startswith("unconfined"):
        return f"separate user + {landlock}" if separate_user else f"{landlock} (same user)"
    reason = landlock.split(":", 1)[1].strip() if ":" in landlock else landlock
    if separate_user:
        return f"separate user (no landlock: {reason})"
    return f"unconfined: same user as the grader, no landlock ({reason})"


def _cell_summary(cells: list[CellOutcome]) -> str:
    if not cells:
        return "Every cell of the notebook ran without an error."
    lines = [f"{len(cells)} cell(s) of the notebook did not finish cleanly "
             "(the rest of the notebook was still graded):"]
    lines += [f"  - code cell {c.index + 1}: {c.error or c.status}" for c in cells[:10]]
    if len(cells) > 10:
        lines.append(f"  - ... and {len(cells) - 10} more")
    return "\n".join(lines)


def grade_submission(path: Path | str, zygote: Zygote, settings: Settings, data: LectureData,
                     data_file: Path, seed: int | None = None) -> SubmissionReport:
    """Grade the notebook or zip at ``path``; ``seed`` fixes the hidden probes' random inputs."""
    path = Path(path)
    started = time.monotonic()
    seed = int(np.random.SeedSequence().entropy % (2**32)) if seed is None else seed
    loaded = submission_loader.load(path)
    if loaded.problem:
        return zero_report(path.name, settings, "invalid", unusable_message(loaded.problem),
                           execution_seconds=time.monotonic() - started, seed=seed)
    try:
        with Session(zygote, loaded.cells, settings.limits, data_file) as session:
            questions = checks.grade_questions(session.probe, loaded.cells, settings,
                                               np.random.default_rng(seed), data)
        if not zygote.alive():  # its failures look like the student's: do not report zeros
            raise RuntimeError("the grading sandbox stopped while this submission was graded")
        cells = sorted(session.cell_outcomes.values(), key=lambda c: c.index)
        confinement = confinement_summary(session.uid is not None, session.confinement)
        return SubmissionReport(path.name, questions, "graded", _cell_summary(cells), cells,
                                time.monotonic() - started, session.printed, seed, confinement)
    except Exception as error:  # noqa: BLE001 - a grader fault must still produce a result
        return zero_report(path.name, settings, "error", grader_failure_message(error),
                           execution_seconds=time.monotonic() - started, seed=seed)

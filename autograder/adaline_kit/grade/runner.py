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

from ..assignment import current as current_assignment
from ..outcomes import CheckResult, ProbeFailure, QuestionResult
from ..settings import Settings
from . import submission as submission_loader
from . import tampering
from .sandbox import Zygote
from .session import MAX_RESTARTS, CellOutcome, Session, Unconfined


@dataclasses.dataclass
class SubmissionReport:
    """``status``: ``graded`` (the notebook ran and was judged), ``flagged`` (graded, and its
    code reached for the grader's machinery: ``flags`` says how, for course staff to look at),
    ``invalid`` (the file is not a usable notebook) or ``error`` (the grader itself failed or
    refused to run unconfined; the reason is in ``message``)."""

    name: str
    questions: dict[str, QuestionResult]
    status: str
    message: str = ""
    cells: list[CellOutcome] = dataclasses.field(default_factory=list)
    execution_seconds: float = 0.0
    printed: str = ""
    seed: int = 0
    confinement: str = ""  # how student code was confined (session.describe_confinement)
    flags: list[str] = dataclasses.field(default_factory=list)  # see grade.tampering

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
            for q in settings.points}


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


class _ProbeLog:
    """Calls ``session.probe`` and notes, per question, the probes answered and the probes
    refused because the session gave up (the notebook's process ended too often)."""

    def __init__(self, session: Session):
        self.session = session
        self.answered: dict[str, int] = {}
        self.refused: dict[str, int] = {}

    def gave_up(self) -> bool:
        return self.session.restarts > MAX_RESTARTS

    def __call__(self, name: str, args: dict) -> dict:
        question = name.split("_", 1)[0]
        try:
            data = self.session.probe(name, args)
        except ProbeFailure:
            tally = self.refused if self.gave_up() else self.answered
            tally[question] = tally.get(question, 0) + 1
            raise
        self.answered[question] = self.answered.get(question, 0) + 1
        return data

    def summary(self, questions) -> str:
        """Which questions were graded, when the session gave up; else ""."""
        if not self.gave_up():
            return ""
        full = [q for q in questions if not self.refused.get(q)]
        part = [q for q in questions if self.refused.get(q) and self.answered.get(q)]
        none = [q for q in questions if self.refused.get(q) and not self.answered.get(q)]
        lines = [f"Grading stopped early: the notebook's process ended {MAX_RESTARTS + 1} "
                 f"times ({MAX_RESTARTS} restarts are allowed)."]
        if not full and not part:
            lines.append("No question was graded (every question scores 0).")
        else:
            if full:
                lines.append(f"Fully graded: {', '.join(full)}.")
            if part:
                lines.append(f"Graded in part (its remaining checks count as failed): "
                             f"{', '.join(part)}.")
            if none:
                lines.append(f"Not graded (0 points): {', '.join(none)}.")
        return " ".join(lines)


def _cell_summary(cells: list[CellOutcome], stopped: str = "") -> str:
    if not cells:
        return stopped or "Every cell of the notebook ran without an error."
    rest = "" if stopped else " (the rest of the notebook was still graded)"
    lines = [stopped] if stopped else []
    lines.append(f"{len(cells)} cell(s) of the notebook did not finish cleanly{rest}:")
    lines += [f"  - code cell {c.index + 1}: {c.error or c.status}" for c in cells[:10]]
    if len(cells) > 10:
        lines.append(f"  - ... and {len(cells) - 10} more")
    return "\n".join(lines)


def _with_note(note: str | None, message: str) -> str:
    return f"{note}\n{message}" if note else message


def grade_submission(path: Path | str, zygote: Zygote, settings: Settings, data,
                     data_file: Path, seed: int | None = None,
                     allow_unconfined: bool = False) -> SubmissionReport:
    """Grade the notebook, zip or submission folder at ``path``; ``seed`` fixes the hidden
    probes' random inputs; ``data``: the assignment's ``load_data(data_file)``.

    Student code must run confined (another user, or Landlock); else the report has status
    ``error`` and says so, unless ``allow_unconfined``."""
    path = Path(path)
    started = time.monotonic()
    seed = int(np.random.SeedSequence().entropy % (2**32)) if seed is None else seed
    loaded = submission_loader.load(path)
    name = loaded.path.name
    if loaded.problem:
        return zero_report(name, settings, "invalid",
                           _with_note(loaded.note, unusable_message(loaded.problem)),
                           execution_seconds=time.monotonic() - started, seed=seed)
    try:
        with Session(zygote, loaded.cells, settings.limits, data_file,
                     allow_unconfined) as session:
            probes = _ProbeLog(session)
            questions = current_assignment().grade_questions(
                probes, loaded.cells, settings, np.random.default_rng(seed), data)
        if not zygote.alive():  # its failures look like the student's: do not report zeros
            raise RuntimeError("the grading sandbox stopped while this submission was graded")
        cells = sorted(session.cell_outcomes.values(), key=lambda c: c.index)
        message = _cell_summary(cells, probes.summary(questions))
        flags = tampering.scan(loaded.cells) + session.flags
        if flags:
            questions = current_assignment().withhold_unproven(questions, settings)
        return SubmissionReport(name, questions, "flagged" if flags else "graded",
                                _with_note(loaded.note, message), cells,
                                time.monotonic() - started, session.printed, seed,
                                session.confinement, flags)
    except Unconfined as refusal:
        return zero_report(name, settings, "error", f"Not graded: {refusal}",
                           execution_seconds=time.monotonic() - started, seed=seed)
    except Exception as error:  # noqa: BLE001 - a grader fault must still produce a result
        return zero_report(name, settings, "error", grader_failure_message(error),
                           execution_seconds=time.monotonic() - started, seed=seed)

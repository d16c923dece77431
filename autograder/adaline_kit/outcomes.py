"""Plain records shared by the checks, the grader and the reports.

A question's score is decided from :class:`CheckResult` records; they carry student-facing
messages only (never a check's code).
"""

from __future__ import annotations

import dataclasses
from typing import Callable


class ProbeFailure(Exception):
    """A probe did not return data. ``kind`` is one of: ``error`` (the student's code raised or
    returned something unusable), ``timeout``, ``crash`` (the student process died), ``memory``
    (the memory limit was hit)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


# probe(name, args) -> plain data; raises ProbeFailure.
Probe = Callable[[str, dict], dict]


@dataclasses.dataclass
class CheckResult:
    """One hidden check of one question.

    ``weight`` is the check's share of the question's points; ``message`` tells the student what
    differed, in words they can act on; ``diagnosis`` is a key of the diagnosis catalogue when the
    evidence names a likely misconception. A failed check with ``method_violation`` set costs the
    configured fraction of the question's points (the question asks for a method, not just for
    numbers). ``withheld`` (a reason) marks a check whose numbers matched but whose credit is
    withheld (the feedback says "withheld", not FAIL).
    """

    name: str
    passed: bool
    weight: float = 1.0
    message: str = ""
    diagnosis: str | None = None
    method_violation: bool = False
    withheld: str = ""


@dataclasses.dataclass
class QuestionResult:
    """The verdict on one question. ``status``: passed, failed, error, timeout, crash or memory.

    ``curve`` holds ``{"student": [...], "reference": [...]}`` per-epoch losses on the lecture's
    data when the question trained a model, for the feedback plot.
    """

    question: str
    score: float
    max_score: float
    status: str
    checks: list[CheckResult] = dataclasses.field(default_factory=list)
    curve: dict | None = None
    penalty: float = 0.0  # points a broken method rule took off

    def check_points(self, check: CheckResult) -> tuple[float, float]:
        """(points earned, points possible) of one of this question's checks."""
        total = sum(c.weight for c in self.checks) or 1.0
        possible = self.max_score * check.weight / total
        return (possible if check.passed else 0.0), possible

    @property
    def diagnoses(self) -> list[str]:
        return [c.diagnosis for c in self.checks if not c.passed and c.diagnosis]

    @staticmethod
    def from_checks(question: str, max_score: float, checks: list[CheckResult],
                    curve: dict | None = None, method_cost: float = 1.0) -> "QuestionResult":
        """Score = max_score x (weight of passed checks / total weight), minus ``method_cost``
        x max_score when a method rule is broken (never below 0)."""
        total = sum(c.weight for c in checks) or 1.0
        passed = sum(c.weight for c in checks if c.passed)
        earned = max_score * passed / total
        broken = any(c.method_violation and not c.passed for c in checks)
        penalty = round(min(earned, method_cost * max_score), 4) if broken else 0.0
        score = round(max(earned - penalty, 0.0), 4)
        status = "passed" if all(c.passed for c in checks) else "failed"
        return QuestionResult(question, score, max_score, status, checks, curve, penalty)

"""The hidden checks (grader side): judge the plain data returned by the probes.

Entry point: :func:`grade_questions`. Every random input is drawn from ``rng`` before any probe
runs, so a failure in one question cannot change what another question is asked.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from adaline_kit.outcomes import CheckResult, Probe, QuestionResult
from . import common, q1, q2, q3, source_rules

GRADERS = {"q1": q1.grade, "q2": q2.grade, "q3": q3.grade}

# The lecture's numbers are public (the published curve and accuracies), so matching them proves
# nothing by itself: these checks earn credit only when the same code also reproduces the
# reference on the grader's other data. Copied, canned or faked lecture results gain nothing.
LECTURE_CHECKS = ("lecture_curve", "lecture_accuracy", "final_weights")
OTHER_DATA_CHECK = "other_data"


def credit_lecture_checks(checks: list[CheckResult]) -> list[CheckResult]:
    """Withhold the credit of the passed lecture-data checks of a question whose other-data
    check failed (they earn nothing and are shown as withheld, with the reason)."""
    if all(c.passed for c in checks if c.name == OTHER_DATA_CHECK):
        return checks
    note = ("Withheld: this matches the lecture's published numbers, but that earns credit only "
            "together with the run on other data, which did not match (see other_data).")
    return [dataclasses.replace(c, passed=False, withheld=note,
                                message=f"{note}\n{c.message}".strip())
            if c.name in LECTURE_CHECKS and c.passed else c for c in checks]


# The check of each question that needs the assignment's computation on inputs drawn at grading
# time: forged or canned data cannot pass it.
VALUE_GATES = {"q1": "gradient_values", "q2": OTHER_DATA_CHECK, "q3": OTHER_DATA_CHECK}


# Checks whose answer follows from the request alone (a shape): they count for everyone only
# together with their question's value gate.
SHAPE_CHECKS = {"q1": ("gradient_shapes",)}


def withhold_unproven(results: dict, settings, only: dict | None = None,
                      note: str = "Withheld: this submission's code reached for the grader's "
                                  "machinery, so only checks backed by a correct computation on "
                                  "the grader's random inputs count, and {gate} did not pass."
                      ) -> dict:
    """In each question whose value gate (:data:`VALUE_GATES`) failed, withhold the passed
    checks named in ``only`` (question -> names; default: every other check), so that what a
    forged probe can produce earns nothing. Used with the default for a submission flagged for
    tampering (see :mod:`adaline_kit.grade.tampering`), with :data:`SHAPE_CHECKS` for all."""
    gated = {}
    for question, result in results.items():
        gate = VALUE_GATES.get(question)
        names = None if only is None else set(only.get(question, ()))
        if gate is None or names == set() or \
                any(c.name == gate and c.passed for c in result.checks):
            gated[question] = result
            continue
        reason = note.format(gate=gate)
        checks = [dataclasses.replace(c, passed=False, withheld=reason,
                                      message=f"{reason}\n{c.message}".strip())
                  if c.passed and c.name != gate and (names is None or c.name in names)
                  else c for c in result.checks]
        rescored = QuestionResult.from_checks(
            question, result.max_score, checks, result.curve,
            method_cost=getattr(settings, "method_rules", {}).get(question, 1.0))
        if result.status not in ("passed", "failed"):
            rescored = dataclasses.replace(rescored, status=result.status)
        gated[question] = rescored
    return gated


def weighted(checks: list[CheckResult], weights: dict) -> list[CheckResult]:
    """The checks with the weights of ``grading.toml`` (``weights``: check name -> weight)."""
    return [dataclasses.replace(c, weight=float(weights[c.name]))
            if c.name in weights and not c.method_violation else c for c in checks]


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything the questions are asked: runs, random inputs and the indexed source."""

    lecture: common.RunSpec
    other: dict                      # question -> RunSpec on other data
    backward: q1.BackwardSpec
    structure: q3.StructureSpec
    index: source_rules.SourceIndex
    marking: q2.MarkingSpec          # q2's marked run and the order of q2's runs


def _expanded(source: str | list[str]) -> str | list[str]:
    """The cells as the student process runs them (cell magics expanded, see grade.magics)."""
    from adaline_kit.grade import magics

    if isinstance(source, str):
        return magics.expand(source)
    return [magics.expand(cell) for cell in source or []]


def make_setup(source: str | list[str], rng: np.random.Generator, data) -> Setup:
    other = {question: common.other_spec(rng) for question in GRADERS}
    backward, structure = q1.backward_spec(rng), q3.structure_spec(rng)
    return Setup(
        lecture=common.lecture_spec(data),
        other=other,
        backward=backward,
        structure=structure,
        index=source_rules.index_source(_expanded(source)),
        marking=q2.marking_spec(rng, other["q2"]),
    )


def grade_questions(probe: Probe, source: str | list[str], settings, rng: np.random.Generator,
                    data, questions: Iterable[str] | None = None) -> dict[str, QuestionResult]:
    """Grade q1..q3 (or only ``questions``; the random inputs are drawn as for all three).

    ``probe(name, args) -> dict`` runs a probe in the student process (raising
    :class:`~adaline_kit.outcomes.ProbeFailure`); each result carries ``"spy"`` counts.
    ``source``: the submission's code cells (a list, or one string); ``data``: the LectureData.
    ``QuestionResult.curve`` holds the lecture-data losses (``student`` empty if the run failed).
    A probe failure marks only its own question (status error/timeout/crash/memory).
    """
    setup = make_setup(source, rng, data)
    wanted = set(GRADERS if questions is None else questions)
    unknown = wanted - set(GRADERS)
    if unknown:
        raise ValueError(f"unknown questions: {sorted(unknown)}")
    results = {}
    for question, grade in GRADERS.items():
        if question not in wanted:
            continue
        max_score = float(settings.points.get(question, 0.0))
        context = common.QuestionContext(probe, question)
        try:
            checks, curve = grade(context, setup)
        except Exception as error:  # noqa: BLE001 - a grader bug must not sink other questions
            detail = f"{type(error).__name__}: {error}"
            message = (f"The grader could not evaluate this question ({detail}); please report "
                       "this.")
            if isinstance(error, (KeyError, IndexError, TypeError, ValueError)):
                message = ("The data your notebook's process sent back for this question was not "
                           f"what the grader asked for ({detail}): code that changes the "
                           "grader's probes gets this. If yours does not, please report it.")
            check = CheckResult("grader", False, 1.0, message)
            results[question] = QuestionResult(question, 0.0, max_score, "error", [check])
            continue
        checks = weighted(checks, getattr(settings, "weights", {}).get(question, {}))
        cost = getattr(settings, "method_rules", {}).get(question, 1.0)
        result = QuestionResult.from_checks(question, max_score, credit_lecture_checks(checks),
                                            curve, method_cost=cost)
        status = context.status()
        if status is not None and result.status != "passed":
            result = dataclasses.replace(result, status=status)
        results[question] = result
    return withhold_unproven(results, settings, only=SHAPE_CHECKS, note=(
        "Withheld: correct shapes earn credit only together with correct values on the "
        "grader's random inputs ({gate}), which did not pass."))


__all__ = ["grade_questions", "make_setup", "Setup", "GRADERS"]

"""Student-facing feedback text: what passed, what failed and the likely cause.

Built only from CheckResult messages and diagnoses, which never contain a check's code.
"""

from __future__ import annotations

from ..outcomes import QuestionResult

STATUS_NOTES = {
    "timeout": "The checks for this question were stopped at the time limit.",
    "crash": "The notebook's process ended while this question was checked.",
    "memory": "This question's code used more memory than allowed.",
    "error": "This question's code raised an error while it was checked.",
}


def _points(value: float) -> str:
    return f"{round(value, 3):g}"


def check_line(question: QuestionResult, check) -> str:
    """``[PASS] other_data 2/2``; a method rule shows what breaking it cost instead of points."""
    mark = "PASS" if check.passed else "WITHHELD" if check.withheld else "FAIL"
    if check.method_violation:
        if check.passed:
            return f"[{mark}] {check.name} (method rule met)"
        share = question.penalty / question.max_score if question.max_score else 0.0
        return (f"[{mark}] {check.name} (method rule broken: -{_points(question.penalty)} "
                f"points, {100 * share:.0f} % of the question)" if question.penalty else
                f"[{mark}] {check.name} (method rule broken)")
    earned, possible = question.check_points(check)
    return f"[{mark}] {check.name} {_points(earned)}/{_points(possible)}"


def question_feedback(question: QuestionResult) -> str:
    """Plain text: a score line, then one line per check with its points (failed and withheld
    ones with their message).

    Leading message lines already shown for an earlier check of the question (one error that
    fails several checks) are not repeated.
    """
    lines = [f"{question.question}: {question.score:g} / {question.max_score:g}"]
    if question.status in STATUS_NOTES:
        lines.append(STATUS_NOTES[question.status])
    shown: set[str] = set()
    for check in question.checks:
        lines.append(check_line(question, check))
        if check.passed or not check.message:
            continue
        message = check.message.splitlines()
        while message and message[0] in shown:  # a leading explanation already given
            message.pop(0)
        shown.update(message)
        lines.extend("    " + line for line in message) if message else \
            lines.append("    (as above)")
    return "\n".join(lines)

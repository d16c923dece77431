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


def question_feedback(question: QuestionResult) -> str:
    """Plain text: a score line, then one line per check (failed ones with their message).

    Leading message lines already shown for an earlier check of the question (one error that
    fails several checks) are not repeated.
    """
    lines = [f"{question.question}: {question.score:g} / {question.max_score:g}"]
    if question.status in STATUS_NOTES:
        lines.append(STATUS_NOTES[question.status])
    shown: set[str] = set()
    for check in question.checks:
        mark = "PASS" if check.passed else "FAIL"
        lines.append(f"[{mark}] {check.name}")
        if check.passed or not check.message:
            continue
        message = check.message.splitlines()
        while message and message[0] in shown:  # a leading explanation already given
            message.pop(0)
        shown.update(message)
        lines.extend("    " + line for line in message) if message else \
            lines.append("    (as above)")
    return "\n".join(lines)

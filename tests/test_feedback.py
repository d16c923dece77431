"""Feedback text: every failed check explained once, tables kept whole."""

from adaline_kit.grade.feedback import question_feedback
from adaline_kit.outcomes import CheckResult, QuestionResult


def test_an_error_that_fails_several_checks_is_explained_once():
    stub = "This part still raises NotImplementedError."
    table = "    epoch       yours   reference"
    question = QuestionResult.from_checks("q1", 4.0, [
        CheckResult("gradient_values", False, 1.0, f"{stub}\nerror while calling backward"),
        CheckResult("lecture_curve", False, 1.0, f"{stub}\nerror while training\n{table}"),
        CheckResult("other_data", False, 1.0, f"differs on other data\n{table}"),
        CheckResult("method_no_autograd", True, 0.0, "fine"),
        CheckResult("lecture_accuracy", False, 1.0, stub),
    ])
    text = question_feedback(question)
    assert text.count(stub) == 1
    assert text.count(table) == 2  # each curve keeps its own table header
    assert "error while training" in text and "(as above)" in text
    assert "fine" not in text and "[PASS] method_no_autograd" in text

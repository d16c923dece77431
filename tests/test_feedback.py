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


def test_every_check_line_shows_its_points_and_withheld_is_not_fail():
    from adaline_kit.assignments.adaline_autograd.checks import credit_lecture_checks

    checks = credit_lecture_checks([
        CheckResult("gradient_values", True, 2.0, "ok"),
        CheckResult("lecture_curve", True, 2.0, "matches"),
        CheckResult("other_data", False, 2.0, "differs on other data"),
        CheckResult("method_no_autograd", False, 0.0, "uses torch.autograd", None, True),
    ])
    question = QuestionResult.from_checks("q1", 3.0, checks, method_cost=0.25)
    text = question_feedback(question)
    # 2 of 6 weight passed: 1 point earned; the rule costs 0.25 x 3 = 0.75 of it.
    assert question.score == 0.25 and question.penalty == 0.75
    assert "[PASS] gradient_values 1/1" in text
    assert "[WITHHELD] lecture_curve 0/1" in text and "[FAIL] lecture_curve" not in text
    assert "[FAIL] other_data 0/1" in text
    assert "[FAIL] method_no_autograd (method rule broken: -0.75 points, 25 % of the question)" \
        in text


def test_method_cost_never_takes_more_than_the_checks_earned():
    question = QuestionResult.from_checks("q2", 3.0, [
        CheckResult("other_data", False, 2.0, "wrong"),
        CheckResult("lecture_curve", True, 1.0, "ok"),
        CheckResult("method_autograd_grad", False, 0.0, "backward", None, True),
    ], method_cost=0.5)
    assert question.score == 0.0 and question.penalty == 1.0

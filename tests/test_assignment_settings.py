"""grading.toml's strictness, the answer key and the declarations (fast, no kernels).

The lecture's published numbers are typed here from the lecture, not computed by the kit.
"""

from __future__ import annotations

import dataclasses
import json

import nbformat
import pytest

from adaline_kit import settings
from adaline_kit.assignments.adaline_autograd import answer_key, reference
from adaline_kit.build import declarations, paths, verdict_problems
from adaline_kit.assignments.adaline_autograd.reference_run import ReferenceError, cross_check
from adaline_kit.assignments.adaline_autograd.checks import GRADERS
from adaline_kit.assignments.adaline_autograd.checks.common import lecture_spec, other_spec
from adaline_kit.assignments.adaline_autograd.data import prepare_lecture_split

PUBLISHED = [0.38849, 0.31679, 0.26379, 0.22463, 0.19527, 0.17307, 0.15629, 0.14352, 0.13360,
             0.12600, 0.12007, 0.11547, 0.11178, 0.10884, 0.10656, 0.10470, 0.10320, 0.10200,
             0.10105, 0.10025]
GOOD = settings.SETTINGS_FILE.read_text(encoding="utf-8")


def _load(tmp_path, text: str):
    path = tmp_path / "grading.toml"
    path.write_text(text, encoding="utf-8")
    return settings.load(path)


# --- the lecture, with the default settings -------------------------------------------------------

def test_default_settings_are_the_lectures():
    assignment = settings.load().assignment
    assert assignment.run_settings() == {"num_epochs": 20, "learning_rate": 0.01, "seed": 123,
                                         "minibatch_size": 10}
    assert (assignment.data_rows, assignment.features, assignment.train_size) == \
        ((50, 150), (1, 2), 70)


def test_recorded_answer_key_reproduces_the_lecture_for_every_question():
    key = answer_key.load()
    assert sorted(key.questions) == ["q1", "q2", "q3"]
    for question, run in key.questions.items():
        assert [round(c, 5) for c in run["costs"]] == PUBLISHED, question
        assert round(run["accuracies"]["training"], 2) == 92.86, question
        assert round(run["accuracies"]["test"], 2) == 93.33, question


def test_independent_reference_reproduces_the_lecture():
    spec = lecture_spec(prepare_lecture_split())
    costs, w, b = spec.reference()
    assert [round(c, 5) for c in costs] == PUBLISHED
    (_, x_train, y_train), (_, x_test, y_test) = spec.evaluate
    assert round(reference.accuracy(reference.net_inputs(x_train, w, b), y_train), 2) == 92.86
    assert round(reference.accuracy(reference.net_inputs(x_test, w, b), y_test), 2) == 93.33


def test_student_notebook_quotes_the_answer_key():
    text = "\n".join(c.source for c in nbformat.read(paths.STUDENT_NOTEBOOK, 4).cells)
    assert "92.86 % (training) and 93.33 % (test)" in text
    assert "num_epochs=20, learning_rate=0.01" in text and "{assignment[" not in text


# --- the answer key is refused when it disagrees ------------------------------------------------

def _key_with(change):
    key = answer_key.load()
    questions = json.loads(json.dumps(key.questions))
    change(questions)
    return dataclasses.replace(key, questions=questions)


def test_cross_check_accepts_the_recorded_key():
    cross_check(answer_key.load(), lecture_spec(prepare_lecture_split()))


def test_cross_check_names_the_epoch_and_size_of_a_difference():
    def sign_error_from_epoch_3(questions):
        questions["q2"]["costs"][2] *= 1.01

    with pytest.raises(ReferenceError) as caught:
        cross_check(_key_with(sign_error_from_epoch_3), lecture_spec(prepare_lecture_split()))
    message = str(caught.value)
    assert "q2" in message and "epoch 3" in message and "difference +0.0026" in message
    assert "\n" not in message


@pytest.mark.parametrize("change,words", [
    (lambda q: q["q1"]["weight"].__setitem__(0, q["q1"]["weight"][0] * -1), "final weight"),
    (lambda q: q["q3"]["costs"].pop(), "19 losses for 20 epochs"),
    (lambda q: q["q1"]["accuracies"].__setitem__("test", 90.0), "test accuracy"),
])
def test_cross_check_refuses_other_disagreements(change, words):
    with pytest.raises(ReferenceError, match=words):
        cross_check(_key_with(change), lecture_spec(prepare_lecture_split()))


def test_stale_answer_key_is_one_line(tmp_path):
    changed = dataclasses.replace(settings.load().assignment, num_epochs=30)
    with pytest.raises(answer_key.AnswerKeyError) as caught:
        answer_key.load(assignment=changed)
    assert "num_epochs" in str(caught.value) and "adaline-kit build" in str(caught.value)
    with pytest.raises(answer_key.AnswerKeyError, match="missing"):
        answer_key.load(tmp_path / "answer_key.json")


def test_answer_key_records_grading_tomls_scoring_declarations():
    """Build recorded the [points], [weights] and [method_rules] grading.toml holds (read here
    with tomllib, not through the kit); the shipped key is accepted for them."""
    import tomllib

    raw = tomllib.loads(GOOD)
    recorded = answer_key.load().scoring
    assert recorded["points"] == raw["points"]
    assert recorded["method_rules"] == raw["method_rules"]
    for question, weights in raw["weights"].items():
        assert recorded["weights"][question] == weights, question
    answer_key.load(scoring=settings.load().scoring())


@pytest.mark.parametrize("old,new,words", [
    ("q1 = 4", "q1 = 5", "[points] q1: 4 -> 5"),
    ("lecture_accuracy = 1\nother_data = 2\n\n[weights.q2]",
     "lecture_accuracy = 3\nother_data = 2\n\n[weights.q2]",
     "[weights.q1] lecture_accuracy: 1 -> 3"),
    ("[method_rules]\nq1 = 0.5", "[method_rules]\nq1 = 0.25", "[method_rules] q1: 0.5 -> 0.25"),
])
def test_answer_key_refuses_scoring_changed_since_the_build(tmp_path, old, new, words):
    """Points, weights or method rules edited without a build: one line naming the change."""
    assert GOOD.count(old) == 1
    changed = _load(tmp_path, GOOD.replace(old, new))
    with pytest.raises(answer_key.AnswerKeyError) as caught:
        answer_key.load(scoring=changed.scoring())
    message = str(caught.value)
    assert words in message and message.endswith("run adaline-kit build"), message
    assert "\n" not in message and message.count(" -> ") == 1
    # The numbers the notebook quotes depend on [assignment] only: still readable without scoring.
    answer_key.load()


def test_malformed_answer_key_is_one_line(tmp_path):
    raw = json.loads(answer_key.ANSWER_KEY_FILE.read_text(encoding="utf-8"))
    del raw["questions"]["q2"]["costs"]
    path = tmp_path / "answer_key.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(answer_key.AnswerKeyError,
                       match=r"questions/q2: 'costs' is a required property"):
        answer_key.load(path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(answer_key.AnswerKeyError, match="not JSON"):
        answer_key.load(path)


# --- grading.toml is strict ---------------------------------------------------------------------

@pytest.mark.parametrize("old,new,words", [
    ("q1 = 4", "q1 = -4", "[points] q1 = -4: expected a positive number"),
    ("q1 = 4", 'q1 = "four"', "[points] q1 = 'four': expected a positive number"),
    ("q2 = 3\n", "", "[points] q2 is missing"),
    ("q3 = 3\n", "q3 = 3\nq4 = 2\n", "[points] q4: the question is declared but has no hidden"),
    ("num_epochs = 20", "num_epochs = 2.5", "[assignment] num_epochs = 2.5: expected a whole"),
    ("learning_rate = 0.01", "learning_rate = -1", "[assignment] learning_rate = -1"),
    ("train_size = 70", "train_size = 100", "[assignment] train_size = 100: expected 2..99"),
    ("seed = 123", "sead = 123", "[assignment] unknown key 'sead'"),
    ("memory_mib = 160", "memory_mib = 160.5", "[limits] memory_mib = 160.5: expected a positive"),
    ("[results]", "[resluts]", "unknown table [resluts]"),
    ('hidden_visibility = "after_due_date"', 'hidden_visibility = "later"',
     "[results] hidden_visibility = 'later'"),
    ("q1 = 4", "q1 = ", "not valid TOML"),
])
def test_bad_grading_toml_is_one_line_naming_file_and_place(tmp_path, old, new, words):
    assert old in GOOD
    with pytest.raises(settings.SettingsError) as caught:
        _load(tmp_path, GOOD.replace(old, new, 1))
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "grading.toml") + ": ")
    assert words in message and "\n" not in message


def test_good_grading_toml_loads_its_values(tmp_path):
    loaded = _load(tmp_path, GOOD.replace("num_epochs = 20", "num_epochs = 30")
                   .replace("train_size = 70", "train_size = 80"))
    assert loaded.assignment.num_epochs == 30 and loaded.assignment.test_size == 20
    assert loaded.points == {"q1": 4.0, "q2": 3.0, "q3": 3.0} and loaded.max_total == 10


def test_questions_with_points_are_those_with_hidden_checks():
    assert tuple(GRADERS) == settings.questions()


# --- the declarations -------------------------------------------------------------------------------

def _master():
    return nbformat.read(paths.MASTER_NOTEBOOK, as_version=4)


def test_declarations_of_the_shipped_kit_agree():
    declarations.check(settings.load().points, GRADERS, _master(), "master", paths.PUBLIC_TESTS)


def test_undeclared_question_in_the_notebook_is_refused():
    master = _master()
    master.cells.append(nbformat.v4.new_markdown_cell("## Part 4 (q4, {points[q4]} points)",
                                                      id="part-4"))
    with pytest.raises(declarations.DeclarationError,
                       match="cell 'part-4': a points placeholder for q4, which grading.toml"):
        declarations.check(settings.load().points, GRADERS, master, "master", paths.PUBLIC_TESTS)


def test_declared_question_without_checks_or_public_test_is_refused(tmp_path):
    points = dict(settings.load().points, q4=2.0)
    with pytest.raises(declarations.DeclarationError, match="q4: declared, but there are no"):
        declarations.check(points, GRADERS, _master(), "master", paths.PUBLIC_TESTS)
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "q1.py").write_text("")
    with pytest.raises(declarations.DeclarationError, match="tests/q2.py: missing"):
        declarations.check(settings.load().points, GRADERS, _master(), "master", tests)


def test_a_written_total_must_be_the_graders():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("| | | **Total** | **12** |", id="intro")])
    with pytest.raises(declarations.DeclarationError, match="says Total 12, the grader's total"):
        declarations.check_total(notebook, 10.0, "master")
    declarations.check_total(notebook, 12.0, "master")


# --- build's self-check -------------------------------------------------------------------------

def _results(scores: dict, maxima: dict) -> dict:
    return {"score": sum(scores.values()),
            "tests": [{"name": q, "score": scores[q], "max_score": maxima[q]} for q in scores]}


POINTS = {"q1": 4.0, "q2": 3.0, "q3": 3.0}


def test_self_check_passes_the_declared_total_and_zero_stubs():
    verdicts = {"reference solution": _results(POINTS, POINTS),
                "untouched student notebook": _results(dict.fromkeys(POINTS, 0.0), POINTS)}
    assert verdict_problems(verdicts, POINTS) == []


def test_self_check_fails_a_fallback_result():
    fallback = {"score": 0.0, "tests": [], "output": "The autograder could not start."}
    problems = verdict_problems({"reference solution": fallback,
                                 "untouched student notebook": fallback}, POINTS)
    assert any("reference solution got 0 of the declared 10" in p for p in problems)
    assert any("no questions" in p for p in problems)


def test_self_check_fails_a_question_worth_other_points():
    zero_q2 = dict(POINTS, q2=0.0)
    verdicts = {"reference solution": _results(zero_q2, zero_q2),
                "untouched student notebook": _results(dict.fromkeys(POINTS, 0.0), zero_q2)}
    assert "reference solution: q2 is worth 0, declared 3" in verdict_problems(verdicts, POINTS)


# --- other data avoids the lecture's settings ---------------------------------------------------

@pytest.mark.parametrize("lecture", [
    {"num_epochs": 20, "learning_rate": 0.01, "seed": 123, "minibatch_size": 10},
    {"num_epochs": 7, "learning_rate": 0.05, "seed": 99, "minibatch_size": 8},
])
def test_other_data_avoids_the_lecture_settings_and_the_signature_defaults(monkeypatch, lecture):
    import numpy as np

    from adaline_kit.assignments.adaline_autograd.checks import common

    for name, value in lecture.items():
        monkeypatch.setitem(common.LECTURE_SETTINGS, name, value)
    rng = np.random.default_rng(0)
    for _ in range(300):
        spec = other_spec(rng)
        assert spec.learning_rate not in (0.01, lecture["learning_rate"])
        assert spec.seed not in (123, lecture["seed"]) and spec.num_epochs != lecture["num_epochs"]
        batches = -(-spec.n // spec.minibatch_size)
        assert batches not in (-(-spec.n // 10), -(-spec.n // lecture["minibatch_size"]))


# --- the notebook's data cells build the split data.py builds, for any settings ----------------

@pytest.mark.parametrize("changes", [
    {},
    {"seed": 7, "train_size": 80},
    {"standardise": False},
    {"features": (0, 3), "data_rows": (0, 100)},
])
def test_notebook_data_cells_build_the_declared_split(monkeypatch, changes):
    import torch

    from adaline_kit.build.student_notebook import Values, make_student_notebook

    assignment = dataclasses.replace(settings.load().assignment, **changes)
    values = Values(settings.load().points, assignment, answer_key.load())
    student = make_student_notebook(_master(), values)
    cells = [c.source for c in student.cells if c.cell_type == "code"
             and ("iris.data" in c.source or "X_train, X_test = X[idx" in c.source)]
    assert len(cells) == 2
    assert ("mu, sigma" in cells[1]) == assignment.standardise
    markdown = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    assert ("Then standardise each feature" in markdown) == assignment.standardise
    assert "IF" not in "\n".join(c.source for c in student.cells if "END IF" in c.source)
    monkeypatch.chdir(paths.REPO)
    namespace = {"torch": torch, "csv": __import__("csv")}
    for source in cells:
        exec(compile(source, "data cell", "exec"), namespace)
    ours = prepare_lecture_split(paths.DATA_FILE, assignment).as_lists()
    for name in ("X_train", "y_train", "X_test", "y_test"):
        assert namespace[name].tolist() == ours[name], name

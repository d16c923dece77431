"""Grader validation: ``adaline-kit validate`` over the corpus of correct and wrong submissions.

The corpus (the assignment package's ``corpus/``, written by ``casebook.py`` from ``cases_*.py``) states what the
grader must say about each submission; ``validate`` grades them all and fails when a verdict, a
diagnosis or the feedback is off. These tests run it as a user does and also check that it
fails when it should (a wrong expectation, a missing file, hidden code in the feedback).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adaline_kit.assignments.adaline_autograd import CORPUS
from adaline_kit.build import paths
from adaline_kit.assignments.adaline_autograd.checks import diagnoses
from adaline_kit.validate import (CorpusCase, Received, QuestionOutcome, diagnoses_in_text,
                                  hidden_code_lines, judge, leaked_lines)

sys.path.insert(0, str(CORPUS))

import casebook  # noqa: E402 - lives in the corpus folder

CASEBOOK = Path(casebook.__file__).relative_to(paths.REPO).as_posix()

RATES = re.compile(r"^catch rate (?P<catch>[\d.]+|n/a)% of (?P<wrong>\d+) wrong submissions, "
                   r"false-failure rate (?P<false>[\d.]+|n/a)% of (?P<correct>\d+) correct "
                   r"submissions$")


def adaline_kit(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).with_name("adaline-kit")
    command = [str(executable)] if executable.exists() else [shutil.which("adaline-kit")]
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=timeout)


PUBLIC_RATES = re.compile(r"^public checks: catch rate (?P<catch>[\d.]+|n/a)% of (?P<wrong>\d+) "
                          r"wrong submissions, false-failure rate (?P<false>[\d.]+|n/a)% of "
                          r"(?P<correct>\d+) correct submissions$")


def rates(stdout: str, pattern: re.Pattern = RATES) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        match = pattern.match(line)
        if match:
            return match.groupdict()
    raise AssertionError(f"no rates line in: {stdout[-500:]!r}")


def corpus_files(group: str) -> list[Path]:
    return sorted(p for p in (CORPUS / group).iterdir() if not p.name.endswith(".expect.json"))


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """One ``adaline-kit validate`` over the correct and wrong groups, with its JSON report."""
    report = tmp_path_factory.mktemp("validate") / "report.json"
    completed = adaline_kit("--help")
    assert "validate" in completed.stdout
    completed = adaline_kit("validate", "--group", "correct", "--group", "wrong",
                            "--report", str(report))
    return completed, json.loads(report.read_text()) if report.exists() else None


# --- the corpus, graded ----------------------------------------------------------------------

def test_validate_catches_every_mistake_and_fails_no_correct_answer(corpus_run):
    completed, report = corpus_run
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-3000:]
    figures = rates(completed.stdout)
    assert figures["catch"] == "100.0" and figures["false"] == "0.0"
    assert int(figures["wrong"]) == len(corpus_files("wrong")) >= 20
    assert int(figures["correct"]) == len(corpus_files("correct")) >= 12
    assert "FAIL" not in completed.stdout
    assert report["catch"] == {"caught": int(figures["wrong"]), "wrong": int(figures["wrong"])}
    assert report["false_failures"]["failed"] == 0


def test_public_checks_catch_most_mistakes_and_fail_no_correct_answer(corpus_run):
    """The public checks run on every correct and wrong case: no correct case fails one, and
    at least 80 % of the wrong cases fail the public check of their question."""
    completed, report = corpus_run
    public = rates(completed.stdout, PUBLIC_RATES)
    assert int(public["correct"]) == len(corpus_files("correct"))
    assert int(public["wrong"]) == len(corpus_files("wrong"))
    assert public["false"] == "0.0", completed.stdout[-4000:]
    assert float(public["catch"]) >= 80.0, completed.stdout[-4000:]
    by_case = {c["case"]: c["public"] for c in report["cases"]}
    # Cheap slips the old two-sample public examples passed, now caught before submission.
    for name, question in (("q1_missing_two_over_n", "q1"), ("q1_wrong_n", "q1"),
                           ("q2_seed_each_epoch", "q2"), ("q2_learning_rate_ignored", "q2"),
                           ("q2_seed_ignored", "q2"), ("q2_dataloader_shuffle", "q2"),
                           ("q3_no_zero_grad", "q3"), ("q3_momentum", "q3"),
                           ("q3_minibatch_size_ignored", "q3"), ("q1_uses_autograd", "q1"),
                           ("q2_backward_not_grad", "q2"), ("q3_adam", "q3")):
        assert by_case[f"wrong/{name}.ipynb"][question] is False, name


def test_every_wrong_case_gets_its_diagnosis_in_words(corpus_run):
    _, report = corpus_run
    wrong = [c for c in report["cases"] if c["group"] == "wrong"]
    assert wrong
    for case in wrong:
        assert case["diagnosis"], f"{case['case']} names no diagnosis"
        for question, key in case["diagnosis"].items():
            received = case["questions"][question]
            assert received["score"] < received["max_score"], case["case"]
            assert key in received["diagnoses"], (case["case"], received["diagnoses"])
            assert key in diagnoses_in_text(received["feedback"]), \
                f"{case['case']}: the feedback does not explain {key}:\n{received['feedback']}"
        for question, expectation in case["expect"].items():
            if expectation == "full":
                received = case["questions"][question]
                assert received["score"] == received["max_score"], (case["case"], question)


def test_correct_cases_keep_full_marks_without_diagnoses(corpus_run):
    _, report = corpus_run
    correct = [c for c in report["cases"] if c["group"] == "correct"]
    assert len(correct) >= 12
    for case in correct:
        for question, received in case["questions"].items():
            assert received["score"] == received["max_score"], (case["case"], question)
            assert received["diagnoses"] == [], (case["case"], question)


def test_feedback_never_shows_hidden_code(corpus_run):
    _, report = corpus_run
    hidden = hidden_code_lines()
    assert len(hidden) > 200
    for case in report["cases"]:
        texts = [case["output"]] + [q["feedback"] for q in case["questions"].values()]
        assert leaked_lines("\n".join(texts), hidden) == [], case["case"]


def test_curve_feedback_compares_every_epoch(corpus_run):
    """A wrong training loop's feedback shows the per-epoch table and the first divergence."""
    _, report = corpus_run
    case = next(c for c in report["cases"] if c["case"] == "wrong/q2_seed_each_epoch.ipynb")
    feedback = case["questions"]["q2"]["feedback"]
    assert "epoch       yours   reference" in feedback
    assert "<- first difference" in feedback and "leave the reference at epoch 2" in feedback
    assert re.search(r"^\s+20\s+\d\.\d{6}\s+\d\.\d{6}$", feedback, re.MULTILINE)


# --- validate must fail when the grader and the corpus disagree -------------------------------

def _write(case: casebook.Case, root: Path) -> Path:
    path = root / case.group / f"{case.name}{case.suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(casebook.build_case(case))
    return path


def test_wrong_expectations_make_validate_fail(tmp_path):
    """A correct notebook labelled as losing q1, and a wrong one labelled as correct."""
    full = {"q1": "full", "q2": "full", "q3": "full"}
    _write(casebook.Case("reference_said_wrong", "wrong", "the reference, mislabelled",
                         {"q1": "loses", "q2": "full", "q3": "full"},
                         diagnosis={"q1": "sign_flipped"}), tmp_path)
    sign_flipped = (CORPUS / "wrong" / "q1_sign_flipped.ipynb").read_text()
    notebook = json.loads(sign_flipped)
    notebook["metadata"]["adaline_kit_case"] = {"description": "mislabelled", "expect": full,
                                                "diagnosis": {}, "feedback": {}}
    (tmp_path / "correct").mkdir()
    (tmp_path / "correct" / "sign_flipped_said_correct.ipynb").write_text(json.dumps(notebook))

    completed = adaline_kit("validate", "--corpus", str(tmp_path), "--jobs", "2")
    assert completed.returncode == 1, completed.stdout + completed.stderr
    figures = rates(completed.stdout)
    assert (figures["catch"], figures["wrong"]) == ("0.0", "1")
    assert (figures["false"], figures["correct"]) == ("100.0", "1")
    assert re.search(r"^FAIL wrong/reference_said_wrong.ipynb: q1: the mistake was missed "
                     r".*q1: diagnosis sign_flipped missing", completed.stdout, re.MULTILINE)
    assert re.search(r"^FAIL correct/sign_flipped_said_correct.ipynb: q1: a correct answer "
                     r"lost points", completed.stdout, re.MULTILINE)


def test_missing_case_file_is_a_one_line_error(tmp_path):
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "ghost.ipynb.expect.json").write_text(
        json.dumps({"expect": {"q1": "loses"}, "diagnosis": {}, "feedback": {}}))
    completed = adaline_kit("validate", "--corpus", str(tmp_path))
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines() == [
        "Error: corpus case wrong/ghost.ipynb: the file is missing (its expectations are in "
        "ghost.ipynb.expect.json)"]


@pytest.mark.parametrize("content,reason", [
    ("{not json", "cannot read its expectations"),
    (json.dumps({"nbformat": 4, "metadata": {}, "cells": []}), "has no 'adaline_kit_case'"),
    (json.dumps({"metadata": {"adaline_kit_case": {"expect": {"q1": "maybe"}}}}),
     "expectation 'maybe' for q1"),
    (json.dumps({"metadata": {"adaline_kit_case": {"expect": {"q1": "loses"},
                                                   "diagnosis": {"q1": "typo"}}}}),
     "diagnosis 'typo' for q1 is not in the diagnosis catalogue"),
])
def test_unreadable_expectations_are_a_one_line_error(tmp_path, content, reason):
    (tmp_path / "correct").mkdir()
    (tmp_path / "correct" / "case.ipynb").write_text(content)
    completed = adaline_kit("validate", "--corpus", str(tmp_path))
    assert completed.returncode == 1
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: corpus case correct/case.ipynb: ")
    assert reason in lines[0]


def test_hidden_code_in_feedback_is_caught():
    hidden = hidden_code_lines()
    line = "expected_w, expected_b = reference.negative_gradients(spec.x, spec.yhat, spec.y)"
    assert line in hidden
    case = CorpusCase("correct", "x.ipynb", Path("x.ipynb"), {"q1": "full"}, {}, {})
    clean = Received("graded", {"q1": QuestionOutcome(4, 4, [], "q1: 4 / 4\n[PASS] checks")})
    assert judge(case, clean, hidden) == []
    leaking = Received("graded", {"q1": QuestionOutcome(4, 4, [], "q1: 4 / 4\n    " + line)})
    assert any("hidden checks' code" in p for p in judge(case, leaking, hidden))


def test_diagnosis_not_shown_in_feedback_is_caught():
    case = CorpusCase("wrong", "x.ipynb", Path("x.ipynb"), {"q1": "loses"},
                      {"q1": "sign_flipped"}, {})
    message = diagnoses.BY_KEY["sign_flipped"].message
    shown = Received("graded", {"q1": QuestionOutcome(1, 4, ["sign_flipped"],
                                                      "[FAIL] gradient_values\n    " + message)})
    assert judge(case, shown, set()) == []
    silent = Received("graded", {"q1": QuestionOutcome(1, 4, ["sign_flipped"],
                                                       "[FAIL] gradient_values")})
    assert judge(case, silent, set()) == ["q1: diagnosis sign_flipped is not explained in the "
                                          "feedback"]


# --- diagnoses the corpus needed ----------------------------------------------------------------

@pytest.mark.parametrize("error,key", [
    ("NotImplementedError: q1: implement Adaline1.backward", "stub_untouched"),
    ("NotImplementedError", "stub_untouched"),
    # torch's NotImplementedError for a dtype without a kernel is not an untouched stub:
    ("NotImplementedError: \"mse_cpu\" not implemented for 'Long'", "integer_labels"),
    ("NotImplementedError: \"mse_cpu\" not implemented for 'Half'", None),
    ("RuntimeError: expected m1 and m2 to have the same dtype, but got: float != int",
     "integer_labels"),
    ("RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn",
     "loss_detached"),
])
def test_probe_error_diagnoses(error, key):
    found = diagnoses.diagnose({"error": error}, diagnoses.PROBE_ERRORS)
    assert (found[0] if found else None) == key


# --- the committed corpus is what casebook builds -------------------------------------------------

def test_committed_corpus_matches_casebook():
    cases = casebook.all_cases()
    groups = {case.group for case in cases}
    assert {"correct", "wrong"} <= groups
    expected_files = set()
    for case in cases:
        assert case.path.is_file(), f"{case.path.relative_to(CORPUS)} is missing: run " \
                                    "python " + CASEBOOK
        assert case.path.read_bytes() == casebook.build_case(case), \
            f"{case.path.relative_to(CORPUS)} is stale: run python " + CASEBOOK
        expected_files.add(case.path)
        sidecar = case.path.with_name(case.path.name + ".expect.json")
        if case.raw is not None or case.suffix != ".ipynb" or case.transform is not None:
            meta = {"description": case.description, "expect": case.expect,
                    "diagnosis": case.diagnosis, "feedback": case.feedback}
            assert json.loads(sidecar.read_text()) == meta, sidecar.name
            expected_files.add(sidecar)
    present = {p for group in groups for p in (CORPUS / group).iterdir() if p.is_file()}
    assert sorted(map(str, present - expected_files)) == [], "files no case builds"


def test_case_names_are_unique_and_wrong_cases_make_one_mistake():
    cases = casebook.all_cases()
    labels = [(c.group, c.name) for c in cases]
    assert len(labels) == len(set(labels))
    for case in cases:
        if case.group != "wrong" or case.base == "student" or len(case.diagnosis) > 1:
            continue
        losing = [q for q, e in case.expect.items() if e != "full"]
        assert losing == list(case.diagnosis), case.name


# --- the Gradescope path ----------------------------------------------------------------------------

def test_validate_through_the_autograder_zip(tmp_path, autograder_zip):
    """--gradescope: each case through the zip's run_autograder; diagnoses read from the text."""
    for group, name in (("correct", "q2_grad_one_call.ipynb"), ("wrong", "q3_no_zero_grad.ipynb")):
        (tmp_path / group).mkdir()
        shutil.copy(CORPUS / group / name, tmp_path / group / name)
    report = tmp_path / "report.json"
    completed = adaline_kit("validate", "--corpus", str(tmp_path), "--autograder",
                            str(autograder_zip), "--report", str(report))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert rates(completed.stdout) == {"catch": "100.0", "wrong": "1", "false": "0.0",
                                       "correct": "1"}
    data = json.loads(report.read_text())
    assert data["mode"] == "gradescope"
    wrong = next(c for c in data["cases"] if c["group"] == "wrong")
    assert "gradients_accumulate" in wrong["questions"]["q3"]["diagnoses"]

"""Hardened grading (issue 4): student code cannot raise its own score, no submission is lost.

Every case of the corpus's ``cases_faults.py`` and ``cases_adversarial.py`` (plus the reference
as a control) is graded once, through the built autograder zip exactly as Gradescope runs it
(``run_like_gradescope``: ``run_autograder``, the zip's own ``lib/``, an interpreter that the
student user can read, like setup.sh's ``/opt`` install, and that cannot import the kit from this
checkout). Run as root, as CI does, the student code then runs as the
unprivileged user ``nobody``. The tests below check the graded results: valid ``results.json``,
no question above its honest score, untouched questions at full credit, feedback that says what
happened, no surviving process, no unpickled log, nothing read from the hidden tests.

The last tests show the attacks are real: plain otter (``otter run`` on a zip without the kit's
plugin) and the kit's own checks run inside the notebook's process (``check_question``, what
otter's in-kernel hidden tests do) give points the hardened grader refuses.
"""

from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from adaline_kit.assignments.adaline_autograd import CORPUS
from adaline_kit.grade import gradescope_results
from adaline_kit.grade.emulation import run_like_gradescope
from adaline_kit.sandbox import landlock
from adaline_kit.settings import load

if str(CORPUS) not in sys.path:
    sys.path.insert(0, str(CORPUS))

import casebook  # noqa: E402
import cases_adversarial  # noqa: E402
import cases_escape  # noqa: E402
import cases_faults  # noqa: E402

SETTINGS = load()
CASES = cases_faults.CASES + cases_adversarial.CASES + cases_escape.CASES
BY_NAME = {case.name: case for case in CASES}
ORPHANS = cases_faults.ORPHANS
MARKERS = {**cases_faults.MARKERS, **cases_adversarial.MARKERS, **cases_escape.MARKERS}
OUTPUT = cases_faults.OUTPUT
STATUS = cases_faults.STATUS
REPORTS = {**cases_adversarial.REPORTS, **cases_escape.REPORTS}
SLOW_WORDS = ("endless", "alarm")  # cases that wait for a time limit: started first
TMP = Path(tempfile.gettempdir())


@dataclasses.dataclass
class Graded:
    results: dict
    seconds: float
    root: str                  # the emulated /autograder's parent folder (removed afterwards)
    on_disk_later: dict | None  # results.json as found on disk a moment after grading
    survivors: list[str]       # command lines of processes the case started, still running
    markers: list[str]         # marker files that appeared


def _processes_with(marker: str) -> dict[int, str]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in command:
            found[int(entry)] = command
    return found


def _survivors(marker: str, patience: float = 3.0) -> list[str]:
    """Processes still running ``patience`` seconds after grading; killed (by pid) if any."""
    deadline = time.monotonic() + patience
    while True:
        found = _processes_with(marker)
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return sorted(found.values())


def _grade(autograder_zip: Path, submission: Path, python: Path, name: str) -> Graded:
    marker = MARKERS.get(name)
    if marker:
        (TMP / marker).unlink(missing_ok=True)
    root = Path(tempfile.mkdtemp(prefix="adaline-kit-hardening-"))
    try:
        started = time.monotonic()
        results = run_like_gradescope(autograder_zip, submission, python, workdir=root)
        seconds = time.monotonic() - started
        survivors = _survivors(ORPHANS[name]) if name in ORPHANS else []
        if name == "writes_fake_results":
            time.sleep(1.5)  # its child rewrote the results every 0.5 s while it lived
        results_file = root / "autograder" / "results" / "results.json"
        on_disk = json.loads(results_file.read_text()) if results_file.is_file() else None
        markers = [marker] if marker and (TMP / marker).exists() else []
        return Graded(results, seconds, str(root), on_disk, survivors, markers)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def graded(autograder_zip, gradescope_python, reference_notebook, tmp_path_factory):
    """Every case graded once through the emulated Gradescope, two at a time."""
    folder = tmp_path_factory.mktemp("hardening-cases")
    submissions = {"reference": reference_notebook}
    for case in CASES:
        path = folder / f"{case.name}{case.suffix}"
        path.write_bytes(casebook.build_case(case))
        submissions[case.name] = path
    order = sorted(submissions, key=lambda n: not any(word in n for word in SLOW_WORDS))
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        outcomes = pool.map(lambda n: _grade(autograder_zip, submissions[n], gradescope_python,
                                             n), order)
        graded = dict(zip(order, outcomes))
    print(f"\ngraded {len(graded)} submissions in {time.monotonic() - started:.0f} s; slowest: "
          + ", ".join(f"{n} {g.seconds:.0f} s" for n, g in
                      sorted(graded.items(), key=lambda item: -item[1].seconds)[:5]))
    return graded


def _tests(results: dict) -> dict:
    """The question entries of results.json (not the hidden "review" entry of a flagged one)."""
    return {test["name"]: test for test in results["tests"] if test["name"] != "review"}


def _meets(score: float, max_score: float, expected) -> bool:
    if expected == "full":
        return score == max_score
    if expected == "zero":
        return score == 0
    if expected == "loses":
        return score < max_score
    return score <= expected["max"] + 1e-9


def _report(name: str, question: str, graded) -> dict:
    """The report a searching case wrote into its error message (see cases_adversarial)."""
    output = _tests(graded[name].results)[question]["output"]
    match = re.search(REPORTS[name][question], output)
    assert match, f"{name}: no report in the {question} feedback:\n{output}"
    return match.groupdict()


# --- every case ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["reference"] + [case.name for case in CASES])
def test_results_are_valid_and_bounded(graded, name):
    results = graded[name].results
    gradescope_results.validate(results)
    tests = _tests(results)
    assert list(tests) == list(SETTINGS.points)
    for question, test in tests.items():
        assert test["max_score"] == SETTINGS.points[question]
        assert 0 <= test["score"] <= test["max_score"], (question, test["score"])
    assert results["score"] == pytest.approx(sum(t["score"] for t in tests.values()))
    review = [t for t in results["tests"] if t["name"] == "review"]
    assert bool(review) == (results["extra_data"]["status"] == "flagged")
    for test in review:  # evidence for course staff: worth nothing, never shown to the student
        assert test["visibility"] == "hidden" and test["max_score"] == test["score"] == 0


def test_reference_gets_full_marks(graded):
    assert {q: t["score"] for q, t in _tests(graded["reference"].results).items()} == \
        SETTINGS.points


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_case_expectations(graded, case):
    """Untouched questions keep full credit, attacked ones get at most their honest score,
    and the feedback says what happened."""
    results = graded[case.name].results
    tests = _tests(results)
    for question, expected in case.expect.items():
        test = tests[question]
        assert _meets(test["score"], test["max_score"], expected), (
            f"{case.name} {question}: {test['score']} / {test['max_score']}, expected "
            f"{expected}\n{test['output']}")
    for question, needles in case.feedback.items():
        for needle in needles:
            assert needle in tests[question]["output"], (
                f"{case.name} {question}: {needle!r} missing from\n{tests[question]['output']}")
    for needle in OUTPUT.get(case.name, []):
        assert needle in results["output"], f"{case.name}: {needle!r} missing from\n" \
                                            f"{results['output']}"


# --- faults -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ORPHANS))
def test_no_process_outlives_grading(graded, name):
    assert graded[name].survivors == []


@pytest.mark.parametrize("name", sorted(MARKERS))
def test_forged_otter_logs_are_never_unpickled(graded, name):
    assert graded[name].markers == []


def test_time_limits_stop_endless_code_without_losing_the_rest(graded):
    """An endless cell costs its cell limit, not a question's points; an endless probe costs
    only its own question; disabling the per-call alarm only brings the grader's kill."""
    cell_limit, question_limit = SETTINGS.limits.cell_seconds, SETTINGS.limits.question_seconds
    for name in ("endless_top_level_loop", "endless_loop_alarm_disabled", "endless_train_nn",
                 "probe_ignores_alarm"):
        results = graded[name].results
        assert results["execution_time"] <= SETTINGS.limits.submission_seconds + 10
        assert results["execution_time"] >= min(cell_limit, question_limit)
    assert _tests(graded["endless_train_nn"].results)["q3"]["score"] < SETTINGS.points["q3"]


def test_output_flood_does_not_slow_grading(graded):
    flood = graded["print_flood"].results["execution_time"]
    assert flood <= graded["reference"].results["execution_time"] + 20


@pytest.mark.parametrize("name", sorted(STATUS))
def test_faults_get_the_right_status(graded, name):
    """Broken notebooks are the student's to fix (invalid, with the reason), never reported
    as a failure of the grader; a grader that gave up still reports what it graded."""
    results = graded[name].results
    assert results["extra_data"]["status"] == STATUS[name], results["output"]
    assert "please report" not in results["output"]


# Broken notebook JSON (nbformat 4) and the reason each must be refused with.
def _reference_dict(reference) -> dict:
    return json.loads(Path(reference).read_text())


def _definition_cell(notebook: dict, name: str) -> dict:
    return next(cell for cell in notebook["cells"] if cell["cell_type"] == "code"
                and f"def {name}" in "".join(cell["source"]))


BROKEN_STRUCTURES = {
    "no source": (lambda nb: _definition_cell(nb, "train_nn").pop("source"),
                  "(a code cell) has no source"),
    "integer source": (lambda nb: _definition_cell(nb, "train_nn").update(source=7),
                       "is a number, not text"),
    "source list with a number": (lambda nb: _definition_cell(nb, "train_nn").update(
        source=["x = 1\n", 2]), "a list holding something other than text"),
    "null source": (lambda nb: _definition_cell(nb, "train_nn").update(source=None),
                    "is null, not text"),
    "cell is a number": (lambda nb: nb["cells"].__setitem__(3, 5), "cell 4 is a number"),
    "cell without a type": (lambda nb: nb["cells"][3].pop("cell_type"),
                            "cell 4 has no cell_type"),
    "cells an object": (lambda nb: nb.update(cells={"a": 1}), "cells are an object"),
    "no cells": (lambda nb: nb.pop("cells"), "no list of cells"),
}


@pytest.mark.parametrize("label", sorted(BROKEN_STRUCTURES))
def test_structurally_broken_notebooks_are_invalid_with_a_reason(reference_notebook, tmp_path,
                                                                label):
    from adaline_kit.grade import submission

    edit, reason = BROKEN_STRUCTURES[label]
    notebook = _reference_dict(reference_notebook)
    assert submission.structure_problem(notebook) is None  # the control: intact, usable
    edit(notebook)
    path = tmp_path / "adaline_autograd.ipynb"
    path.write_text(json.dumps(notebook))
    loaded = submission.load(path)
    assert loaded.cells == [] and reason in (loaded.problem or ""), loaded.problem


@pytest.mark.parametrize("depth, usable", [(50, True), (150, False), (50_000, False)])
def test_deeply_nested_json_is_refused_with_a_reason(reference_notebook, tmp_path, depth,
                                                      usable):
    from adaline_kit.grade import submission

    text = json.dumps({**_reference_dict(reference_notebook), "extra": "NEST"})
    path = tmp_path / "adaline_autograd.ipynb"
    path.write_text(text.replace('"NEST"', "[" * depth + "]" * depth))
    loaded = submission.load(path)
    assert (loaded.problem is None) == usable, loaded.problem
    if not usable:
        assert "nested" in loaded.problem and loaded.cells == []


def test_the_notebook_with_the_work_is_chosen_among_several(reference_notebook, stub_notebook,
                                                             tmp_path):
    """Folder and zip alike: the copy with the work is graded whatever its name, the note
    names both; with one notebook there is no note; a tie goes to adaline_autograd.ipynb."""
    from adaline_kit.grade import submission

    folder = tmp_path / "submission"
    folder.mkdir()
    shutil.copy(stub_notebook, folder / "adaline_autograd.ipynb")
    shutil.copy(reference_notebook, folder / "adaline_autograd-Copy1.ipynb")
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in folder.iterdir():
            bundle.write(path, path.name)
    for loaded in (submission.load(folder), submission.load(archive)):
        assert loaded.problem is None and loaded.note, loaded
        assert "only adaline_autograd-Copy1.ipynb was graded" in loaded.note
        assert "Not graded: adaline_autograd.ipynb (5 parts" in loaded.note
        assert submission.stubs_left(loaded) == 0
    assert submission.find_submission(folder) == folder / "adaline_autograd-Copy1.ipynb"
    shutil.copy(stub_notebook, folder / "adaline_autograd-Copy1.ipynb")  # now a tie
    assert submission.find_submission(folder) == folder / "adaline_autograd.ipynb"
    (folder / "adaline_autograd-Copy1.ipynb").unlink()
    assert submission.load(folder).note is None


def test_gradescope_grades_the_copy_with_the_work(autograder_zip, gradescope_python,
                                                  reference_notebook, stub_notebook, tmp_path):
    """A Gradescope upload of two notebooks (no zip): the copy with the work gets full marks
    and the output says which notebook was graded."""
    folder = tmp_path / "upload"
    folder.mkdir()
    shutil.copy(stub_notebook, folder / "adaline_autograd.ipynb")
    shutil.copy(reference_notebook, folder / "adaline_autograd-Copy1.ipynb")
    results = run_like_gradescope(autograder_zip, folder, gradescope_python)
    assert results["score"] == SETTINGS.max_total, results["output"]
    assert "only adaline_autograd-Copy1.ipynb was graded" in results["output"]


# --- adversarial --------------------------------------------------------------------------------

def test_hidden_tests_and_grading_code_are_unreadable(graded):
    """The searching case read its own data file (so its reader works) but none of the hidden
    tests; the grading code it runs beside came from the zip, not from this checkout."""
    root = graded["reads_hidden_tests"].root
    for question in ("q1", "q2"):  # q1: searched while checked; q2: while its cell ran
        report = _report("reads_hidden_tests", question, graded)
        assert report["control"] == "True" and int(report["tried"]) > 20, report
        # The grading package is not even in sys.modules for student code (see sandbox.audit);
        # where a version still shows it, it must be the zip's, not this checkout's.
        assert report["kit"] in ("", "?") or report["kit"].startswith(root) and \
            report["kit"].endswith(os.path.join("autograder", "source", "lib", "adaline_kit"))
        found = ast.literal_eval(report["first"])
        assert not [path for path in found if path.startswith(root)], report
        if landlock.abi_version() >= 1:  # nothing at all: not this checkout, not /tmp
            assert report["found"] == "0", report


def test_fake_results_change_nothing(graded):
    outcome = graded["writes_fake_results"]
    report = _report("writes_fake_results", "q1", graded)
    assert "FORGED" not in json.dumps(outcome.results)
    assert outcome.results["score"] == 0
    assert outcome.on_disk_later == outcome.results  # no late rewrite by a surviving child
    if landlock.abi_version() >= 1:
        assert report["wrote"] == "0", report


def test_otter_log_was_planted_but_never_unpickled(graded):
    report = _report("forges_otter_log", "q1", graded)
    assert int(report["tried"]) > 3 and int(report["planted"]) >= 1  # its own folder at least
    assert graded["forges_otter_log"].markers == []


def test_forged_socket_replies_are_ignored(graded):
    report = _report("socket_forgery", "q1", graded)
    assert int(report["sent"]) > 0 and int(report["at_cell"]) > 0
    assert _tests(graded["socket_forgery"].results)["q1"]["score"] == 0


def test_gradescope_like_python_cannot_import_the_kit(gradescope_python, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run([str(gradescope_python), "-c", "import adaline_kit"], env=env,
                               cwd=tmp_path, capture_output=True, text=True)
    assert completed.returncode != 0
    assert "No module named 'adaline_kit'" in completed.stderr


# --- limits, without the emulation ------------------------------------------------------------

def test_submission_time_limit_holds_even_when_alarms_are_disabled(reference_notebook,
                                                                   tmp_path):
    """Four cells that ignore SIGALRM and loop: each costs its cell limit plus the grader's
    grace and a restart; the notebook's budget ends their run on time, with a complete report."""
    import nbformat

    from adaline_kit.build.paths import DATA_FILE
    from adaline_kit.assignments.adaline_autograd.data import prepare_lecture_split
    from adaline_kit.grade.runner import grade_submission
    from adaline_kit.grade.sandbox import Zygote
    from adaline_kit.settings import Limits, Settings

    notebook = nbformat.read(reference_notebook, as_version=4)
    for _ in range(4):
        notebook.cells.append(nbformat.v4.new_code_cell(
            "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n"
            "    signal.setitimer(signal.ITIMER_REAL, 0)\n"))
    path = tmp_path / "adaline_autograd.ipynb"
    nbformat.write(notebook, path)
    limits = Limits(question_seconds=5, cell_seconds=3, submission_seconds=12, memory_mib=640,
                    output_bytes=2000)
    settings = dataclasses.replace(SETTINGS, limits=limits)
    with Zygote() as zygote:
        started = time.monotonic()
        report = grade_submission(path, zygote, settings, prepare_lecture_split(DATA_FILE),
                                  DATA_FILE, seed=1)
        elapsed = time.monotonic() - started
    assert report.status == "graded" and set(report.questions) == set(SETTINGS.points)
    # The endless cells use up the notebook's budget; the questions keep their own and are
    # graded in full, and the report names the slow cells.
    assert elapsed < limits.submission_seconds + 3 * limits.question_seconds + 10, elapsed
    assert report.total == settings.max_total
    skipped = [c for c in report.cells if c.status == "skipped"]
    assert skipped and "slowest" in skipped[0].error


# --- the attacks are real -------------------------------------------------------------------

IN_KERNEL = r'''
import contextlib, io, json, re, sys
from pathlib import Path
from adaline_kit.grade import submission
from adaline_kit.otter_tests import check_question

namespace = {"__name__": "__main__"}
for cell in submission.load(Path(sys.argv[1])).cells:  # a kernel that goes on after errors
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(cell, "<cell>", "exec"), namespace)
    except BaseException:
        pass
scores = {}
for question in ("q1", "q2", "q3"):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        check_question(question, namespace)
    first = printed.getvalue().splitlines()[0]
    match = re.match(question + r": ([0-9.]+) / ", first)
    scores[question] = float(match.group(1)) if match else first
print(json.dumps(scores))
'''


def _in_kernel_scores(case, folder: Path) -> dict:
    """Grade ``case`` the way otter's in-kernel hidden tests do: the notebook's cells and the
    kit's checks (``check_question``) in one process."""
    from adaline_kit.build.paths import DATA_FILE

    folder.mkdir()
    (folder / "data").mkdir()
    shutil.copyfile(DATA_FILE, folder / "data" / "iris.data")
    notebook = folder / "adaline_autograd.ipynb"
    notebook.write_bytes(casebook.build_case(case))
    completed = subprocess.run([sys.executable, "-c", IN_KERNEL, notebook.name], cwd=folder,
                               capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, MPLBACKEND="Agg"))
    assert completed.returncode == 0, completed.stderr[-2000:]
    scores = json.loads(completed.stdout.strip().splitlines()[-1])
    return {q: SETTINGS.points[q] if s == f"{q}: all hidden checks passed" else s
            for q, s in scores.items()}


@pytest.mark.parametrize("name, question", [("eq_trick_layer_size", "q3")])
def test_attack_fools_in_kernel_checks(graded, tmp_path, name, question):
    """The __eq__ trick gains points when the checks run in the notebook's process; the
    hardened grader keeps it at its honest score. (Disguised autograd in q1, getattr with a
    computed name, no longer fools even the in-kernel checks: q1's source allow-list refuses
    computed names.)"""
    case = BY_NAME[name]
    honest = case.expect[question]["max"]
    in_kernel = _in_kernel_scores(case, tmp_path / "kernel")
    assert in_kernel[question] > honest, in_kernel
    assert _tests(graded[name].results)[question]["score"] <= honest


@pytest.fixture(scope="module")
def plain_otter_zip(tmp_path_factory):
    """The autograder zip built without the kit's otter plugin: plain otter grading."""
    from adaline_kit.build import autograder_zip as builder
    from adaline_kit.build import paths

    folder = tmp_path_factory.mktemp("plain-otter")
    config = json.loads(paths.OTTER_CONFIG.read_text())
    config["plugins"] = []
    (folder / "otter_config.json").write_text(json.dumps(config))
    original = paths.OTTER_CONFIG
    paths.OTTER_CONFIG = folder / "otter_config.json"
    try:
        return builder.build(folder / "autograder.zip")
    finally:
        paths.OTTER_CONFIG = original


def _otter_run(zip_path: Path, case, folder: Path) -> dict:
    folder.mkdir()
    submission = folder / f"{case.name}{case.suffix}"
    submission.write_bytes(casebook.build_case(case))
    out = folder / "out"
    out.mkdir()
    otter = Path(sys.executable).with_name("otter")
    subprocess.run([str(otter), "run", "-a", str(zip_path), "-o", str(out), str(submission)],
                   check=True, capture_output=True, timeout=600)
    results = json.loads((out / "results.json").read_text())
    return {t["name"]: t["score"] for t in results["tests"] if t["name"] in SETTINGS.points}


def test_attacks_fool_plain_otter(plain_otter_zip, graded, tmp_path):
    """Patching otter's results or the kit's check_question in the kernel gives the untouched
    stubs full marks, and otter unpickles a zip's forged .OTTER_LOG (its code runs in the
    grader): with the hardened grader, none of it works."""
    names = ("patch_otter_checker", "patch_check_question", "zip_with_forged_otter_log")
    marker = TMP / cases_faults.OTTER_LOG_MARKER
    marker.unlink(missing_ok=True)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        scores = dict(zip(names, pool.map(
            lambda n: _otter_run(plain_otter_zip, BY_NAME[n], tmp_path / n), names)))
    try:
        assert marker.exists(), "plain otter did not unpickle the forged log"
    finally:
        marker.unlink(missing_ok=True)
    for name in ("patch_otter_checker", "patch_check_question"):
        assert scores[name] == SETTINGS.points, (name, scores[name])
        assert all(t["score"] == 0 for t in graded[name].results["tests"])
    assert graded["zip_with_forged_otter_log"].markers == []


def test_plain_otter_run_with_the_kit_plugin_never_unpickles_a_forged_log(autograder_zip,
                                                                          tmp_path):
    """The same forged log that plain otter unpickles (test above) is deleted by the kit's
    otter plugin before otter looks for it; the reference inside still gets full marks."""
    marker = TMP / cases_faults.OTTER_LOG_MARKER
    marker.unlink(missing_ok=True)
    scores = _otter_run(autograder_zip, BY_NAME["zip_with_forged_otter_log"], tmp_path / "run")
    assert not marker.exists(), "the forged .OTTER_LOG was unpickled"
    assert scores == SETTINGS.points

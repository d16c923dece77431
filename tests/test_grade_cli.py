"""``adaline-kit grade``: grade a whole class locally (real zygote, real notebooks).

* a mixed class (reference, untouched stubs, a file that is not JSON, an otter export zip and a
  Gradescope export folder with its metadata) gives the right gradebook, results.json files,
  feedback pages with loss-curve plots, feedback.zip and summary;
* a rerun skips what is already graded, --force grades again, a changed file is graded again;
* a run killed mid-way (SIGKILL or Ctrl-C) keeps every finished result and leaves no process
  behind, and the rerun completes the class;
* one submission's global mischief reaches neither the next submission nor the grader;
* user errors end with one line and a non-zero exit status.
"""

from __future__ import annotations

import base64
import builtins
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest
from click.testing import CliRunner

from adaline_kit import cli
from adaline_kit.grade import batch, gradebook, gradescope_export, gradescope_results
from adaline_kit.settings import load

SETTINGS = load()
FULL = SETTINGS.max_total
COLUMNS = ["submission", "sid", "email", "name", "student", "q1", "q2", "q3", "total", "max_total",
           "status", "submitted_at", "late", "confinement", "flags", "overrides", "message"]
CLI = [sys.executable, "-c", "from adaline_kit.cli import run; run()"]
PNG = b"\x89PNG\r\n\x1a\n"

METADATA = """\
submission_111:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1815'
    :email: ada@example.edu
  :created_at: 2024-03-01 12:00:00.000000000 -08:00
  :score: !ruby/object:BigDecimal 18:0.1e2
  :history: []
submission_222:
  :submitters:
  - :name: Alan Turing
    :sid: '1912'
    :email: alan@example.edu
  - :name: Grace Hopper
    :sid: '1906'
    :email: grace@example.edu
  :created_at: 2024-03-02 09:30:00.000000000 -08:00
  :score: 0.0
  :history: []
submission_333:
  :submitters:
  - :name: Edsger Dijkstra
    :sid: '1930'
    :email: edsger@example.edu
  :created_at: 2024-03-03 10:00:00.000000000 -08:00
  :history: []
"""

# Global mischief in a student process: none of it may reach another submission or the grader.
NASTY_CELL = """
import builtins, os, signal, torch
torch.set_default_dtype(torch.float64)
torch.mean = lambda *args, **kwargs: torch.tensor(42.0)
with open("planted.txt", "w") as handle:
    handle.write("planted")
os.environ["ADALINE_PLANTED"] = "1"
builtins.max = None
try:  # the zygote that forked this process; not allowed when grading as root
    os.kill(os.getppid(), signal.SIGKILL)
except OSError:
    pass
"""

# Fails (and so shows in the report's message) if any of the mischief above is visible.
WITNESS_CELL = """
import builtins, os, torch
assert torch.get_default_dtype() == torch.float32, "default dtype leaked"
assert float(torch.mean(torch.tensor([1.0, 3.0]))) == 2.0, "torch.mean leaked"
assert not os.path.exists("planted.txt"), "planted file leaked"
assert "ADALINE_PLANTED" not in os.environ, "environment variable leaked"
assert builtins.max is not None and max(1, 2) == 2, "builtins.max leaked"
"""
ALL_CELLS_CLEAN = "Every cell of the notebook ran without an error."


def grade(*args, expect_ok: bool = True):
    """Run ``adaline-kit grade ARGS`` in this process."""
    result = CliRunner().invoke(cli.main, ["grade", *map(str, args)])
    if expect_ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def with_cells(notebook: Path, target: Path, *cells: str) -> Path:
    """``notebook`` with code ``cells`` appended, written to ``target``."""
    content = nbformat.read(notebook, as_version=4)
    content.cells.extend(nbformat.v4.new_code_cell(cell) for cell in cells)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(content, target)
    return target


def rows_by_key(out: Path) -> dict[str, dict]:
    return {row["submission"]: row for row in gradebook.read(out / "grades.csv")}


def records(out: Path) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text()) for path in out.glob("*/record.json")}


def copies(notebook: Path, folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for index in range(count):
        shutil.copy(notebook, folder / f"student{index:02d}.ipynb")
    return folder


# --- a mixed class -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def class_run(tmp_path_factory, reference_notebook, stub_notebook):
    root = tmp_path_factory.mktemp("class")
    folder = root / "class"
    folder.mkdir()
    shutil.copy(reference_notebook, folder / "ref.ipynb")
    shutil.copy(stub_notebook, folder / "stub.ipynb")
    (folder / "notjson.ipynb").write_text("this is not JSON {")
    (folder / "notes.txt").write_text("not a submission: ignored inside a folder")
    with zipfile.ZipFile(folder / "adaline_autograd_2024_03_01T12_00_00.zip", "w") as archive:
        archive.write(reference_notebook, "adaline_autograd.ipynb")  # like grader.export()
        archive.writestr(".OTTER_LOG", b"\x80\x04 never unpickled")
    export = root / "gradescope_export"
    export.mkdir()
    (export / "submission_metadata.yml").write_text(METADATA)
    for name, notebook in (("submission_111", reference_notebook),
                           ("submission_222", stub_notebook)):
        (export / name).mkdir()
        shutil.copy(notebook, export / name / "adaline_autograd.ipynb")
    (export / "submission_333").mkdir()
    (export / "submission_333" / "answers.txt").write_text("no notebook here")
    out = root / "out"
    result = grade(folder, export, "-o", out, "--jobs", 2, "--seed", 3)
    return out, result


EXPECTED = {  # submission -> (student, total, status)
    "ref": ("", FULL, "graded"),
    "stub": ("", 0, "graded"),
    "notjson": ("", 0, "invalid"),
    "adaline_autograd_2024_03_01T12_00_00.zip": ("", FULL, "graded"),
    "submission_111": ("Ada Lovelace <ada@example.edu>", FULL, "graded"),
    "submission_222": ("Alan Turing <alan@example.edu>; Grace Hopper <grace@example.edu>", 0,
                       "graded"),
    "submission_333": ("Edsger Dijkstra <edsger@example.edu>", 0, "invalid"),
}


def test_gradebook_columns_and_rows(class_run):
    out, _ = class_run
    text = (out / "grades.csv").read_text()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    rows = rows_by_key(out)
    assert set(rows) == set(EXPECTED)
    for key, (student, total, status) in EXPECTED.items():
        row = rows[key]
        assert (row["student"], float(row["total"]), row["status"]) == (student, total, status), key
        assert float(row["max_total"]) == FULL
        assert sum(float(row[q]) for q in ("q1", "q2", "q3")) == pytest.approx(float(row["total"]))
    for key in ("ref", "adaline_autograd_2024_03_01T12_00_00.zip", "submission_111"):
        assert {q: float(rows[key][q]) for q in SETTINGS.points} == SETTINGS.points
    assert "not a notebook" in rows["notjson"]["message"]
    assert "no notebook" in rows["submission_333"]["message"]
    assert rows["ref"]["message"] == ALL_CELLS_CLEAN


def test_results_json_per_submission(class_run):
    out, _ = class_run
    rows = rows_by_key(out)
    for key, row in rows.items():
        results = json.loads((out / key / "results.json").read_text())
        gradescope_results.validate(results)
        assert results["score"] == pytest.approx(float(row["total"]))
        assert {t["name"]: t["score"] for t in results["tests"]} == \
            pytest.approx({q: float(row[q]) for q in ("q1", "q2", "q3")})
    assert "not a notebook" in json.loads((out / "notjson" / "results.json").read_text())["output"]


def test_feedback_pages_plots_and_zip(class_run):
    out, _ = class_run
    page = (out / "ref" / "feedback.md").read_text()
    for question in SETTINGS.points:
        assert f"## {question}: " in page
        assert f"{question}: {SETTINGS.points[question]:g} / {SETTINGS.points[question]:g}" in page
    plots = sorted(p.name for p in (out / "ref").glob("loss_curve_q*.png"))
    assert plots, "the reference trains models: its curves must be plotted"
    for name in plots:
        assert (out / "ref" / name).read_bytes().startswith(PNG)
        assert f"]({name})" in page
    stub_page = (out / "stub" / "feedback.md").read_text()
    assert "[FAIL]" in stub_page and "0 / " in stub_page
    with zipfile.ZipFile(out / "feedback.zip") as archive:
        names = set(archive.namelist())
        assert len(names) == len(EXPECTED)
        assert {"Ada_Lovelace__submission_111.html", "Alan_Turing__submission_222.html",
                "ref.html", "notjson.html"} <= names
        html_page = archive.read("ref.html").decode()
    embedded = html_page.count('src="data:image/png;base64,')
    assert embedded == len(plots)
    first = html_page.split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    assert base64.b64decode(first).startswith(PNG)


def test_summary_image_and_line(class_run):
    out, result = class_run
    assert (out / "summary.png").read_bytes().startswith(PNG)
    line = next(line for line in result.output.splitlines() if "submissions (" in line)
    assert line.startswith(f"{len(EXPECTED)} submissions (5 graded, 2 invalid)")
    mean = sum(total for _, total, _ in EXPECTED.values()) / len(EXPECTED)
    assert f"mean total {mean:.2f} / {FULL:g}" in line
    assert "full marks q1 43%, q2 43%, q3 43%" in line  # 3 of 7 at full marks everywhere
    assert "top diagnoses: stub_untouched" in line


# --- resume --------------------------------------------------------------------------------------

def test_rerun_skips_force_regrades_and_changed_files_are_regraded(
        tmp_path, reference_notebook):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(reference_notebook, folder / "ref.ipynb")
    (folder / "broken.ipynb").write_text("{ not json")
    out = tmp_path / "out"
    grade(folder, "-o", out, "--jobs", 2)
    first = records(out)
    assert set(first) == {"ref", "broken"}

    again = grade(folder, "-o", out, "--jobs", 2)
    assert "Graded 0, skipped 2" in again.output
    assert {k: r["run_id"] for k, r in records(out).items()} == \
        {k: r["run_id"] for k, r in first.items()}
    assert rows_by_key(out)["ref"]["total"] == f"{FULL:g}"

    (folder / "broken.ipynb").write_text("{ still not json }")  # a new version of one file
    changed = grade(folder, "-o", out, "--jobs", 2)
    assert "Graded 1, skipped 1" in changed.output
    assert records(out)["ref"]["run_id"] == first["ref"]["run_id"]
    assert records(out)["broken"]["run_id"] != first["broken"]["run_id"]

    forced = grade(folder, "-o", out, "--jobs", 2, "--force")
    assert "Graded 2, skipped 0" in forced.output
    assert all(records(out)[k]["run_id"] != first[k]["run_id"] for k in first)


def test_a_result_of_another_autograder_is_graded_again(tmp_path, reference_notebook):
    shutil.copy(reference_notebook, tmp_path / "ref.ipynb")
    out = tmp_path / "out"
    grade(tmp_path / "ref.ipynb", "-o", out)
    record_file = out / "ref" / "record.json"
    record = json.loads(record_file.read_text())
    record["autograder"] = "0" * 64  # as if graded by an older version of the checks
    record_file.write_text(json.dumps(record))
    assert "Graded 1, skipped 0" in grade(tmp_path / "ref.ipynb", "-o", out).output


# --- interruption --------------------------------------------------------------------------------

def _living(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_run_keeps_finished_results_and_the_rerun_completes(
        tmp_path, reference_notebook, stop_signal):
    count = 10
    folder = copies(reference_notebook, tmp_path / "class", count)
    out = tmp_path / "out"
    log = open(tmp_path / "log.txt", "wb")
    # As from a terminal: a suite started in the background (`cmd &`, nohup) inherits an
    # ignored SIGINT, which the kit rightly keeps ignoring; Ctrl-C at a prompt is not ignored.
    process = subprocess.Popen(CLI + ["grade", str(folder), "-o", str(out), "--jobs", "1"],
                               stdout=log, stderr=subprocess.STDOUT,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    helpers: list[psutil.Process] = []
    while not list(out.glob("*/record.json")):
        assert process.poll() is None, (tmp_path / "log.txt").read_text()
        assert time.monotonic() < deadline, "no result appeared"
        time.sleep(0.02)
    helpers = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(stop_signal)
    process.wait(60)
    log.close()
    assert process.returncode != 0
    finished = records(out)
    assert 1 <= len(finished) < count, "the run should have been stopped mid-way"
    for key in finished:  # every result on disk is complete
        gradescope_results.validate(json.loads((out / key / "results.json").read_text()))
        assert (out / key / "feedback.md").is_file()
    leftovers = [p.name for p in out.iterdir() if p.is_dir() and p.name != batch.STAGING_DIR]
    assert sorted(leftovers) == sorted(finished), "a folder without its record was left behind"
    if stop_signal == signal.SIGINT:
        assert "Stopped:" in (tmp_path / "log.txt").read_text()
        assert set(rows_by_key(out)) == set(finished)
    # The zygote and the student processes must not outlive the run (SIGKILL included).
    deadline = time.monotonic() + 30
    while _living(helpers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _living(helpers), [p.cmdline() for p in _living(helpers)]

    rerun = grade(folder, "-o", out, "--jobs", 2)
    assert f"Graded {count - len(finished)}, skipped {len(finished)}" in rerun.output
    after = records(out)
    assert all(after[k]["run_id"] == finished[k]["run_id"] for k in finished)
    rows = rows_by_key(out)
    assert len(rows) == count
    short = {key: row for key, row in rows.items()
             if float(row["total"]) != FULL}
    assert not short, (short, (tmp_path / "log.txt").read_text()[-3000:], rerun.output[-3000:])
    assert not (out / batch.STAGING_DIR).exists()


def test_an_interrupted_forced_regrade_counts_this_run_and_says_what_force_does(
        tmp_path, stub_notebook):
    """Ctrl-C during `grade --force` over a graded class: the message counts what this run
    regraded (read back from the records' run ids) and what it left, and says that --force
    would regrade everything again."""
    count = 3
    folder = tmp_path / "class"
    for index in range(count):  # quick to grade, slow enough to stop between two
        with_cells(stub_notebook, folder / f"student{index:02d}.ipynb",
                   "import time\ntime.sleep(3)")
    out = tmp_path / "out"
    grade(folder, "-o", out, "--jobs", 1)
    before = {key: record["run_id"] for key, record in records(out).items()}
    assert len(before) == count
    process = subprocess.Popen(CLI + ["grade", str(folder), "-o", str(out), "--jobs", "1",
                                      "--force"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while all(records(out)[key]["run_id"] == run for key, run in before.items()):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "nothing was regraded"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0]
    assert process.returncode != 0, output
    regraded = [key for key, record in records(out).items() if record["run_id"] != before[key]]
    assert 1 <= len(regraded) < count, "the run should have been stopped mid-way"
    line = next(ln for ln in output.splitlines() if ln.startswith("Stopped:"))
    assert (f"this run graded {len(regraded)} of the {count} submissions it was to grade "
            f"({count - len(regraded)} left)") in line, line
    assert f"--force would grade all {count} again" in line and "drop --force" in line, line


def test_the_stopped_message_without_force_counts_the_class():
    from adaline_kit.grade.command import stopped_message

    assert stopped_message(2, 5, 7, 10, force=False) == (
        "Stopped: 7 of 10 submissions are done; run the same command again to grade the rest.")
    assert "this run graded 2 of the 5 submissions it was to grade (3 left)" in stopped_message(
        2, 5, 7, 10, force=True)


# --- isolation -----------------------------------------------------------------------------------

def test_one_submissions_mischief_reaches_neither_the_next_nor_the_grader(
        tmp_path, reference_notebook, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "class"
    with_cells(reference_notebook, folder / "a_nasty.ipynb", NASTY_CELL)
    witness = with_cells(reference_notebook, folder / "b_witness.ipynb", WITNESS_CELL)
    out = tmp_path / "out"
    grade(folder, "-o", out, "--jobs", 1, "--seed", 11)  # one worker: the nasty one goes first
    together = rows_by_key(out)
    assert together["a_nasty"]["status"] == "graded"
    assert together["b_witness"]["message"] == ALL_CELLS_CLEAN
    assert float(together["b_witness"]["total"]) == FULL

    alone_out = tmp_path / "alone"
    grade(witness, "-o", alone_out, "--seed", 11)
    alone = rows_by_key(alone_out)["b_witness"]
    assert {c: together["b_witness"][c] for c in COLUMNS[2:]} == {c: alone[c] for c in COLUMNS[2:]}

    # The grader (this process) saw nothing either.
    assert torch.get_default_dtype() == torch.float32
    assert float(torch.mean(torch.tensor([1.0, 3.0]))) == 2.0
    assert "ADALINE_PLANTED" not in os.environ
    assert builtins.max is not None and max(1, 2) == 2
    assert not list(tmp_path.rglob("planted.txt"))


def test_a_sandbox_that_died_is_restarted_and_the_submission_still_graded(
        tmp_path, reference_notebook):
    import threading

    from adaline_kit.build import paths
    from adaline_kit.assignments.adaline_autograd.data import prepare_lecture_split

    zygote = batch.SharedZygote()
    try:
        os.killpg(zygote.zygote.process.pid, signal.SIGKILL)  # as a student might, if allowed
        zygote.zygote.process.wait()
        grader = batch.Grader(tmp_path, SETTINGS, prepare_lecture_split(paths.DATA_FILE),
                              paths.DATA_FILE, 5, "fingerprint", zygote, threading.Event())
        job = batch.Job("ref", reference_notebook, reference_notebook)
        outcome = grader.grade(job, batch.file_sha256(reference_notebook))
    finally:
        zygote.close()
    assert zygote.generation == 2
    assert (outcome.record["status"], outcome.record["total"]) == ("graded", FULL)
    assert json.loads((tmp_path / "ref" / "record.json").read_text())["total"] == FULL


# --- user errors ---------------------------------------------------------------------------------

def _one_line_error(result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_user_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing to grade")
    (tmp_path / "a_file").write_text("")
    shutil.copy(Path(__file__), tmp_path / "one.ipynb")

    line = _one_line_error(grade(tmp_path / "missing", "-o", tmp_path / "out", expect_ok=False))
    assert "no such file or folder" in line and "missing" in line
    line = _one_line_error(grade(tmp_path / "empty", "-o", tmp_path / "out", expect_ok=False))
    assert "no submissions" in line
    line = _one_line_error(grade(tmp_path / "one.ipynb", "-o", tmp_path / "a_file",
                                 expect_ok=False))
    assert "is a file" in line
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as archive:  # downloaded, not unzipped
        archive.writestr("submission_metadata.yml", METADATA)
        archive.writestr("submission_111/adaline_autograd.ipynb", "{}")
    line = _one_line_error(grade(tmp_path / "export.zip", "-o", tmp_path / "out",
                                 expect_ok=False))
    assert "zipped Gradescope export" in line
    assert not (tmp_path / "out").exists()


def test_user_error_from_the_installed_command_has_no_traceback(tmp_path):
    completed = subprocess.run(CLI + ["grade", str(tmp_path / "missing"), "-o",
                                      str(tmp_path / "out")],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0
    assert completed.stdout == ""
    assert completed.stderr.strip().count("\n") == 0, completed.stderr
    assert "no such file or folder" in completed.stderr


# --- discovery (no grading) ----------------------------------------------------------------------

def test_discovery_keys_nested_exports_and_the_output_folder(tmp_path):
    root = tmp_path / "downloads"
    for name in ("alice/adaline_autograd.ipynb", "bob/adaline_autograd.ipynb", "carol.ipynb",
                 "carol.zip", ".ipynb_checkpoints/carol-checkpoint.ipynb", "out/feedback.zip"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    export = root / "assignment_export"
    (export / "submission_9").mkdir(parents=True)
    (export / "submission_9" / "adaline_autograd.ipynb").write_text("{}")
    (export / "submission_metadata.yml").write_text(
        "submission_9:\n  :submitters:\n  - :name: Kim Lee\n    :email: kim@example.edu\n")
    jobs = {job.key: job for job in batch.discover([root], out=root / "out")}
    assert set(jobs) == {"alice__adaline_autograd", "bob__adaline_autograd", "carol",
                         "carol.zip", "assignment_export__submission_9"}
    assert jobs["assignment_export__submission_9"].student == "Kim Lee <kim@example.edu>"
    # The same file reached twice is one job; equal names from different places stay apart.
    twice = batch.discover([root / "carol.ipynb", root, tmp_path / "downloads" / "carol.ipynb"],
                           out=root / "out")
    assert len(twice) == len(jobs)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "carol.ipynb").write_text("{}")
    keys = [j.key for j in batch.discover([root / "carol.ipynb",
                                           tmp_path / "elsewhere" / "carol.ipynb"])]
    assert len(set(keys)) == 2 and all(k.startswith("carol-") for k in keys)


def test_gradescope_metadata_with_ruby_tags(tmp_path):
    (tmp_path / "submission_metadata.yml").write_text(METADATA)
    metadata = gradescope_export.read_metadata(tmp_path)
    assert [s.label() for s in metadata["submission_222"].submitters] == [
        "Alan Turing <alan@example.edu>", "Grace Hopper <grace@example.edu>"]
    assert metadata["submission_111"].submitters[0].sid == "1815"
    # Ruby's "2024-03-02 09:30:00.000000000 -08:00", read as ISO 8601 with its offset kept.
    assert metadata["submission_222"].submitted_at == "2024-03-02T09:30:00-08:00"
    (tmp_path / "submission_metadata.yml").write_text(":\n  - [unclosed")
    with pytest.raises(gradescope_export.ExportError):
        gradescope_export.read_metadata(tmp_path)


def test_gradebook_cells_never_start_a_spreadsheet_formula():
    row = gradebook.row({"key": "s1", "student": "=HYPERLINK(\"x\")", "total": 1, "max_total": 10,
                         "status": "graded", "message": "line one\n  - line two",
                         "questions": {"q1": {"score": 1}}})
    assert row["student"].startswith("'=")
    assert row["message"] == "line one - line two"
    assert (row["q1"], row["q2"]) == ("1", "")

"""After grading: the class folder as a gradebook (regrades, lock, overrides, statistics, LMS
exports, non-ASCII names, similarity), on one Gradescope export graded once by the real grader.

The class (a faked "Export Submissions" folder, metadata as Gradescope writes it):

    101 reference                 Ada Lovelace         on time
    102 q1 with einsum            Łukasz Kaiser        on time
    103 q1 with a per-sample loop Jürgen Schmidhuber   late (13:00, due 12:00)
    104 a renamed, reformatted copy of 103, by a group of two (Bob Copy, Carol Copy)
    105 q1 sign flipped (wrong)   Dana Scully
    106 the untouched stubs       Eve Moneypenny
    107 q3 with nn.Sequential     李雷
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from adaline_kit import cli
from adaline_kit.grade import batch, gradebook, lock, reports
from adaline_kit.settings import load
from test_grade_cli import _one_line_error as one_line_error
from test_grade_cli import grade
from adaline_kit.assignments.adaline_autograd import CORPUS

SETTINGS = load()
FULL = SETTINGS.max_total
CLI = [sys.executable, "-c", "from adaline_kit.cli import run; run()"]
DUE = "2026-03-01T12:00:00-08:00"

PEOPLE = {  # submission -> (notebook, [(name, sid, email)], created_at)
    "submission_101": ("correct/reference.ipynb", [("Ada Lovelace", "1815", "ada@example.edu")],
                       "2026-03-01 09:00:00.000000000 -08:00"),
    "submission_102": ("correct/q1_einsum.ipynb", [("Łukasz Kaiser", "2001", "lk@example.edu")],
                       "2026-03-01 10:00:00.000000000 -08:00"),
    "submission_103": ("correct/q1_per_sample_loop.ipynb",
                       [("Jürgen Schmidhuber", "2002", "js@example.edu")],
                       "2026-03-01 13:00:00.000000000 -08:00"),
    "submission_104": (None, [("Bob Copy", "2003", "bob@example.edu"),
                              ("Carol Copy", "2004", "carol@example.edu")],
                       "2026-03-01 11:00:00.000000000 -08:00"),
    "submission_105": ("wrong/q1_sign_flipped.ipynb", [("Dana Scully", "2005", "ds@example.edu")],
                       "2026-03-01 11:30:00.000000000 -08:00"),
    "submission_106": ("wrong/stub_untouched.ipynb", [("Eve Moneypenny", "2006", "em@example.edu")],
                       "2026-03-01 11:59:59.000000000 -08:00"),
    "submission_107": ("correct/q3_sequential.ipynb", [("李雷", "2007", "ll@example.edu")],
                       "2026-03-01 08:00:00.000000000 -08:00"),
}
CORRECT = {"submission_101", "submission_102", "submission_103", "submission_104",
           "submission_107"}


def run(*args, expect_ok: bool = True):
    result = CliRunner().invoke(cli.main, [*map(str, args)])
    if expect_ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def planted_copy(source: Path, target: Path) -> None:
    """``source`` with its q1 code disguised: other names, comments, spacing."""
    notebook = nbformat.read(source, as_version=4)
    cell = next(c for c in notebook.cells if "for i in range(n):" in c.source)
    text = cell.source
    for old, new in (("negative_grad_w", "gw"), ("negative_grad_b", "gb"), ("error", "e_i"),
                     ("n", "count"), ("i", "k")):
        text = re.sub(rf"\b{old}\b", new, text)
    text = text.replace("for k in range(count):", "# loop over the samples\n"
                        "        for k in range(count):  # one at a time")
    text = text.replace("e_i = float(", "e_i = float( ")
    assert text != cell.source and "gw -= 2 * e_i" in text
    cell.source = text
    nbformat.write(notebook, target)


def metadata_text() -> str:
    lines = []
    for key, (_, people, created) in PEOPLE.items():
        lines += [f"{key}:", "  :submitters:"]
        for name, sid, email in people:
            lines += [f"  - :name: {name}", f"    :sid: '{sid}'", f"    :email: {email}"]
        lines += [f"  :created_at: {created}", "  :score: 0.0", "  :history: []"]
    return "\n".join(lines) + "\n"


def rows_of(out: Path) -> list[dict]:
    return gradebook.read(out / "grades.csv")


def by_submission(out: Path) -> dict[str, dict]:
    return {row["submission"]: row for row in rows_of(out)}


def run_ids(out: Path) -> dict[str, str]:
    return {p.parent.name: json.loads(p.read_text())["run_id"] for p in out.glob("*/record.json")}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("after")
    export = root / "export"
    export.mkdir()
    (export / "submission_metadata.yml").write_text(metadata_text(), encoding="utf-8")
    for key, (notebook, _, _) in PEOPLE.items():
        (export / key).mkdir()
        target = export / key / "adaline_autograd.ipynb"
        if notebook is None:
            planted_copy(CORPUS / "correct/q1_per_sample_loop.ipynb", target)
        else:
            shutil.copy(CORPUS / notebook, target)
    out = root / "out"
    result = grade(export, "-o", out, "--jobs", 2, "--seed", 5, "--due", DUE)
    return export, out, result


@pytest.fixture
def class_copy(graded, tmp_path):
    """A copy of the graded class folder that a test may change."""
    export, out, _ = graded
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    return export, copy


# --- the gradebook ---------------------------------------------------------------------------

def test_one_row_per_student_with_identity_time_late_and_confinement(graded):
    _, out, result = graded
    rows = rows_of(out)
    expected = {(key, sid, email, name) for key, (_, people, _) in PEOPLE.items()
                for name, sid, email in people}
    assert {(r["submission"], r["sid"], r["email"], r["name"]) for r in rows} == expected
    assert len(rows) == 8  # seven submissions, one of them by two students
    for row in rows:
        key = row["submission"]
        correct = key in CORRECT
        assert (float(row["total"]) == FULL) is correct, (key, row["total"])
        created = PEOPLE[key][2]
        assert row["submitted_at"] == created[:10] + "T" + created[11:19] + "-08:00"
        assert row["late"] == ("yes" if key == "submission_103" else "no"), key
    group = [r for r in rows if r["submission"] == "submission_104"]
    assert {r["q1"] for r in group} == {str(int(SETTINGS.points["q1"]))}
    assert group[0]["student"] == "Bob Copy <bob@example.edu>; Carol Copy <carol@example.edu>"
    # Grading as root: every submission ran as a separate user, and the summary line says so.
    kinds = {r["confinement"] for r in rows}
    assert len(kinds) == 1 and kinds.pop().startswith("user ")  # "user nobody + landlock ..."
    line = next(line for line in result.output.splitlines() if "submissions (" in line)
    assert f"confined: 7/7 ({rows[0]['confinement']})" in line
    assert "WARNING" not in result.output


def test_the_summary_warns_when_a_submission_ran_unconfined():
    records = [{"key": "a", "confinement": "separate user + landlock ABI 7"},
               {"key": "b", "confinement": "unconfined: same user as the grader, no landlock"},
               {"key": "c", "status": "invalid"}]  # never ran: not counted
    summary = reports.ClassSummary(records)
    assert summary.confinement_line() == (
        "confined: 1/2 (1 separate user + landlock ABI 7, "
        "1 unconfined: same user as the grader, no landlock)")
    assert summary.confinement_warning().startswith("WARNING: 1 submission(s) ran unconfined")
    assert reports.ClassSummary(records[:1]).confinement_warning() is None


def test_a_diagnosis_counts_each_submission_once_in_the_total_row_and_the_summary():
    """stats.csv's total row and the summary line count submissions, not questions: one
    submission diagnosed stub_untouched on two questions counts once."""
    from adaline_kit.grade import stats

    def question(score, top, *diagnoses):
        return {"score": score, "max_score": top, "diagnoses": list(diagnoses)}

    records = [
        {"key": "a", "total": 3.0, "max_total": 10.0, "status": "graded",
         "questions": {"q1": question(0, 4, "stub_untouched"),
                       "q2": question(0, 3, "stub_untouched"), "q3": question(3, 3)}},
        {"key": "b", "total": 6.0, "max_total": 10.0, "status": "graded",
         "questions": {"q1": question(0, 4, "sign_flipped"), "q2": question(3, 3),
                       "q3": question(3, 3)}},
    ]
    rows = {r["question"]: r for r in csv.DictReader(io.StringIO(stats.render(records)))}
    assert rows["q1"]["diagnosis: stub_untouched"] == rows["q2"]["diagnosis: stub_untouched"] \
        == "1"
    assert rows["q3"]["diagnosis: stub_untouched"] == "0"
    assert rows["total"]["diagnosis: stub_untouched"] == "1"
    assert rows["total"]["diagnosis: sign_flipped"] == "1"
    line = reports.ClassSummary(records).line()
    assert "stub_untouched (1)" in line and "sign_flipped (1)" in line, line


def test_statistics_per_question(graded):
    _, out, _ = graded
    with open(out / "stats.csv", newline="", encoding="utf-8") as handle:
        stats = {row["question"]: row for row in csv.DictReader(handle)}
    assert set(stats) == {"q1", "q2", "q3", "total"}
    # Facts of the class: 5 correct notebooks, one wrong in q1 only, one untouched.
    assert float(stats["q1"]["full_marks_rate"]) == pytest.approx(5 / 7, abs=1e-4)
    assert float(stats["q2"]["full_marks_rate"]) == pytest.approx(6 / 7, abs=1e-4)
    assert float(stats["q3"]["zero_rate"]) == pytest.approx(1 / 7, abs=1e-4)
    assert float(stats["q2"]["median"]) == SETTINGS.points["q2"]
    assert stats["q1"]["submissions"] == "7"
    assert stats["q1"]["diagnosis: sign_flipped"] == "1"
    assert stats["q2"]["diagnosis: sign_flipped"] == "0"
    assert stats["q1"]["diagnosis: stub_untouched"] == "1"
    totals = [FULL] * 5 + [SETTINGS.points["q2"] + SETTINGS.points["q3"]
                           + float(by_submission(out)["submission_105"]["q1"]), 0.0]
    assert float(stats["total"]["mean"]) == pytest.approx(sum(totals) / 7, abs=1e-3)
    assert float(stats["total"]["max_points"]) == FULL


# --- regrades and the lock ------------------------------------------------------------------

def test_regrading_one_folder_of_the_export_keeps_the_class(class_copy):
    export, out = class_copy
    before_ids, before_rows = run_ids(out), rows_of(out)
    with zipfile.ZipFile(out / "feedback.zip") as archive:
        before_pages = sorted(archive.namelist())
    (out / "summary.png").unlink()

    result = grade(export / "submission_105", "-o", out, "--force", "--seed", 5)
    assert "Graded 1, skipped 0" in result.output and "the class folder holds 7" in result.output
    after_ids = run_ids(out)
    assert set(after_ids) == set(PEOPLE)
    assert after_ids["submission_105"] != before_ids["submission_105"]
    assert all(after_ids[k] == before_ids[k] for k in PEOPLE if k != "submission_105")
    assert rows_of(out) == before_rows  # same seed: same scores; name and SID from the metadata
    with zipfile.ZipFile(out / "feedback.zip") as archive:
        assert sorted(archive.namelist()) == before_pages
    assert (out / "summary.png").read_bytes().startswith(b"\x89PNG")

    # --only picks students by SID from the whole export; nothing else is graded again.
    result = grade(export, "-o", out, "--only", "2006", "--force", "--seed", 5)
    assert "Graded 1, skipped 0" in result.output
    again = run_ids(out)
    assert again["submission_106"] != after_ids["submission_106"]
    assert all(again[k] == after_ids[k] for k in PEOPLE if k != "submission_106")
    line = one_line_error(grade(export, "-o", out, "--only", "nobody@example.edu",
                                expect_ok=False))
    assert "matches no submission" in line


def test_a_second_concurrent_run_stops_at_once_with_one_line(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(CORPUS / "correct/reference.ipynb", folder / "ref.ipynb")
    out = tmp_path / "out"
    first = subprocess.Popen(CLI + ["grade", str(folder), "-o", str(out), "--jobs", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lock_file = out / lock.LOCK_FILE
    deadline = time.monotonic() + 120
    while not (lock_file.is_file() and lock_file.read_text().strip()):
        assert first.poll() is None, first.stdout.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    line = one_line_error(grade(folder, "-o", out, expect_ok=False))
    assert time.monotonic() - started < 5  # at once, not after waiting
    assert "being graded by another run" in line and f"pid {first.pid} " in line
    assert first.wait(240) == 0, first.stdout.read().decode()
    # The lock goes with the run that held it.
    assert "Graded 0, skipped 1" in grade(folder, "-o", out).output


def test_a_record_graded_under_another_key_keeps_its_key(tmp_path):
    """Given whole from a parent folder the export's keys carry a prefix; given alone later,
    a submission folder must still replace that row, not add one."""
    export = tmp_path / "downloads" / "export"
    (export / "submission_9").mkdir(parents=True)
    notebook = export / "submission_9" / "adaline_autograd.ipynb"
    notebook.write_text("{}")
    (export / "submission_metadata.yml").write_text(
        "submission_9:\n  :submitters:\n  - :name: Kim Lee\n    :sid: '9'\n")
    out = tmp_path / "out"
    assert [j.key for j in batch.discover([tmp_path / "downloads"], out)] == \
        ["export__submission_9"]
    (out / "export__submission_9").mkdir(parents=True)
    (out / "export__submission_9" / "record.json").write_text(json.dumps(
        {"format": batch.RECORD_FORMAT, "key": "export__submission_9",
         "source": str(notebook.resolve())}))
    jobs = batch.discover([export / "submission_9"], out)
    assert [(j.key, j.student) for j in jobs] == [("export__submission_9", "Kim Lee")]
    assert [j.key for j in batch.discover([export / "submission_9"], tmp_path / "new")] == \
        ["submission_9"]


# --- overrides -------------------------------------------------------------------------------

def test_overrides_apply_survive_a_regrade_and_show_in_feedback(class_copy):
    export, out = class_copy
    graded_q1 = float(by_submission(out)["submission_105"]["q1"])
    assert graded_q1 < SETTINGS.points["q1"]
    (out / "overrides.csv").write_text(
        "submission,sid,question,points,reason\n"
        "submission_105,,q1,4,\"hand-checked: the sign convention was stated, <accepted>\"\n"
        ",2006,q2,1,partial credit for the outline\n", encoding="utf-8")

    def check() -> None:
        rows = by_submission(out)
        dana, eve = rows["submission_105"], rows["submission_106"]
        assert float(dana["q1"]) == 4
        assert float(dana["total"]) == pytest.approx(4 + SETTINGS.points["q2"]
                                                     + SETTINGS.points["q3"])
        assert dana["overrides"] == (f"q1 {graded_q1:g}->4 (hand-checked: the sign convention "
                                     "was stated, <accepted>)")
        assert (float(eve["q2"]), float(eve["total"])) == (1, 1)
        with zipfile.ZipFile(out / "feedback.zip") as archive:
            page = archive.read("Dana_Scully__submission_105.html").decode()
            untouched = archive.read("Ada_Lovelace__submission_101.html").decode()
        assert "Adjusted by course staff" in page
        assert "sign convention was stated, &lt;accepted&gt;" in page
        total = 4 + SETTINGS.points["q2"] + SETTINGS.points["q3"]
        assert f"Score after adjustment: <strong>{total:g} / {FULL:g}</strong>" in page
        assert "Adjusted by course staff" not in untouched
        with open(out / "stats.csv", newline="", encoding="utf-8") as handle:
            q1 = next(r for r in csv.DictReader(handle) if r["question"] == "q1")
        assert float(q1["full_marks_rate"]) == pytest.approx(6 / 7, abs=1e-4)

    grade("-o", out)  # no PATH: rebuild the class files only
    check()
    grade(export / "submission_105", "-o", out, "--force", "--seed", 5)
    check()
    assert json.loads((out / "submission_105" / "record.json").read_text())["questions"][
        "q1"]["score"] == graded_q1  # the graded result itself is never edited

    (out / "overrides.csv").write_text("submission,sid,question,points,reason\n"
                                       "submission_105,,q9,4,typo\n")
    line = one_line_error(grade("-o", out, expect_ok=False))
    assert f"{out / 'overrides.csv'}:2: " in line and "unknown question 'q9'" in line


# --- exports ---------------------------------------------------------------------------------

def test_canvas_and_gradescope_upload_files_follow_the_documented_columns(graded, tmp_path):
    _, out, _ = graded
    run("export-grades", out, "--format", "canvas", "-o", tmp_path / "canvas.csv")
    raw = (tmp_path / "canvas.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                        "Adaline three ways"]
    assert table[1] == ["Points Possible", "", "", "", "", f"{FULL:g}"]
    students = {row[2]: row for row in table[2:]}
    assert set(students) == {sid for _, people, _ in PEOPLE.values() for _, sid, _ in people}
    assert students["1815"] == ["Ada Lovelace", "", "1815", "ada@example.edu", "", f"{FULL:g}"]
    assert students["2001"][0] == "Łukasz Kaiser" and students["2007"][0] == "李雷"
    assert students["2006"][5] == "0"
    assert students["2003"][5] == students["2004"][5] == f"{FULL:g}"  # each group member

    result = run("export-grades", out, "--format", "gradescope", "--excel")
    raw = (out / "export-gradescope.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel's UTF-8 mark
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == ["Name", "SID", "Email", "Total Score"]
    assert ["Jürgen Schmidhuber", "2002", "js@example.edu", f"{FULL:g}"] in table
    assert len(table) == 1 + 8 and "8 student row(s)" in result.output

    run("export-grades", out, "--format", "csv", "-o", tmp_path / "plain.csv")
    assert (tmp_path / "plain.csv").read_text(encoding="utf-8") == \
        (out / "grades.csv").read_text(encoding="utf-8")
    line = one_line_error(run("export-grades", tmp_path / "nothing", "--format", "canvas",
                              expect_ok=False))
    assert "no such class folder" in line


# --- names -----------------------------------------------------------------------------------

def test_non_ascii_names_survive_in_feedback_zip(graded):
    _, out, _ = graded
    with zipfile.ZipFile(out / "feedback.zip") as archive:
        names = set(archive.namelist())
    assert {"Łukasz_Kaiser__submission_102.html", "Jürgen_Schmidhuber__submission_103.html",
            "李雷__submission_107.html", "Bob_Copy__submission_104.html"} <= names
    assert len(names) == 7
    assert reports.file_name_part("Zoë  O'Brien / Ñandú") == "Zoë_O_Brien_Ñandú"
    assert reports.file_name_part("Zoe\u0308") == "Zoë"  # decomposed input comes out composed


# --- similarity ------------------------------------------------------------------------------

def test_similarity_ranks_the_planted_copy_above_independent_solutions(graded):
    _, out, _ = graded
    gradebook_before = (out / "grades.csv").read_bytes()
    result = run("similarity", out)
    assert "Compared 7 submissions, 21 pairs" in result.output
    with open(out / "similarity.csv", newline="", encoding="utf-8") as handle:
        pairs = list(csv.DictReader(handle))
    first = pairs[0]
    assert {first["submission_a"], first["submission_b"]} == {"submission_103", "submission_104"}
    assert float(first["similarity_q1"]) == 1.0  # renaming and comments do not hide it
    independent = {"submission_101", "submission_102", "submission_107"}
    others = [p for p in pairs if {p["submission_a"], p["submission_b"]} <= independent]
    assert len(others) == 3
    assert all(float(first["score"]) > float(p["score"]) for p in others)
    # Identical given-style code that the whole class shares counts for little: 101 and 102
    # differ only in q1, yet are less alike by score than by raw similarity.
    pair = next(p for p in others if {p["submission_a"], p["submission_b"]} ==
                {"submission_101", "submission_102"})
    assert float(pair["score"]) < float(pair["similarity"])
    page = (out / "similarity.html").read_text(encoding="utf-8")
    assert "changes no score" in page and "gw -= 2 * e_i" in page
    assert "negative_grad_w -= 2 * error" in page
    assert (out / "grades.csv").read_bytes() == gradebook_before


def test_similarity_waits_for_no_run_but_stops_in_one_line_while_one_holds_the_folder(graded):
    from adaline_kit.grade import lock

    _, out, _ = graded
    (out / "similarity.csv").unlink(missing_ok=True)
    with lock.hold(out):  # what a grading run holds while it changes the folder
        result = run("similarity", out, expect_ok=False)
        output = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(output) == 1, result.output
        assert "being graded by another run" in output[0]
        assert not (out / "similarity.csv").exists()
    assert "Compared 7 submissions" in run("similarity", out).output
    assert (out / "similarity.csv").is_file()

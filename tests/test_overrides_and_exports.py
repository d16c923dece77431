"""Overrides that name nobody or are malformed are loud and never half-applied, and the upload
files follow what Canvas and Gradescope document. A class folder of hand-written records (no
grading: these are the rules of the files, not of the grader).

Where the expected file layout comes from:

- Canvas: its gradebook importer (``GradebookImporter`` in Canvas's source) and the import guides
  cited in the README "After grading" section. :func:`canvas_import` below re-states those rules
  as the importer applies them, and reads a file back the way Canvas would.
- Gradescope documents no score upload that we found; its roster import documents a header row,
  a ``Name`` and an ``Email`` column and one unique email per student, in UTF-8
  (:func:`gradescope_roster_rules`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from adaline_kit import cli
from adaline_kit.grade import batch
from adaline_kit.settings import load, questions

SETTINGS = load()
POINTS = SETTINGS.points  # question -> its maximum
FULL = SETTINGS.max_total
QUESTIONS = questions()

# submission -> (submitters [(name, sid, email)], score per question as a fraction of its max)
CLASS = {
    "submission_1": ([("Ada Lovelace", "1815", "ada@example.edu")], (1, 1, 1)),
    "submission_2": ([("Łukasz Kaiser", "2001", "lk@example.edu")], (0.5, 1, 0)),
    "submission_3": ([("Bob Copy", "2003", "bob@example.edu"),
                      ("Carol Copy", "2004", "carol@example.edu")], (0, 0, 1)),
}


def record(key: str, people, fractions) -> dict:
    scores = {q: round(f * POINTS[q], 4) for q, f in zip(QUESTIONS, fractions)}
    return {
        "format": batch.RECORD_FORMAT, "key": key, "status": "graded", "message": "",
        "submitters": [{"name": n, "sid": s, "email": e} for n, s, e in people],
        "student": "; ".join(f"{n} <{e}>" for n, _, e in people),
        "questions": {q: {"score": scores[q], "max_score": POINTS[q], "status": "graded",
                          "diagnoses": []} for q in QUESTIONS},
        "total": round(sum(scores.values()), 4), "max_total": FULL,
    }


def expected_total(key: str, **changed: float) -> float:
    fractions = CLASS[key][1]
    return sum(changed.get(q, f * POINTS[q]) for q, f in zip(QUESTIONS, fractions))


@pytest.fixture
def out(tmp_path) -> Path:
    folder = tmp_path / "out"
    for key, (people, fractions) in CLASS.items():
        (folder / key).mkdir(parents=True)
        (folder / key / "record.json").write_text(json.dumps(record(key, people, fractions)),
                                                  encoding="utf-8")
    return folder


def run(*args):
    return CliRunner().invoke(cli.main, [*map(str, args)])


def lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


def write_overrides(out: Path, *rows: str) -> Path:
    path = out / "overrides.csv"
    path.write_text("\n".join(["submission,sid,question,points,reason", *rows]) + "\n",
                    encoding="utf-8")
    return path


def gradebook_scores(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8-sig") as handle:
        return {row["sid"]: row for row in csv.DictReader(handle)}


# --- the rules of the upload files, re-stated from the documentation ------------------------

def canvas_import(text: str) -> tuple[dict[str, float], dict[str, float]]:
    """Read ``text`` as Canvas's gradebook importer does: ({assignment: points possible},
    {student key: score}) for the single assignment column. The student key is the first
    identifier Canvas tries that is present: ID, then SIS User ID, then SIS Login ID, then the
    name. Raises AssertionError where Canvas would reject the file ("Invalid header row")."""
    table = list(csv.reader(io.StringIO(text)))
    header = table[0]
    assert len(header) > 3 and "Student" in header[0] and "ID" in header[1], "Invalid header row"
    columns = 3  # Student, ID, Section
    sis_user = sis_login = None
    if re.search(r"SIS\s+Login\s+ID", header[2]):
        sis_login, columns = 2, columns + 1
    elif re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3]):
        extra = 1 if re.search(r"Integration\s+ID", header[4]) else 0
        sis_user, sis_login, columns = 2, 3, columns + 2 + extra
        if re.search(r"Root\s+Account", header[4 + extra]):
            columns += 1
    assert "Section" in header[columns - 1], "Invalid header row (no Section column)"
    assignments = header[columns:]
    assert len(assignments) == 1, assignments
    points, scores = {}, {}
    for row in table[1:]:
        if "Points Possible" in row[0]:
            points[assignments[0]] = float(row[columns])
            continue
        key = (row[1] or (row[sis_user] if sis_user is not None else "")
               or (row[sis_login] if sis_login is not None else "") or row[0])
        scores[key] = float(row[columns])
    return points, scores


def gradescope_roster_rules(raw: bytes) -> list[dict[str, str]]:
    """The rows of ``raw`` if it keeps what Gradescope documents for a CSV of students (UTF-8, a
    header row, a Name and an Email column, one unique email per student); AssertionError if
    not."""
    text = raw.decode("utf-8-sig")  # UnicodeDecodeError if not UTF-8
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {"Name", "Email"} <= set(rows[0]), "no Name and Email columns"
    emails = [row["Email"] for row in rows]
    assert all(emails) and len(set(emails)) == len(emails), "emails must be unique"
    return rows


def test_the_rule_checks_reject_files_that_break_the_documented_rules():
    canvas_ok = ("Student,ID,SIS User ID,SIS Login ID,Section,A\r\n"
                 "Points Possible,,,,,10\r\nAda,,1815,ada@x,,7\r\n")
    assert canvas_import(canvas_ok) == ({"A": 10.0}, {"1815": 7.0})
    for broken in (canvas_ok.replace("Student,", "Name,", 1),         # no Student column
                   canvas_ok.replace("SIS User ID,SIS Login ID,Section",  # Section not last
                                     "Section,SIS User ID,SIS Login ID")):
        with pytest.raises(AssertionError):
            canvas_import(broken)
    gradescope_ok = "Name,SID,Email,Total Score\r\nAda,1815,ada@x,7\r\nBob,2,bob@x,1\r\n"
    assert len(gradescope_roster_rules(gradescope_ok.encode())) == 2
    for broken in (gradescope_ok.replace("bob@x", "ada@x"), gradescope_ok.replace("Email", "Mail"),
                   gradescope_ok.replace("Ada", "Łukasz")):
        with pytest.raises((AssertionError, UnicodeDecodeError)):
            gradescope_roster_rules(broken.encode("utf-8") if "Ł" not in broken
                                    else broken.encode("cp1250"))


def test_canvas_and_gradescope_files_read_back_as_the_documentation_says(out, tmp_path):
    write_overrides(out, "submission_2,,q3,1,\"regrade: the loop was right\"")
    result = run("export-grades", out, "--format", "canvas", "--assignment",
                 "Adaline three ways (4711)", "-o", tmp_path / "canvas.csv")
    assert result.exit_code == 0, result.output
    points, scores = canvas_import((tmp_path / "canvas.csv").read_text(encoding="utf-8"))
    assert points == {"Adaline three ways (4711)": FULL}
    assert scores == {"1815": expected_total("submission_1"),
                      "2001": expected_total("submission_2", q3=1),
                      "2003": expected_total("submission_3"),
                      "2004": expected_total("submission_3")}

    result = run("export-grades", out, "--format", "gradescope", "--excel")
    assert result.exit_code == 0, result.output
    rows = gradescope_roster_rules((out / "export-gradescope.csv").read_bytes())
    assert {(r["Name"], r["Email"], float(r["Total Score"])) for r in rows} == {
        ("Ada Lovelace", "ada@example.edu", expected_total("submission_1")),
        ("Łukasz Kaiser", "lk@example.edu", expected_total("submission_2", q3=1)),
        ("Bob Copy", "bob@example.edu", expected_total("submission_3")),
        ("Carol Copy", "carol@example.edu", expected_total("submission_3"))}


def test_a_student_in_two_submissions_is_left_out_of_the_uploads_with_a_warning(out):
    twin = record("submission_9", [("Ada Lovelace", "1815", "ada@example.edu")], (0, 0, 0))
    (out / "submission_9").mkdir()
    (out / "submission_9" / "record.json").write_text(json.dumps(twin), encoding="utf-8")
    result = run("export-grades", out, "--format", "gradescope")
    assert result.exit_code == 0, result.output
    rows = gradescope_roster_rules((out / "export-gradescope.csv").read_bytes())
    assert "ada@example.edu" not in {r["Email"] for r in rows} and len(rows) == 3
    warned = [line for line in lines(result) if "1815" in line or "ada@example.edu" in line]
    assert warned and all("submission_1, submission_9" in line for line in warned)


# --- overrides that name nobody --------------------------------------------------------------

UNMATCHED = ("submission_1,,q1,0,\"copied, see the similarity report\"",  # line 2: applies
             "submission_99,,q2,1,typo in the folder name",               # line 3: nobody
             ",2004,q2,2,partial credit for the outline",                # line 4: applies
             ",9999,q3,1,typo in the sid")                                # line 5: nobody


def test_the_rebuild_reports_every_unmatched_override_row_with_its_line(out):
    path = write_overrides(out, *UNMATCHED)
    result = run("grade", "-o", out)
    assert result.exit_code == 0, result.output
    reported = [line for line in lines(result) if f"{path}:" in line]
    assert [re.search(rf"{re.escape(str(path))}:(\d+):", line).group(1)
            for line in reported] == ["3", "5"]
    assert "'submission_99'" in reported[0] and "'9999'" in reported[1]
    assert all("not applied" in line for line in reported)
    assert "2 override row(s)" in result.output
    book = gradebook_scores(out)  # the rows that match are applied
    assert float(book["1815"]["q1"]) == 0
    assert float(book["2004"]["q2"]) == float(book["2003"]["q2"]) == 2
    assert float(book["2001"]["total"]) == expected_total("submission_2")


def test_export_refuses_while_override_rows_are_unmatched_unless_told(out, tmp_path):
    path = write_overrides(out, *UNMATCHED)
    target = tmp_path / "canvas.csv"
    result = run("export-grades", out, "--format", "canvas", "-o", target)
    assert result.exit_code == 2
    assert [line.split(":")[0] for line in lines(result)] == ["Error", "Error"]
    assert [f"{path}:3:" in lines(result)[0], f"{path}:5:" in lines(result)[1]] == [True, True]
    assert all("--ignore-unmatched-overrides" in line for line in lines(result))
    assert "Traceback" not in result.output and not target.exists()

    result = run("export-grades", out, "--format", "canvas", "-o", target,
                 "--ignore-unmatched-overrides")
    assert result.exit_code == 0, result.output
    warned = [line for line in lines(result) if line.startswith("Warning:")]
    assert len(warned) == 2 and f"{path}:3:" in warned[0] and f"{path}:5:" in warned[1]
    _, scores = canvas_import(target.read_text(encoding="utf-8"))
    assert scores["1815"] == expected_total("submission_1", q1=0)
    assert scores["2004"] == scores["2003"] == expected_total("submission_3", q2=2)
    assert scores["2001"] == expected_total("submission_2")


# --- malformed overrides ---------------------------------------------------------------------

MALFORMED = {  # line -> (row, what the message must say)
    2: ("submission_1,,q9,1,typo", "unknown question 'q9'"),
    3: (f"submission_1,,q1,{POINTS['q1'] + 1:g},too generous", "between 0 and"),
    4: ("submission_1,,q2,-1,a penalty", "between 0 and"),
    5: ("submission_2,,q3,1,", "a reason is required"),
    6: ("submission_2,,q1,four,in words", "not a number"),
    7: ("submission_2,2001,q1,1,both given", "either a submission or a sid"),
    8: (",,q1,1,neither given", "either a submission or a sid"),
}


def test_malformed_override_rows_each_name_file_and_line_and_stop_export_and_rebuild(out):
    path = write_overrides(out, *(row for row, _ in MALFORMED.values()),
                           "submission_3,,q1,1,a good row")  # line 9
    for flags in ((), ("--ignore-unmatched-overrides",)):
        result = run("export-grades", out, "--format", "gradescope", *flags)
        assert result.exit_code == 2, result.output
        reported = lines(result)
        assert len(reported) == len(MALFORMED), result.output
        for line, (number, (_, what)) in zip(reported, MALFORMED.items()):
            assert line.startswith(f"Error: {path}:{number}: ") and what in line, line
        assert not (out / "export-gradescope.csv").exists()

    result = run("grade", "-o", out)
    assert result.exit_code == 2
    assert [line.split(": ")[1] for line in lines(result)] == \
        [f"{path}:{n}" for n in MALFORMED]
    assert not (out / "grades.csv").exists()  # nothing rebuilt half-overridden

    path.write_text("submission,question,points,reason\nsubmission_1,q1,1,no sid column\n")
    result = run("export-grades", out, "--format", "csv")
    assert result.exit_code == 2 and len(lines(result)) == 1
    assert f"{path}:1: " in result.output and "missing: sid" in result.output


def test_export_stops_with_one_line_while_a_grading_run_holds_the_folder(out, tmp_path):
    from adaline_kit.grade import lock

    target = tmp_path / "grades.csv"
    with lock.hold(out):  # what a grading run holds while it changes the folder
        result = run("export-grades", out, "--format", "csv", "-o", target)
        assert result.exit_code == 1 and len(lines(result)) == 1, result.output
        assert "being graded by another run" in result.output and not target.exists()
    assert run("export-grades", out, "--format", "csv", "-o", target).exit_code == 0
    assert target.is_file()

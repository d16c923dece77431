"""The upload files of Canvas's gradebook import and Gradescope's score upload.

Both take one row per student (group members each get the group's score) with the total after
overrides; submissions whose grading failed (status ``error``) and students without an SID or
email (notebooks graded from a plain folder) cannot be matched and are left out with a warning.

- **canvas**: ``Student, ID, SIS User ID, SIS Login ID, Section, <assignment>``, then a
  ``Points Possible`` row, as Canvas's gradebook export writes them and its import reads them.
  ``SIS User ID`` is the SID, ``SIS Login ID`` the email; ``ID`` (Canvas's internal user id) and
  ``Section`` are left empty. A new assignment name makes Canvas create the assignment.
- **gradescope**: ``Name, SID, Email, Total Score``: the identity columns of Gradescope's roster
  and grade exports, which its score upload matches by email or SID.
- **csv**: the gradebook itself (``grades.csv``'s columns).
"""

from __future__ import annotations

import csv
import io
from typing import Sequence

from ..grade import gradebook

FORMATS = ("canvas", "gradescope", "csv")
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
GRADESCOPE_COLUMNS = ("Name", "SID", "Email", "Total Score")


def _number(value) -> str:
    return f"{round(float(value), 4):g}"


def uploadable(records: Sequence[dict]) -> tuple[list[tuple[dict, dict]], list[str]]:
    """(person, record) pairs an LMS can match, sorted by name, and warnings for the rest."""
    pairs, warnings = [], []
    for record in sorted(records, key=lambda r: str(r.get("key"))):
        if record.get("status") == "error":
            warnings.append(f"{record.get('key')}: not exported, its grading failed (status "
                            "error); grade it again first")
            continue
        for person in gradebook.people(record):
            if not (person.get("sid") or person.get("email")):
                warnings.append(f"{record.get('key')}: not exported, no SID or email is known "
                                "(grade it from a Gradescope export to have them)")
                continue
            pairs.append((person, record))
    pairs.sort(key=lambda pair: (str(pair[0].get("name", "")).casefold(),
                                 str(pair[0].get("sid", ""))))
    return pairs, warnings


def _identity(person: dict) -> tuple[str, str, str]:
    """Name, SID, email, never a cell that a spreadsheet would run as a formula."""
    return tuple(gradebook.safe_text(person.get(k)) for k in ("name", "sid", "email"))


def canvas(records: Sequence[dict], assignment: str) -> tuple[str, list[str]]:
    pairs, warnings = uploadable(records)
    top = max((float(r.get("max_total", 0)) for r in records), default=0.0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*CANVAS_IDENTITY, assignment])
    writer.writerow(["Points Possible", "", "", "", "", _number(top)])
    for person, record in pairs:
        name, sid, email = _identity(person)
        writer.writerow([name, "", sid, email, "", _number(record.get("total", 0))])
    return buffer.getvalue(), warnings


def gradescope(records: Sequence[dict]) -> tuple[str, list[str]]:
    pairs, warnings = uploadable(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(GRADESCOPE_COLUMNS)
    for person, record in pairs:
        writer.writerow([*_identity(person), _number(record.get("total", 0))])
    return buffer.getvalue(), warnings


def render(kind: str, records: Sequence[dict], due: str, assignment: str) -> tuple[str, list[str]]:
    """The file's text for format ``kind`` and the warnings about left-out students."""
    if kind == "canvas":
        return canvas(records, assignment)
    if kind == "gradescope":
        return gradescope(records)
    return gradebook.render(records, due), []

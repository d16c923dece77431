"""The upload files for Canvas's gradebook import and for Gradescope.

Both take one row per student (group members each get the group's score) with the total after
overrides; submissions whose grading failed (status ``error``), students without an SID or
email (notebooks graded from a plain folder) and students in more than one submission cannot be
matched to one score and are left out with a warning.

- **canvas**: ``Student, ID, SIS User ID, SIS Login ID, Section, <assignment>``, then a
  ``Points Possible`` row. These are the rules of Canvas's gradebook import (its importer,
  ``GradebookImporter`` in Canvas's source, and the import guides cited in the README): the
  header starts with a ``Student`` and an ``ID`` column; ``SIS User ID`` followed by
  ``SIS Login ID`` are read as identifiers; ``Section`` ends the student columns and every
  later column is an assignment, matched by ``Title (id)``, else by its exact title, else
  created; a row whose first cell says ``Points Possible`` sets the assignment's points.
  Students are matched by ``ID`` (Canvas's user id, left empty here), then ``SIS User ID``
  (the SID), then ``SIS Login ID`` (the email), then by name.
- **gradescope**: ``Name, SID, Email, Total Score``. Gradescope documents no CSV score upload
  that we could find. The file follows the CSV rules it documents for its roster import (a
  header row; a ``Name`` and an ``Email`` column; one unique email per student; UTF-8 for
  accented names); ``SID`` and ``Total Score`` are the names its own grade exports use.
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
    pairs, twice = _once_each(pairs)
    warnings += twice
    pairs.sort(key=lambda pair: (str(pair[0].get("name", "")).casefold(),
                                 str(pair[0].get("sid", ""))))
    return pairs, warnings


def _once_each(pairs: list[tuple[dict, dict]]) -> tuple[list[tuple[dict, dict]], list[str]]:
    """``pairs`` without students who are in more than one submission (an LMS would take one
    of the scores at random), and a warning for each of them."""
    where: dict[str, list[str]] = {}
    for person, record in pairs:
        for kind in ("sid", "email"):
            if person.get(kind):
                where.setdefault(f"{kind} {person[kind]}", []).append(str(record.get("key")))
    twice = {who: keys for who, keys in where.items() if len(set(keys)) > 1}
    warnings = [f"{who}: not exported, in more than one submission ({', '.join(sorted(keys))}); "
                "keep one of them in the folder" for who, keys in sorted(twice.items())]
    kept = [(person, record) for person, record in pairs
            if not any(f"{kind} {person.get(kind)}" in twice for kind in ("sid", "email"))]
    return kept, warnings


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

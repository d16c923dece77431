"""The class gradebook, ``OUT/grades.csv``: one row per student, written atomically.

Columns: submission, sid, email, name, student, one per declared question (grading.toml
[points], in order), total, max_total, status,
submitted_at, late, confinement, flags, overrides, message.

- One row per submitter: a group submission gives each member a row with the group's scores
  (``student`` lists the whole group, ``Name <email>; ...``). A submission with no metadata (a
  notebook graded from a folder) has one row with sid, email and name empty.
- ``status`` is the report's: ``graded``, ``flagged`` (graded, and its code reached for the
  grader's machinery: ``flags`` gives the evidence, for course staff; see
  :mod:`adaline_kit.grade.tampering`), ``invalid`` (not a usable notebook) or ``error`` (the
  grader failed or refused to run unconfined; the reason is in ``message``).
- ``submitted_at`` is the export's submission time (ISO 8601); ``late`` is ``yes`` or ``no`` when
  both it and a due date (``--due`` or the export's) are known, else empty.
- ``confinement`` says how the student's code was confined (separate user, Landlock, caps; see
  :func:`adaline_kit.grade.session.describe_confinement`), empty for a file that never ran.
- ``overrides`` lists the manual overrides applied (see :mod:`.overrides`); scores and totals
  already include them.

Messages are flattened to one line, and text cells that a spreadsheet would run as a formula get
a leading apostrophe. The file is UTF-8; ``excel=True`` adds the byte-order mark Excel needs.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from pathlib import Path
from typing import Sequence

from ..settings import questions as declared_questions
from . import overrides as overrides_module
from .gradescope_export import parse_time

IDENTITY_COLUMNS = ("submission", "sid", "email", "name", "student")
RESULT_COLUMNS = ("total", "max_total", "status", "submitted_at", "late", "confinement", "flags",
                  "overrides", "message")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def _number(value) -> str:
    try:
        return f"{round(float(value), 4):g}"
    except (TypeError, ValueError):
        return ""


def safe_text(value) -> str:
    """``value`` on one line, with a leading apostrophe if a spreadsheet would run it."""
    text = " ".join(str(value or "").split())
    return "'" + text if text.startswith(FORMULA_STARTS) else text


_text = safe_text


def late(record: dict, due: str = "") -> str:
    """``yes``/``no`` if the submission time and a due date (``due``, else the record's) are
    known; else ""."""
    submitted = parse_time(record.get("submitted_at") or "")
    deadline = parse_time(due or record.get("due") or "")
    if submitted is None or deadline is None:
        return ""
    return "yes" if submitted > deadline else "no"


def people(record: dict) -> list[dict]:
    """The submitters of ``record`` (name, email, sid), or one empty person if none is known."""
    found = [p for p in record.get("submitters") or [] if isinstance(p, dict)]
    return found or [{}]


def rows(record: dict, due: str = "") -> list[dict[str, str]]:
    """The gradebook rows of one (already overridden) record: one per submitter."""
    questions = record.get("questions", {})
    shared = {
        "submission": _text(record.get("key")),
        "student": _text(record.get("student")),
        "total": _number(record.get("total")),
        "max_total": _number(record.get("max_total")),
        "status": _text(record.get("status")),
        "submitted_at": _text(record.get("submitted_at")),
        "late": late(record, due),
        "confinement": _text(record.get("confinement")),
        "flags": _text("; ".join(record.get("flags") or [])),
        "overrides": _text(overrides_module.summary(record)),
        "message": _text(record.get("message")),
    }
    for question in declared_questions():
        shared[question] = _number(questions.get(question, {}).get("score"))
    return [{**shared, "sid": _text(p.get("sid")), "email": _text(p.get("email")),
             "name": _text(p.get("name"))} for p in people(record)]


def columns() -> tuple[str, ...]:
    """grades.csv's header: identity, one column per declared question, results."""
    return (*IDENTITY_COLUMNS, *declared_questions(), *RESULT_COLUMNS)


def row(record: dict) -> dict[str, str]:
    """The first row of ``record`` (the only one unless it is a group submission)."""
    return rows(record)[0]


def render(records: Sequence[dict], due: str = "") -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(), lineterminator="\n")
    writer.writeheader()
    for record in sorted(records, key=lambda r: str(r.get("key"))):
        writer.writerows(rows(record, due))
    return buffer.getvalue()


def write_text(path: Path, text: str, excel: bool = False) -> Path:
    """Write ``text`` as UTF-8 (with a BOM if ``excel``) through a temporary file and a rename."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text((BOM if excel else "") + text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def write(path: Path, records: Sequence[dict], due: str = "") -> Path:
    """Write the gradebook of ``records`` (overrides already applied) to ``path``."""
    return write_text(path, render(records, due))


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))

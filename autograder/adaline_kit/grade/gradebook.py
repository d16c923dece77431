"""The class gradebook, ``OUT/grades.csv``: one row per submission, written atomically.

Columns: submission, student, q1, q2, q3, total, max_total, status, message. ``status`` is the
report's: ``graded``, ``invalid`` (not a usable notebook) or ``error`` (the grader failed; the
reason is in ``message``). Messages are flattened to one line, and text cells that a spreadsheet
would run as a formula get a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from pathlib import Path
from typing import Sequence

from ..settings import QUESTIONS

COLUMNS = ("submission", "student", *QUESTIONS, "total", "max_total", "status", "message")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _number(value) -> str:
    try:
        return f"{round(float(value), 4):g}"
    except (TypeError, ValueError):
        return ""


def _text(value) -> str:
    text = " ".join(str(value or "").split())
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def row(record: dict) -> dict[str, str]:
    questions = record.get("questions", {})
    values = {
        "submission": _text(record.get("key")),
        "student": _text(record.get("student")),
        "total": _number(record.get("total")),
        "max_total": _number(record.get("max_total")),
        "status": _text(record.get("status")),
        "message": _text(record.get("message")),
    }
    for question in QUESTIONS:
        values[question] = _number(questions.get(question, {}).get("score"))
    return values


def render(records: Sequence[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in sorted(records, key=lambda r: str(r.get("key"))):
        writer.writerow(row(record))
    return buffer.getvalue()


def write(path: Path, records: Sequence[dict]) -> Path:
    """Write the gradebook to ``path`` through a temporary file and one rename."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(render(records), encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))

"""Rebuild the class files of an output folder from every graded submission in it.

``grades.csv``, ``stats.csv``, ``feedback.zip`` and ``summary.png`` are always rebuilt from all
``OUT/<key>/record.json`` files, with ``OUT/overrides.csv`` applied, so grading any subset of the
class (one folder of an export, ``--only``, ``--force`` on a few) keeps every other student.
``OUT/class.json`` keeps the class folder's settings given once on the command line (``due``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..settings import questions as declared_questions
from . import batch, gradebook, overrides, reports, stats

CLASS_FILE = "class.json"
CLASS_FILES = ("grades.csv", "stats.csv", "feedback.zip", "summary.png")


def read_settings(out: Path) -> dict:
    try:
        value = json.loads((Path(out) / CLASS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def save_settings(out: Path, **changes) -> dict:
    current = read_settings(out)
    current.update({k: v for k, v in changes.items() if v is not None})
    batch.write_json_atomically(Path(out) / CLASS_FILE, current)
    return current


def max_points(records) -> dict[str, float]:
    from .. import settings as settings_module

    points = dict(settings_module.load().points)
    for record in records:
        for question, entry in record.get("questions", {}).items():
            points[question] = max(points.get(question, 0.0), float(entry.get("max_score", 0)))
    return {q: points.get(q, 0.0) for q in declared_questions()}


@dataclasses.dataclass
class ClassBook:
    """The folder's records with the well-formed overrides applied, and what is wrong with
    ``overrides.csv``: ``malformed`` and ``unmatched`` rows, one ``FILE:LINE: what`` each."""

    out: Path
    records: list[dict]
    due: str
    malformed: list[str]
    unmatched: list[str]

    @property
    def override_problems(self) -> list[str]:
        return self.malformed + self.unmatched


def load(out: Path) -> ClassBook:
    """Every graded submission of ``out`` with its overrides (none of a malformed row)."""
    out = Path(out)
    raw = batch.collect(out)
    found, malformed = overrides.load(out, max_points(raw))
    adjusted, unmatched = overrides.apply(raw, found)
    return ClassBook(out, adjusted, str(read_settings(out).get("due") or ""), malformed,
                     unmatched)


def rebuild(out: Path) -> tuple[ClassBook, reports.ClassSummary]:
    """Write grades.csv, stats.csv, feedback.zip and summary.png of ``out``; OverrideError (and
    nothing written) while ``overrides.csv`` has malformed rows."""
    book = load(out)
    if book.malformed:
        raise overrides.OverrideError(book.malformed)
    gradebook.write(book.out / "grades.csv", book.records, book.due)
    stats.write(book.out / "stats.csv", book.records)
    reports.write_feedback_zip(book.out, book.records)
    summary = reports.ClassSummary(book.records)
    summary.write_png(book.out / "summary.png")
    return book, summary

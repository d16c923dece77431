"""``OUT/stats.csv``: per-question statistics of the class (scores after overrides).

One row per question and one for the total, columns: ``question``, ``max_points``,
``submissions``, ``mean``, ``median``, ``full_marks_rate``, ``zero_rate`` (rates are fractions,
0 to 1), then ``diagnosis: NAME`` for every diagnosis seen in the class: how many submissions got
it on that question; in the total row, how many submissions got it on any question (each
submission counted once, however many of its questions got it).
Every record in the folder counts, ``invalid`` and ``error`` ones (scored zero) included.
"""

from __future__ import annotations

import collections
import csv
import io
import statistics
from pathlib import Path
from typing import Sequence

from ..settings import questions as declared_questions
from .gradebook import write_text

BASE_COLUMNS = ("question", "max_points", "submissions", "mean", "median", "full_marks_rate",
                "zero_rate")


def _round(value: float) -> str:
    return f"{round(value, 4):g}"


def _row(name: str, scores: list[float], top: float, diagnoses: collections.Counter) -> dict:
    values = {"question": name, "max_points": _round(top), "submissions": str(len(scores))}
    if scores:
        values.update(mean=_round(statistics.fmean(scores)),
                      median=_round(statistics.median(scores)),
                      full_marks_rate=_round(sum(s >= top > 0 for s in scores) / len(scores)),
                      zero_rate=_round(sum(s <= 0 for s in scores) / len(scores)))
    values.update({f"diagnosis: {d}": str(n) for d, n in diagnoses.items()})
    return values


def submissions_per_diagnosis(records: Sequence[dict]) -> collections.Counter:
    """Diagnosis -> the number of submissions (records) that got it on at least one question."""
    return collections.Counter(
        d for r in records
        for d in {d for q in (r.get("questions") or {}).values() if q
                  for d in q.get("diagnoses", [])})


def table(records: Sequence[dict]) -> list[dict[str, str]]:
    """The rows of stats.csv for ``records`` (overrides already applied)."""
    result = []
    for question in declared_questions():
        entries = [r.get("questions", {}).get(question) or {} for r in records]
        scores = [float(e.get("score", 0.0)) for e in entries]
        top = max((float(e.get("max_score", 0.0)) for e in entries), default=0.0)
        counts = collections.Counter(d for e in entries for d in set(e.get("diagnoses", [])))
        result.append(_row(question, scores, top, counts))
    totals = [float(r.get("total", 0.0)) for r in records]
    top = max((float(r.get("max_total", 0.0)) for r in records), default=0.0)
    result.append(_row("total", totals, top, submissions_per_diagnosis(records)))
    return result


def render(records: Sequence[dict]) -> str:
    rows = table(records)
    diagnoses = sorted({c for row in rows for c in row if c.startswith("diagnosis: ")})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*BASE_COLUMNS, *diagnoses], restval="0",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write(path: Path, records: Sequence[dict]) -> Path:
    return write_text(path, render(records))

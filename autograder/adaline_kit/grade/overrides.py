"""Manual score overrides kept in ``OUT/overrides.csv`` and applied on every gradebook rebuild.

The file has a header row and one override per row::

    submission,sid,question,points,reason
    submission_31000391,,qB,3,"regrade request: the loss was logged per minibatch"
    ,1815,qA,4,"late-day swap agreed by email"

``submission`` (a results folder's name) or ``sid`` (any submitter's SID; the override then
applies to that student's whole submission, group partners included) names the target;
``question`` is one of the assignment's questions; ``points`` is the question's new score (0 to
its maximum); ``reason`` is required and is shown to the student. A later row for the same
submission and question replaces an earlier one. A malformed row, or one whose submission or
sid is not in the folder, is reported as ``FILE:LINE: what`` and never applied in part. Graded results are never edited: the override
is applied when ``grades.csv``, ``stats.csv``, ``feedback.zip`` and the exports are built, so it
survives any regrade.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import html
from pathlib import Path
from typing import Sequence

from ..settings import questions as declared_questions

FILE_NAME = "overrides.csv"
COLUMNS = ("submission", "sid", "question", "points", "reason")


class OverrideError(ValueError):
    """``overrides.csv`` has malformed rows; ``problems`` holds one ``FILE:LINE: what`` each."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclasses.dataclass(frozen=True)
class Override:
    path: str
    line: int
    submission: str
    sid: str
    question: str
    points: float
    reason: str

    @property
    def where(self) -> str:
        """``FILE:LINE`` of the row, as editors and compilers print it."""
        return f"{self.path}:{self.line}"


def _parse(path: Path, line: int, values: dict[str, str],
           max_points: dict[str, float]) -> Override | str:
    """The override of one row, or what is wrong with it (without the ``FILE:LINE:`` prefix)."""
    if bool(values["submission"]) == bool(values["sid"]):
        return "give either a submission or a sid (one of the two)"
    if values["question"] not in declared_questions():
        return (f"unknown question {values['question']!r} "
                f"(one of {', '.join(declared_questions())})")
    try:
        points = float(values["points"])
    except ValueError:
        return f"points {values['points']!r} is not a number"
    top = max_points[values["question"]]
    if not 0 <= points <= top:  # also refuses nan
        return (f"points {values['points']} for {values['question']} must be between 0 and "
                f"{top:g} (its maximum)")
    if not values["reason"]:
        return "a reason is required (the student sees it)"
    return Override(str(path), line, values["submission"], values["sid"], values["question"],
                    points, values["reason"])


def load(out: Path, max_points: dict[str, float]) -> tuple[list[Override], list[str]]:
    """The well-formed overrides of the class folder ``out`` (none if the file is absent) and a
    ``FILE:LINE: what is wrong`` line per malformed row (unknown question, points out of range
    or not a number, no reason, not exactly one of submission and sid; or a bad header)."""
    path = Path(out) / FILE_NAME
    if not path.is_file():
        return [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                return [], [f"{path}:1: the header must have the columns {', '.join(COLUMNS)} "
                            f"(missing: {', '.join(missing)})"]
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return [], [f"{path}: cannot be read ({error})"]
    found, problems = [], []
    for line, row in rows:
        values = {c: (row.get(c) or "").strip() for c in COLUMNS}
        if not any(values.values()):
            continue
        parsed = _parse(path, line, values, max_points)
        if isinstance(parsed, Override):
            found.append(parsed)
        else:
            problems.append(f"{path}:{line}: {parsed}")
    return found, problems


def _targets(override: Override, records: Sequence[dict]) -> list[dict]:
    if override.submission:
        return [r for r in records if r.get("key") == override.submission]
    return [r for r in records
            if any(p.get("sid") == override.sid for p in r.get("submitters") or [])]


def apply(records: Sequence[dict], overrides: Sequence[Override]) -> tuple[list[dict], list[str]]:
    """Copies of ``records`` with the overrides applied, and a ``FILE:LINE: ...`` line per
    override that names no graded submission (it is not applied). An adjusted record gets
    ``overrides`` (a list of dicts: question, graded, points, reason) and its question score and
    total changed."""
    adjusted = [copy.deepcopy(r) for r in records]
    unmatched = []
    for override in overrides:
        targets = _targets(override, adjusted)
        if not targets:
            who = (f"submission {override.submission!r}" if override.submission
                   else f"sid {override.sid!r}")
            unmatched.append(f"{override.where}: {who} matches no graded submission in this "
                             f"folder; this override of {override.question} is not applied")
        for record in targets:
            question = record.setdefault("questions", {}).setdefault(
                override.question, {"score": 0.0, "max_score": 0.0, "diagnoses": []})
            notes = [n for n in record.get("overrides", []) if n["question"] != override.question]
            graded = next((n["graded"] for n in record.get("overrides", [])
                           if n["question"] == override.question), question.get("score", 0.0))
            notes.append({"question": override.question, "graded": graded,
                          "points": override.points, "reason": override.reason})
            record["overrides"] = sorted(notes, key=lambda n: n["question"])
            question["score"] = override.points
            record["total"] = round(sum(float(q.get("score", 0.0))
                                        for q in record["questions"].values()), 4)
    return adjusted, unmatched


def summary(record: dict) -> str:
    """One line for the gradebook: ``qB 1->3 (reason); ...``; "" if none."""
    return "; ".join(f"{n['question']} {n['graded']:g}->{n['points']:g} ({n['reason']})"
                     for n in record.get("overrides", []))


def feedback_section(record: dict) -> str:
    """The HTML section a student's feedback page gets for the overrides (escaped)."""
    items = "".join(
        f"<li>{html.escape(n['question'])}: {n['graded']:g} &rarr; <strong>{n['points']:g}"
        f"</strong> points. Reason: {html.escape(n['reason'])}</li>"
        for n in record.get("overrides", []))
    return (f'<section class="overrides"><h2>Adjusted by course staff</h2><ul>{items}</ul>'
            f"<p>Score after adjustment: <strong>{float(record.get('total', 0)):g} / "
            f"{float(record.get('max_total', 0)):g}</strong></p></section>")

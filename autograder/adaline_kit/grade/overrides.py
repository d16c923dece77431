"""Manual score overrides kept in ``OUT/overrides.csv`` and applied on every gradebook rebuild.

The file has a header row and one override per row::

    submission,sid,question,points,reason
    submission_31000391,,qB,3,"regrade request: the loss was logged per minibatch"
    ,1815,qA,4,"late-day swap agreed by email"

``submission`` (a results folder's name) or ``sid`` (any submitter's SID; the override then
applies to that student's whole submission, group partners included) names the target;
``question`` is one of the assignment's questions; ``points`` is the question's new score (0 to
its maximum); ``reason`` is required and is shown to the student. A later row for the same
submission and question replaces an earlier one. Graded results are never edited: the override
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
    """``overrides.csv`` cannot be used; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class Override:
    line: int
    submission: str
    sid: str
    question: str
    points: float
    reason: str


def load(out: Path, max_points: dict[str, float]) -> list[Override]:
    """The overrides of the class folder ``out`` (none if the file is absent)."""
    path = Path(out) / FILE_NAME
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise OverrideError(f"{path}: the header must have the columns "
                                    f"{', '.join(COLUMNS)} (missing: {', '.join(missing)})")
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise OverrideError(f"{path}: cannot be read ({error})") from None
    found = []
    for line, row in rows:
        values = {c: (row.get(c) or "").strip() for c in COLUMNS}
        if not any(values.values()):
            continue
        where = f"{path}, line {line}"
        if bool(values["submission"]) == bool(values["sid"]):
            raise OverrideError(f"{where}: give either a submission or a sid")
        if values["question"] not in declared_questions():
            raise OverrideError(f"{where}: unknown question {values['question']!r} "
                                f"(one of {', '.join(declared_questions())})")
        try:
            points = float(values["points"])
        except ValueError:
            raise OverrideError(f"{where}: points {values['points']!r} is not a number") from None
        top = max_points[values["question"]]
        if not 0 <= points <= top:
            raise OverrideError(f"{where}: points must be between 0 and {top:g}")
        if not values["reason"]:
            raise OverrideError(f"{where}: a reason is required (the student sees it)")
        found.append(Override(line, values["submission"], values["sid"], values["question"],
                              points, values["reason"]))
    return found


def _targets(override: Override, records: Sequence[dict]) -> list[dict]:
    if override.submission:
        return [r for r in records if r.get("key") == override.submission]
    return [r for r in records
            if any(p.get("sid") == override.sid for p in r.get("submitters") or [])]


def apply(records: Sequence[dict], overrides: Sequence[Override]) -> tuple[list[dict], list[str]]:
    """Copies of ``records`` with the overrides applied, and a warning per override that names
    no graded submission. An adjusted record gets ``overrides`` (a list of dicts: question,
    graded, points, reason) and its question score and total changed."""
    adjusted = [copy.deepcopy(r) for r in records]
    warnings = []
    for override in overrides:
        targets = _targets(override, adjusted)
        if not targets:
            who = override.submission or f"sid {override.sid}"
            warnings.append(f"{FILE_NAME}, line {override.line}: {who} is not in this folder; "
                            "the override is not applied")
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
    return adjusted, warnings


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

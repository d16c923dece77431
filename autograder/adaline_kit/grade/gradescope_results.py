"""Gradescope's ``results.json``: build it from a report and validate it against the spec's schema.

The schema (``gradescope_results.schema.json`` beside this module) follows Gradescope's autograder
specification (https://gradescope-autograders.readthedocs.io/en/latest/specs/); the kit also
requires, for each test, the fields it always writes: name, score, max_score, status, output
and visibility.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema

from ..settings import Settings
from .feedback import question_feedback
from . import tampering
from .runner import SubmissionReport

SCHEMA_FILE = Path(__file__).with_name("gradescope_results.schema.json")


def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def validate(results: dict) -> None:
    """Raise jsonschema.ValidationError if ``results`` does not follow the specification."""
    jsonschema.validate(results, schema())


def build(report: SubmissionReport, settings: Settings) -> dict:
    """The results.json content for ``report``; hidden results use the configured visibility."""
    tests = []
    for number, (name, question) in enumerate(report.questions.items(), start=1):
        tests.append({
            "name": name,
            "number": str(number),
            "score": question.score,
            "max_score": question.max_score,
            "status": "passed" if question.score >= question.max_score else "failed",
            "output": question_feedback(question),
            "visibility": settings.hidden_visibility,
        })
    graded = report.status in ("graded", "flagged")
    output = [f"Submission {report.name}: graded by the autograder."
              if graded else report.message]
    if graded:
        output.append(report.message)
    if report.flags:  # for course staff only: students never see this entry
        tests.append({"name": "review", "score": 0.0, "max_score": 0.0, "status": "failed",
                      "output": tampering.flag_message(report.flags), "visibility": "hidden"})
    return {
        "score": report.total,
        "execution_time": max(1, math.ceil(report.execution_seconds)),
        "output": "\n".join(output),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"status": report.status, "probe_seed": report.seed,
                       "confinement": report.confinement, "flags": list(report.flags)},
    }


def write(report: SubmissionReport, settings: Settings, path: Path) -> dict:
    results = build(report, settings)
    validate(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    return results

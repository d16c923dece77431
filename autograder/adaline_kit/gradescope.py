"""Gradescope's entry point: ``python -m adaline_kit.gradescope /autograder``.

Called by the autograder zip's ``run_autograder``. Grades the one notebook (or export zip) in
``/autograder/submission`` and always writes ``/autograder/results/results.json``, even when the
submission is unusable or the grader itself fails.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from . import settings as settings_module
from .data import prepare_lecture_split
from .grade import gradescope_results
from .grade.runner import SubmissionReport, grade_submission, zero_questions
from .grade.sandbox import Zygote

SUBMISSION_SUFFIXES = (".ipynb", ".zip")


def find_submission(folder: Path) -> Path | None:
    """The submitted notebook: ``adaline_autograd.ipynb`` if present, else the first notebook,
    else the first zip (``grader.export()`` output)."""
    candidates = sorted(p for p in folder.rglob("*") if p.is_file()
                        and p.suffix in SUBMISSION_SUFFIXES and ".ipynb_checkpoints" not in p.parts)
    for preferred in ("adaline_autograd.ipynb",):
        for path in candidates:
            if path.name == preferred:
                return path
    notebooks = [p for p in candidates if p.suffix == ".ipynb"]
    return (notebooks or candidates or [None])[0]


def grade_autograder_dir(root: Path) -> dict:
    """Grade ``root/submission`` and write ``root/results/results.json``; return the results."""
    source = root / "source"
    settings = settings_module.load()
    results_path = root / "results" / "results.json"
    data_file = source / "files" / "data" / "iris.data"
    submission = find_submission(root / "submission")
    try:
        if submission is None:
            message = "No notebook (.ipynb) or export zip was found in the submission."
            report = SubmissionReport("(none)", zero_questions(settings, "failed", message),
                                      "invalid", message)
        else:
            with Zygote() as zygote:
                report = grade_submission(submission, zygote, settings,
                                          prepare_lecture_split(data_file), data_file)
        return gradescope_results.write(report, settings, results_path)
    except Exception as error:  # noqa: BLE001 - Gradescope must always get a results.json
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        message = f"The autograder failed ({detail}). Your submission was kept; please tell staff."
        report = SubmissionReport(submission.name if submission else "(none)",
                                  zero_questions(settings, "error", message), "error", message)
        return gradescope_results.write(report, settings, results_path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else "/autograder")
    results = grade_autograder_dir(root)
    print(json.dumps({"score": results["score"],
                      "tests": {t["name"]: t["score"] for t in results["tests"]}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

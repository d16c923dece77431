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
from .assignment import current as current_assignment
from .grade import gradescope_results
from .grade.runner import grade_submission, zero_report
from .grade.submission import find_submission
from .grade.sandbox import Zygote

def grade_autograder_dir(root: Path) -> dict:
    """Grade ``root/submission`` and write ``root/results/results.json``; return the results."""
    source = root / "source"
    settings = settings_module.load()
    results_path = root / "results" / "results.json"
    assignment = current_assignment()
    data_file = source / "files" / assignment.DATA_FILE
    submission = find_submission(root / "submission")
    try:
        if submission is None:
            report = zero_report("(none)", settings, "invalid", "No notebook (.ipynb) or export "
                                 "zip was found in the submission.")
        else:
            with Zygote() as zygote:
                # The folder, not the file: with several notebooks, the feedback says which.
                report = grade_submission(root / "submission", zygote, settings,
                                          assignment.load_data(data_file), data_file)
        return gradescope_results.write(report, settings, results_path)
    except Exception as error:  # noqa: BLE001 - Gradescope must always get a results.json
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        message = f"The autograder failed ({detail}). Your submission was kept; please tell staff."
        report = zero_report(submission.name if submission else "(none)", settings, "error",
                             message)
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

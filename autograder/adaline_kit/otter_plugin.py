"""An otter-grader plugin that re-grades each submission with the hardened grader.

Listed in ``otter_config.json``, so plain ``otter run -a autograder.zip SUBMISSION`` uses it: after
otter has run its hidden tests inside the student's kernel (where student code could tamper with
them), ``after_grading`` grades the same submission again in the kit's sandbox and replaces every
question's score with that verdict. Before grading it also
deletes any ``.OTTER_LOG`` from the submission, which otter would unpickle. What otter's hooks
cannot give plain ``otter run``: otter's own kernel run still has no per-cell time limit and still
sees the tests folder; see the README.
"""

from __future__ import annotations

from pathlib import Path

from otter.plugins import AbstractOtterPlugin

from . import settings as settings_module
from .assignment import current as current_assignment
from .grade.feedback import question_feedback
from .grade.runner import grade_submission
from .grade.sandbox import Zygote


def _data_file() -> Path:
    """Otter grades from the autograder folder: the zip's support file is under source/files."""
    name = current_assignment().DATA_FILE
    for candidate in (Path("source/files") / name, Path("submission") / name):
        if candidate.is_file():
            return candidate.resolve()
    from .build.paths import DATA_FILE

    return DATA_FILE


class HardenedGrading(AbstractOtterPlugin):
    """Replaces otter's in-kernel scores with the sandboxed grader's scores."""

    def before_grading(self, config):
        """Delete any ``.OTTER_LOG`` in the submission: otter unpickles it (running whatever it
        holds in the grader's process) even when grading from the log is off. Otter calls this
        hook from the submission folder, before it looks for the log."""
        for log in Path.cwd().rglob(".OTTER_LOG"):
            log.unlink()

    def after_grading(self, results):
        settings = settings_module.load()
        data_file = _data_file()
        with Zygote() as zygote:
            report = grade_submission(self.submission_path, zygote, settings,
                                      current_assignment().load_data(data_file), data_file)
        for question, verdict in report.questions.items():
            results.update_score(question, verdict.score)
        results.set_plugin_data("adaline_kit.otter_plugin.HardenedGrading", {
            "status": report.status, "scores": {q: v.score for q, v in report.questions.items()}})
        results.set_output("\n\n".join(
            [report.message] + [question_feedback(v) for v in report.questions.values()]))

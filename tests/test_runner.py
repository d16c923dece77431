"""grade_submission never reports a grader fault as the student's zeros."""

from __future__ import annotations

import os
import signal

from adaline_kit.build import paths
from adaline_kit.assignments.adaline_autograd.data import prepare_lecture_split
from adaline_kit.grade.runner import grade_submission
from adaline_kit.grade.sandbox import Zygote
from adaline_kit.settings import load


def test_a_dead_sandbox_gives_an_error_report_not_zeros(reference_notebook):
    settings = load()
    data = prepare_lecture_split(paths.DATA_FILE)
    with Zygote() as zygote:
        healthy = grade_submission(reference_notebook, zygote, settings, data, paths.DATA_FILE)
        os.killpg(zygote.process.pid, signal.SIGKILL)
        zygote.process.wait()
        broken = grade_submission(reference_notebook, zygote, settings, data, paths.DATA_FILE)
    assert healthy.status == "graded" and healthy.total == settings.max_total
    assert broken.status == "error"
    assert "sandbox" in broken.message

"""Shared fixtures: the built autograder zip, a Gradescope-like Python, reference notebooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaline_kit.build import paths

REPO = paths.REPO


@pytest.fixture(scope="session")
def autograder_zip(tmp_path_factory) -> Path:
    """The autograder zip, built fresh from this checkout."""
    from adaline_kit.build import autograder_zip as builder

    return builder.build(tmp_path_factory.mktemp("dist") / "autograder.zip")


@pytest.fixture(scope="session")
def student_zip(tmp_path_factory) -> Path:
    from adaline_kit.build import bundles

    return bundles.build_student_zip(tmp_path_factory.mktemp("dist") / "student.zip")


@pytest.fixture(scope="session")
def gradescope_python() -> Path:
    """An interpreter like the one setup.sh installs under /opt on Gradescope: the student user
    can read it, it has the third-party packages but not the kit (built once, then reused)."""
    from adaline_kit.grade.emulation import gradescope_python as make

    return make()


@pytest.fixture(scope="session")
def reference_notebook(tmp_path_factory) -> Path:
    """The completed reference notebook (solution markers removed)."""
    from adaline_kit.build import reference_submission

    return reference_submission(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="session")
def stub_notebook() -> Path:
    return paths.STUDENT_NOTEBOOK

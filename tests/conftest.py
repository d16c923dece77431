"""Shared fixtures: the built autograder zip, a Gradescope-like Python, reference notebooks.

``make test`` runs the modules in parallel (pytest-xdist, ``-n``): each module stays on one
worker, so its module fixtures (one class graded once) run once; modules whose attacks use the
same fixed file names in the temporary folder share a worker; the slowest modules start first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adaline_kit.build import paths

REPO = paths.REPO

# Started first, slowest first (as measured): a long module picked up late would end the run
# long after the other workers. Every other module follows in the usual order.
SLOWEST_FIRST = ("test_hardening.py", "test_sandbox_escape.py", "test_grade_equivalence.py",
                 "test_validation.py", "test_gradescope_image.py")
# Modules that must not run at the same time, so share a worker: both grade the attack
# corpus, whose escape and forged-log markers are fixed names in the temporary folder.
SAME_WORKER = {"test_hardening.py": "attack corpus", "test_sandbox_escape.py": "attack corpus"}


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whole modules in the order of ``SLOWEST_FIRST``, then the rest as collected."""
    rank = {name: place for place, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` (what ``make test`` uses), with the modules of ``SAME_WORKER``
    grouped and the collection's order kept (xdist would start the modules with the most
    tests first)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ModuleScheduling(LoadFileScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            config.option.loadscopereorder = False

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SAME_WORKER.get(_module(module), module)

    return ModuleScheduling(config, log)


def _once_per_run(tmp_path_factory, name: str, make) -> Path:
    """``make(folder)``'s result: under pytest-xdist built once for all workers (the first to
    ask builds it under a file lock, the others wait and reuse it), else in a fresh folder."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return make(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    folder = tmp_path_factory.getbasetemp().parent / name  # this run's, shared by its workers
    done = folder / ".built"
    with FileLock(f"{folder}.lock"):
        if not done.is_file():
            folder.mkdir(exist_ok=True)
            done.write_text(str(make(folder)))
    return Path(done.read_text())


@pytest.fixture(scope="session")
def autograder_zip(tmp_path_factory) -> Path:
    """The autograder zip, built fresh from this checkout (once per test run)."""
    from adaline_kit.build import autograder_zip as builder

    return _once_per_run(tmp_path_factory, "dist",
                         lambda folder: builder.build(folder / "autograder.zip"))


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

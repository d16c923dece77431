"""Build ``autograder.zip`` for Gradescope (and for ``otter run``).

``otter generate`` lays out the zip (``otter_config.json``, ``tests/``, ``files/`` with the
assignment's data file, ``run_otter.py``), so plain ``otter run -a autograder.zip`` grades with otter's own machinery and
the kit's plugin. The kit then replaces otter's Gradescope scripts: ``run_autograder`` calls the
hardened grader (``python -m adaline_kit.gradescope``), ``setup.sh`` installs the CPU-only torch
and no LaTeX or browser, and ``lib/`` carries the grading package itself (without the
assignment's validation corpus). ``run_autograder``'s fallback results, written when Python cannot
start, list the declared questions.
"""

from __future__ import annotations

import json
import os
import pprint
import tempfile
import zipfile
from pathlib import Path

from .. import settings as settings_module
from . import paths
from .zips import package_files, write_zip

TORCH_VERSION = "2.13.0"
OTTER_SCRIPTS_REPLACED = ("run_autograder", "setup.sh", "environment.yml", "requirements.txt")


def hidden_test_source(question: str, points: float) -> str:
    """An otter test file whose one hidden case runs the kit's checks for ``question``.

    The doctest shows only this call, so a failure never prints the checks' code.
    """
    test = {
        "name": question,
        "points": points,
        "suites": [{
            "cases": [{
                "code": (">>> from adaline_kit.otter_tests import check_question\n"
                         f">>> check_question({question!r}, globals())\n"
                         f"{question}: all hidden checks passed\n"),
                "hidden": True,
                "locked": False,
                "points": points,
            }],
            "scored": True, "setup": "", "teardown": "", "type": "doctest",
        }],
    }
    return f"OK_FORMAT = True\n\ntest = {pprint.pformat(test, sort_dicts=False)}\n"


def requirements_text() -> str:
    """The zip's requirements.txt: the kit's lock (see :mod:`.lock`), which setup.sh installs."""
    from .lock import LOCK_FILE

    return LOCK_FILE.read_text()


def _otter_generated(settings: settings_module.Settings, workdir: Path) -> dict[str, bytes]:
    """Run ``otter generate`` and return the zip's members."""
    tests = workdir / "tests"
    tests.mkdir()
    for question, points in settings.points.items():
        (tests / f"{question}.py").write_text(hidden_test_source(question, points))
    data_file = paths.DATA_NAME
    (workdir / data_file).parent.mkdir(parents=True, exist_ok=True)
    (workdir / data_file).write_bytes(paths.DATA_FILE.read_bytes())
    output = workdir / "otter-autograder.zip"
    _call_otter_generate(tests, output, workdir, [data_file])
    with zipfile.ZipFile(output) as archive:
        return {name: archive.read(name) for name in archive.namelist()
                if not name.endswith("/") and name not in OTTER_SCRIPTS_REPLACED}


def fallback_tests(points: dict) -> str:
    """The ``tests`` lines of run_autograder's fallback results.json (one per declared
    question, worth 0: nothing was graded)."""
    return ",\n".join("  " + json.dumps({
        "name": question, "score": 0, "max_score": 0, "status": "failed",
        "output": "Not graded: the autograder could not start.", "visibility": "visible"})
        for question in points)


def run_autograder_script(points: dict) -> bytes:
    """The zip's run_autograder, its fallback results listing the declared questions."""
    script = (paths.GRADESCOPE_FILES / "run_autograder").read_text()
    return script.replace("__FALLBACK_TESTS__", fallback_tests(points)).encode()


def _call_otter_generate(tests: Path, output: Path, workdir: Path, files: list[str]) -> None:
    from otter.generate import main as otter_generate

    previous = os.getcwd()
    os.chdir(workdir)  # otter stores support files under the paths it was given
    try:
        otter_generate(tests_dir=str(tests), output_path=str(output),
                       config=str(paths.OTTER_CONFIG), no_requirements=True,
                       no_environment=True, files=files)
    finally:
        os.chdir(previous)


def build(target: Path) -> Path:
    """Write the autograder zip to ``target`` and return it."""
    settings = settings_module.load()
    with tempfile.TemporaryDirectory(prefix="adaline-kit-generate-") as tmp:
        members: dict[str, bytes | Path] = dict(_otter_generated(settings, Path(tmp)))
    setup = (paths.GRADESCOPE_FILES / "setup.sh").read_text().replace(
        "__TORCH_VERSION__", TORCH_VERSION)
    members["setup.sh"] = setup.encode()
    members["run_autograder"] = run_autograder_script(settings.points)
    members["requirements.txt"] = requirements_text().encode()
    from ..assignment import current

    members.update(package_files(paths.PACKAGE, "lib", exclude=[current().CORPUS]))
    return write_zip(target, members, executable={"run_autograder", "setup.sh"})

"""What students receive holds no hidden tests, grading code or reference solutions."""

from __future__ import annotations

import zipfile

import nbformat
import pytest

from adaline_kit.build import paths
from adaline_kit.build.leaks import find_leaks, solution_lines

MASTER = nbformat.read(paths.MASTER_NOTEBOOK, as_version=4)


def _zip_contents(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_student_bundle_holds_exactly_the_public_files(student_zip):
    names = set(_zip_contents(student_zip))
    assert names == {
        "adaline_autograd/adaline_autograd.ipynb",
        "adaline_autograd/data/iris.data",
        "adaline_autograd/data/README.md",
        "adaline_autograd/requirements.txt",
        "adaline_autograd/tests/q1.py",
        "adaline_autograd/tests/q2.py",
        "adaline_autograd/tests/q3.py",
    }


def test_student_bundle_has_no_leaks(student_zip):
    assert find_leaks(_zip_contents(student_zip), MASTER) == []


def test_assignments_folder_has_no_leaks():
    files = {str(p.relative_to(paths.REPO)): p.read_bytes()
             for p in (paths.REPO / "assignments").rglob("*") if p.is_file()}
    assert files, "the assignments folder is empty"
    assert find_leaks(files, MASTER) == []


def test_the_master_has_solution_lines_to_look_for():
    assert len(solution_lines(MASTER)) >= 5


@pytest.mark.parametrize("name, content", [
    ("adaline_autograd/tests/q1_hidden.py",
     b'test = {"suites": [{"cases": [{"code": ">>> 1", "hidden": True}]}]}'),
    ("lib/adaline_kit/assignments/adaline_autograd/checks/q1.py", b"def check(): pass"),
    ("adaline_autograd/extra.py", b"from adaline_kit.otter_tests import check_question"),
])
def test_leak_finder_catches_hidden_material(student_zip, name, content):
    files = _zip_contents(student_zip)
    files[name] = content
    assert find_leaks(files, MASTER)


def test_leak_finder_catches_a_solution_line(student_zip):
    files = _zip_contents(student_zip)
    files["adaline_autograd/notes.txt"] = sorted(solution_lines(MASTER))[0].encode()
    assert find_leaks(files, MASTER)

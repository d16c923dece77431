"""The seam between the generic kit and the assignment: the generic part names no assignment.

The generic part is every file of ``autograder/adaline_kit/`` outside the assignment packages
(``assignments/<package>/``) and outside ``grading.toml`` (the declaration of the assignment's
questions and settings). It is found by exclusion, so a new generic module is scanned without
being listed here. Names it must not contain: ``Adaline``, ``Adaline1``.., ``Iris``/``iris``,
the question names ``q1``..``q9``, the notebook's name ``adaline_autograd`` (the product's own
name ``adaline_kit`` / ``adaline-kit`` is not an assignment name), and the current assignment
package's ``NAME``, ``TITLE`` and ``QUESTIONS``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from adaline_kit import assignment
from adaline_kit.build import paths

KIT = paths.PACKAGE
DECLARATION = "grading.toml"
FIXED_NAMES = r"\bAdaline\d?\b|\bIris\b|\biris\b|\bq[1-9]\b|adaline_autograd"


def assignment_names() -> re.Pattern:
    package = assignment.current()
    names = [package.NAME, package.TITLE, *package.QUESTIONS]
    return re.compile("|".join([FIXED_NAMES, *(rf"\b{re.escape(n)}\b" for n in names)]))


def assignment_packages(kit: Path) -> list[Path]:
    """The folders ``kit/assignments/<name>/`` that are Python packages."""
    folder = kit / "assignments"
    return sorted(p for p in folder.iterdir() if (p / "__init__.py").is_file()) \
        if folder.is_dir() else []


def generic_files(kit: Path) -> list[Path]:
    """Every file of ``kit`` but the assignment packages' and the declaration (caches left out)."""
    excluded = assignment_packages(kit)
    return sorted(p for p in kit.rglob("*") if p.is_file()
                  and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
                  and p.relative_to(kit).as_posix() != DECLARATION
                  and not any(p.is_relative_to(package) for package in excluded))


def scan(files: list[Path], root: Path, pattern: re.Pattern) -> list[str]:
    """``path:line: text`` for every line of ``files`` that names the assignment."""
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if pattern.search(line):
                found.append(f"{path.relative_to(root).as_posix()}:{number}: {line.strip()}")
    return found


def test_the_generic_kit_names_no_assignment():
    files = generic_files(KIT)
    names = {p.relative_to(KIT).as_posix() for p in files}
    # The generic part is what the issue lists: the sandbox, the grader, the build, the entry
    # points, validation, exports and reports (spot checks that the exclusion kept them).
    assert {"sandbox/child.py", "sandbox/zygote.py", "grade/batch.py", "grade/session.py",
            "grade/runner.py", "grade/reports.py", "build/bundles.py", "build/leaks.py",
            "build/gradescope/run_autograder", "build/gradescope/setup.sh", "gradescope.py",
            "otter_plugin.py", "otter_tests.py", "validate/__init__.py", "similarity/stubs.py",
            "export/formats.py", "settings.py", "assignment.py", "cli.py"} <= names
    assert not any(n.startswith("assignments/adaline_autograd/") for n in names)
    hits = scan(files, KIT.parent, assignment_names())
    assert hits == [], "the generic kit names the assignment:\n" + "\n".join(hits)


def test_the_assignment_packages_are_the_installed_ones():
    """The exclusion is exactly the packages the kit can load as assignments."""
    found = [f"adaline_kit.assignments.{p.name}" for p in assignment_packages(KIT)]
    assert found == assignment.installed()
    assert assignment.current().__name__ in found


def test_the_scanner_flags_a_planted_name_in_a_new_generic_module(tmp_path):
    """A copy of the kit with one new generic module that imports the assignment by name, and a
    new file in the assignment package doing the same: only the generic one is reported, with
    its file and line."""
    kit = tmp_path / "adaline_kit"
    shutil.copytree(KIT, kit, ignore=shutil.ignore_patterns("__pycache__", "corpus"))
    pattern = assignment_names()
    assert scan(generic_files(kit), tmp_path, pattern) == []
    planted = "from .assignments.adaline_autograd import checks  # a shortcut past the seam\n"
    (kit / "grade" / "shortcut.py").write_text('"""A new module."""\n\n' + planted)
    (kit / "assignments" / "adaline_autograd" / "extra.py").write_text(planted)
    (kit / "build" / "gradescope" / "fallback.json").write_text('{"tests": [{"name": "q2"}]}\n')
    assert scan(generic_files(kit), tmp_path, pattern) == [
        "adaline_kit/build/gradescope/fallback.json:1: {\"tests\": [{\"name\": \"q2\"}]}",
        f"adaline_kit/grade/shortcut.py:3: {planted.strip()}"]


def test_the_scanner_finds_the_names_where_they_belong():
    """Run over the assignment package, the same scanner reports the assignment's names: it
    would see them in the generic part too."""
    package_dir = Path(assignment.current().__file__).parent
    files = [p for p in package_dir.rglob("*.py") if "corpus" not in p.parts]
    hits = scan(files, KIT.parent, assignment_names())
    assert any("/checks/q1.py:" in hit for hit in hits)
    assert any("/probes.py:" in hit and "Adaline" in hit for hit in hits)


def test_the_product_name_is_not_an_assignment_name():
    pattern = assignment_names()
    assert not pattern.search("import adaline_kit.sandbox  # adaline-kit build")
    assert pattern.search("see adaline_autograd.ipynb") and pattern.search("run q3 first")


def test_grading_toml_names_the_assignment_package(tmp_path):
    """``[assignment] package`` picks the package; a wrong one is a one-line SettingsError."""
    import pytest

    from adaline_kit import settings

    text = settings.SETTINGS_FILE.read_text(encoding="utf-8")
    named = 'package = "adaline_kit.assignments.adaline_autograd"'
    assert named in text and settings.load().package == "adaline_kit.assignments.adaline_autograd"
    path = tmp_path / "grading.toml"
    path.write_text(text.replace(named, 'package = "adaline_kit.assignments.no_such"'))
    with pytest.raises(settings.SettingsError) as raised:
        settings.load(path)
    assert str(raised.value).startswith(f"{path}: [assignment] package = "
                                        "'adaline_kit.assignments.no_such': cannot import it")
    # A package without the interface (the kit's own sandbox package) is refused by name.
    path.write_text(text.replace(named, 'package = "adaline_kit.sandbox"'))
    with pytest.raises(settings.SettingsError, match=r"lacks NAME, TITLE, DATA_FILE") as raised:
        settings.load(path)
    assert "\n" not in str(raised.value)
    # Left out, it is the only installed package.
    path.write_text(text.replace(named, ""))
    assert settings.load(path).package == "adaline_kit.assignments.adaline_autograd"

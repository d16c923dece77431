"""The autograder zip, run exactly as Gradescope runs it (its own run_autograder script)."""

from __future__ import annotations

import copy
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import pytest

from adaline_kit.grade import gradescope_results
from adaline_kit.grade.emulation import reachable_by_others, run_like_gradescope
from adaline_kit.sandbox import landlock
from adaline_kit.settings import load

SETTINGS = load()


@pytest.fixture(scope="module")
def reference_results(autograder_zip, reference_notebook, gradescope_python):
    return run_like_gradescope(autograder_zip, reference_notebook, gradescope_python)


@pytest.fixture(scope="module")
def stub_results(autograder_zip, stub_notebook, gradescope_python):
    return run_like_gradescope(autograder_zip, stub_notebook, gradescope_python)


def test_reference_solution_gets_full_marks(reference_results):
    scores = {t["name"]: t["score"] for t in reference_results["tests"]}
    assert scores == SETTINGS.points
    assert reference_results["score"] == SETTINGS.max_total


def test_untouched_stubs_get_no_points_and_say_why(stub_results):
    assert [t["name"] for t in stub_results["tests"]] == ["q1", "q2", "q3"]
    assert all(t["score"] == 0 for t in stub_results["tests"])
    assert stub_results["score"] == 0
    for test in stub_results["tests"]:
        assert "NotImplementedError" in test["output"] or "not done" in test["output"].lower()


def test_results_follow_gradescope_specification(reference_results, stub_results):
    for results in (reference_results, stub_results):
        gradescope_results.validate(results)
        assert results["execution_time"] >= 1
        for test in results["tests"]:
            assert test["visibility"] == SETTINGS.hidden_visibility
            assert test["status"] in ("passed", "failed")


@pytest.mark.parametrize("breakage", [
    lambda r: r["tests"][0].pop("status"),
    lambda r: r["tests"][0].update(visibility="sometimes"),
    lambda r: r["tests"][0].update(score="full"),
    lambda r: r.update(surprise=1),
])
def test_schema_rejects_malformed_results(reference_results, breakage):
    broken = copy.deepcopy(reference_results)
    breakage(broken)
    with pytest.raises(jsonschema.ValidationError):
        gradescope_results.validate(broken)


def test_results_json_is_written_for_a_file_that_is_not_a_notebook(
        autograder_zip, gradescope_python, tmp_path):
    bad = tmp_path / "adaline_autograd.ipynb"
    bad.write_text("this is not JSON {")
    results = run_like_gradescope(autograder_zip, bad, gradescope_python)
    gradescope_results.validate(results)
    assert results["score"] == 0
    assert "not a notebook" in results["output"]


def test_zip_layout_and_setup_use_cpu_torch_without_latex(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        names = set(archive.namelist())
        setup = archive.read("setup.sh").decode()
        requirements = archive.read("requirements.txt").decode()
        config = json.loads(archive.read("otter_config.json"))
    assert {"run_autograder", "setup.sh", "requirements.txt", "otter_config.json",
            "files/data/iris.data", "tests/q1.py", "tests/q2.py", "tests/q3.py",
            "lib/adaline_kit/gradescope.py"} <= names
    assert "TORCH_INDEX=https://download.pytorch.org/whl/cpu\n" in setup
    commands = "\n".join(line for line in setup.splitlines() if not line.lstrip().startswith("#"))
    assert "pip install --require-hashes --no-deps --extra-index-url \"$TORCH_INDEX\"" in commands
    # requirements.txt is the lock: torch's CPU build by hash, so no CUDA build can come in.
    from adaline_kit.build.lock import LOCK_FILE, pins

    assert requirements == LOCK_FILE.read_text()
    assert pins(requirements)["torch"][0] == "2.13.0+cpu"
    for heavy in ("texlive", "pandoc", "playwright", "chromium", "tinytex"):
        assert heavy not in commands.lower()
    assert "adaline_kit.otter_plugin.HardenedGrading" in config["plugins"]


def test_zip_build_is_reproducible(autograder_zip, tmp_path):
    from adaline_kit.build import autograder_zip as builder

    again = builder.build(tmp_path / "again.zip")
    assert again.read_bytes() == autograder_zip.read_bytes()


def test_plain_otter_run_grades_with_the_zip(autograder_zip, reference_notebook, stub_notebook,
                                            tmp_path):
    """Real otter-grader, no Gradescope wrapper: otter's tests plus the kit's plugin."""
    scores, outputs = {}, {}
    for label, notebook in (("reference", reference_notebook), ("stubs", stub_notebook)):
        out = tmp_path / label
        out.mkdir()
        subprocess.run([str(paths_bin("otter")), "run", "-a", str(autograder_zip), "-o",
                        str(out), str(notebook)], check=True, capture_output=True, timeout=600)
        results = json.loads((out / "results.json").read_text())
        scores[label] = {t["name"]: t["score"] for t in results["tests"]
                         if t["name"] in SETTINGS.points}
        outputs[label] = {t["name"]: t.get("output", "") for t in results["tests"]}
    assert scores["reference"] == SETTINGS.points
    # otter's own in-kernel tests pass too, not only the plugin's re-grading.
    for question in SETTINGS.points:
        assert "All test cases passed" in outputs["reference"][question], question
    assert all(score == 0 for score in scores["stubs"].values())


def paths_bin(name: str):
    import sys
    from pathlib import Path

    return Path(sys.executable).with_name(name)


# --- the emulated interpreter is readable like setup.sh's /opt install ----------------------

# Imports a student process reads from disk unless the warm-up preloaded them (IPython is
# third-party; the others are standard-library submodules, which the zygote now preloads).
EXTRA_IMPORTS = ("from IPython.display import display\nimport logging.config\n"
                 "import xml.etree.ElementTree\nimport email.mime.text\nimport multiprocessing.pool\n")
USES_THEM = '''
with multiprocessing.pool.ThreadPool(2) as pool:
    squares = pool.map(lambda v: v * v, range(4))
logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
display(xml.etree.ElementTree.fromstring("<a>7</a>").text, squares,
        email.mime.text.MIMEText("hi")["Content-Type"])
'''
# What the student process may read; reported through the error of the notebook's last cell.
READS = '''
import json, os, subprocess, sys

def attempt(action):
    try:
        action()
        return "read"
    except OSError as error:
        return type(error).__name__

report = {
    "uid": os.getuid(),
    "stdlib": attempt(lambda: open(os.__file__).read(64)),
    "binary": attempt(lambda: open(os.path.realpath(sys.executable), "rb").read(64)),
    "checks": attempt(lambda: open(SOURCE + "/lib/adaline_kit/assignments/adaline_autograd/"
                                   "checks/q1.py").read(64)),
    "source": attempt(lambda: os.listdir(SOURCE)),
}
try:
    run = subprocess.run([sys.executable, "-c", "import logging.config; print(6 * 7)"],
                         capture_output=True, text=True, timeout=60)
    report["exec"] = run.stdout.strip() or run.stderr.strip()[-80:]
except OSError as error:
    report["exec"] = type(error).__name__
raise RuntimeError("READABILITY " + json.dumps(report))
'''


def _importing_notebook(reference: Path, folder: Path, source: Path | None) -> Path:
    """The reference with EXTRA_IMPORTS at the top of its imports cell (an import that fails
    there stops torch's import too: every question fails) and, at the end, a cell using them
    and (given the autograder's ``source`` folder) the READS cell."""
    notebook = nbformat.read(reference, as_version=4)
    imports = next(cell for cell in notebook.cells
                   if cell.cell_type == "code" and "import torch" in cell.source)
    imports.source = EXTRA_IMPORTS + imports.source
    notebook.cells.append(nbformat.v4.new_code_cell(USES_THEM))
    if source is not None:
        notebook.cells.append(nbformat.v4.new_code_cell(f"SOURCE = {str(source)!r}\n" + READS))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "adaline_autograd.ipynb"
    nbformat.write(notebook, path)
    return path


def _grade_importing(autograder_zip, reference, python, user=None) -> tuple:
    """(scores, readability report) of the importing notebook graded like Gradescope, in a
    folder of the system's temporary folder (pytest's own is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="adaline-kit-imports-"))
    try:
        os.chmod(folder, 0o755)
        notebook = _importing_notebook(reference, folder / "submission",
                                       folder / "root" / "autograder" / "source")
        results = run_like_gradescope(autograder_zip, notebook, python, workdir=folder / "root",
                                      user=user)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    match = re.search(r"READABILITY (\{.*?\})", results["output"])
    # The notebook looks for the autograder's files, so it is flagged for review: a hidden
    # "review" entry beside the questions, worth nothing.
    scores = {t["name"]: t["score"] for t in results["tests"] if t["name"] != "review"}
    return scores, json.loads(match.group(1)) if match else results["output"]


def _assert_reads_python_not_source(report, landlock_only: bool) -> None:
    assert isinstance(report, dict), report
    assert report["stdlib"] == "read" and report["binary"] == "read", report
    assert report["exec"] == "42", report  # the interpreter runs as the student user, too
    if not landlock_only or landlock.abi_version() >= 1:
        assert report["checks"] != "read" and report["source"] != "read", report


def test_modules_no_warm_up_preloads_import_as_on_gradescope(autograder_zip, reference_notebook,
                                                             gradescope_python, tmp_path):
    """As root (Gradescope): student code runs as the unprivileged user, imports what the
    notebook needs from the readable interpreter and cannot read the autograder's source."""
    scores, report = _grade_importing(autograder_zip, reference_notebook, gradescope_python)
    assert scores == SETTINGS.points, report
    _assert_reads_python_not_source(report, landlock_only=os.geteuid() != 0)
    if os.geteuid() == 0:
        assert report["uid"] != 0


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_modules_import_when_an_ordinary_user_grades(autograder_zip, reference_notebook,
                                                     gradescope_python, tmp_path):
    """The whole autograder run as the ordinary user ``nobody`` (an instructor's laptop):
    student code runs as that user too, walled off from the source by Landlock alone."""
    nobody = pwd.getpwnam("nobody").pw_uid
    scores, report = _grade_importing(autograder_zip, reference_notebook, gradescope_python,
                                      user=nobody)
    assert scores == SETTINGS.points, report
    assert report["uid"] == nobody
    _assert_reads_python_not_source(report, landlock_only=True)


@pytest.mark.skipif(reachable_by_others(Path(sys.base_prefix)),
                    reason="this machine's Python is readable by every user anyway")
def test_an_unreadable_interpreter_loses_those_imports(autograder_zip, reference_notebook,
                                                       tmp_path):
    """The control: a venv of this machine's Python, whose installation the student user
    cannot read (the layout the emulation used to have). The zygote's preloaded standard
    library keeps the notebook's imports working (full marks), but the student process can
    neither read the interpreter's files nor run it, as it can in the emulation's layout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    scores, report = _grade_importing(autograder_zip, reference_notebook,
                                      venv / "bin" / "python")
    assert sum(scores.values()) == SETTINGS.max_total, (scores, report)
    assert report["stdlib"] != "read" and report["exec"] != "42", report


def test_gradescope_python_is_a_self_contained_prefix(gradescope_python):
    """Laid out like an /opt install: its own prefix, standard library and site-packages,
    every folder readable and searchable by others, the kit nowhere inside."""
    prefix = gradescope_python.parent.parent
    probe = "import sys, torch; print(sys.prefix); print(torch.__file__)"
    lines = subprocess.run([str(gradescope_python), "-c", probe], check=True, cwd=prefix,
                           capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
                           ).stdout.split()
    assert Path(lines[0]) == prefix.resolve()
    assert Path(lines[1]).resolve().is_relative_to(prefix.resolve())
    for folder, _, _ in os.walk(prefix):
        assert os.stat(folder).st_mode & 0o005 == 0o005, folder
    assert not list(prefix.rglob("adaline_kit*"))


def test_gradescope_python_is_built_once_and_rebuilt_when_stale(tmp_path):
    """A second call reuses the copy; a copy made from other packages is replaced."""
    from adaline_kit.grade.emulation import STAMP_FILE, gradescope_python

    python = gradescope_python(tmp_path / "interpreter")
    binary = python.resolve()
    first = binary.stat().st_ino
    assert gradescope_python(tmp_path / "interpreter") == python
    assert binary.stat().st_ino == first
    stamp = tmp_path / "interpreter" / STAMP_FILE
    stamp.write_text(stamp.read_text().replace('"distributions": [', '"distributions": ["x",'))
    gradescope_python(tmp_path / "interpreter")
    assert binary.stat().st_ino != first
    assert '"x"' not in stamp.read_text()


# --- grading locally: the zygote preloads the standard library, submodules included ---------

def test_local_grading_imports_standard_library_submodules(tmp_path, reference_notebook):
    """``adaline-kit grade`` on this machine: the reference with EXTRA_IMPORTS (IPython.display
    needs logging.config) keeps full marks even where the student user cannot read this
    Python (as root with a Python under a private home: only what the zygote preloaded
    imports), and grade says so in one warning line exactly then."""
    from click.testing import CliRunner

    from adaline_kit import cli
    from adaline_kit.grade import gradebook

    notebook = _importing_notebook(reference_notebook, tmp_path / "class", None)
    result = CliRunner().invoke(cli.main, ["grade", str(notebook), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    (row,) = gradebook.read(tmp_path / "out" / "grades.csv")
    assert float(row["total"]) == SETTINGS.max_total, row
    warnings = [line for line in result.output.splitlines() if "cannot read this Python" in line]
    unreadable = os.geteuid() == 0 and not reachable_by_others(
        Path(sysconfig.get_paths()["stdlib"]))
    assert len(warnings) == unreadable, result.output
    if unreadable:
        assert warnings[0].startswith("Warning: student code runs as user ")
        assert "installed where every user can read it" in warnings[0]


def test_zygote_preloads_standard_library_submodules_but_no_tests():
    """What the zygote imports before forking: the standard library's submodules too, but no
    test suite, no ``__main__`` (it would run a program) and nothing of NOT_PRELOADED."""
    from adaline_kit.sandbox import zygote

    code = ("import json; from adaline_kit.sandbox import zygote; "
            "print('MODULES ' + json.dumps(zygote.standard_library_modules()))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True, timeout=300)
    names = json.loads(completed.stdout.split("MODULES ", 1)[1])
    assert {"logging.config", "xml.etree.ElementTree", "email.mime.text",
            "multiprocessing.pool", "concurrent.futures.process", "cProfile"} <= set(names)
    banned = [name for name in names
              if name.split(".")[0] in zygote.NOT_PRELOADED | {"test"}
              or any(part == "__main__" or part.startswith("test")
                     for part in name.split(".")[1:])]
    assert banned == [], banned

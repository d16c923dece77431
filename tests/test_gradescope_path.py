"""The autograder zip, run exactly as Gradescope runs it (its own run_autograder script)."""

from __future__ import annotations

import copy
import json
import subprocess
import zipfile

import jsonschema
import pytest

from adaline_kit.grade import gradescope_results
from adaline_kit.grade.emulation import run_like_gradescope
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

"""Local class grading gives exactly the scores Gradescope gives, over the validation corpus."""

from __future__ import annotations

import concurrent.futures
import csv
import subprocess
import sys
from pathlib import Path

from adaline_kit.grade.emulation import run_like_gradescope
from adaline_kit.settings import questions
from adaline_kit.assignments.adaline_autograd import CORPUS



def test_adaline_kit_grade_matches_the_gradescope_path(autograder_zip, gradescope_python,
                                                        tmp_path):
    notebooks = sorted((CORPUS / "correct").glob("*.ipynb")) + \
        sorted((CORPUS / "wrong").glob("*.ipynb"))
    assert len(notebooks) >= 30
    out = tmp_path / "out"
    cli = Path(sys.executable).with_name("adaline-kit")
    subprocess.run([str(cli), "grade", *map(str, notebooks), "-o", str(out), "--jobs", "2"],
                   check=True, capture_output=True, timeout=1200)
    with open(out / "grades.csv", newline="") as handle:
        local = {row["submission"]: {q: float(row[q]) for q in questions()}
                 for row in csv.DictReader(handle)}

    def on_gradescope(notebook: Path) -> tuple[str, dict]:
        results = run_like_gradescope(autograder_zip, notebook, gradescope_python)
        return notebook.stem, {t["name"]: float(t["score"]) for t in results["tests"]}

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        gradescope = dict(pool.map(on_gradescope, notebooks))
    assert set(local) == set(gradescope) == {n.stem for n in notebooks}
    differences = {name: (local[name], gradescope[name]) for name in gradescope
                   if local[name] != gradescope[name]}
    assert differences == {}
    # Not vacuous: the corpus spans full marks and lost points on every question.
    for question in questions():
        assert {scores[question] == max(s[question] for s in local.values())
                for scores in local.values()} == {True, False}

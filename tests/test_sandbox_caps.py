"""A whole grading on the Gradescope path fits Gradescope's default 768 MiB container.

The reference and the memory hog (three forked children that each take as much memory as one
process may) are graded through the built autograder zip as Gradescope runs it, while a sampler
sums the PSS of every process of the grading tree (``run_autograder``'s Python, the zygote, the
student processes) 20 times a second. Budget: ``MEMORY_BUDGET_MIB``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from adaline_kit.grade.emulation import run_like_gradescope
from adaline_kit.settings import load

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from tree_sampler import TreeSampler  # noqa: E402
from adaline_kit.assignments.adaline_autograd import CORPUS

MEMORY_BUDGET_MIB = 768
SETTINGS = load()


@pytest.fixture(scope="module")
def measured(autograder_zip, gradescope_python, reference_notebook) -> dict:
    found = {}
    for name, notebook in (("reference", reference_notebook),
                           ("memory_hog", CORPUS / "adversarial" / "memory_hog.ipynb")):
        sampler = TreeSampler(psutil.Process(), interval=0.05, include_root=False)
        sampler.start()
        results = run_like_gradescope(autograder_zip, notebook, gradescope_python)
        found[name] = (results, sampler.stop())
    return found


def test_the_whole_grading_tree_stays_within_the_container(measured):
    for name, (results, sampler) in measured.items():
        assert sampler.students_seen, f"{name}: no student process was sampled"
        assert sampler.peak_pss >> 20 < MEMORY_BUDGET_MIB, (
            f"{name}: {sampler.peak_pss >> 20} MiB PSS over the whole grading tree")


def test_the_memory_hog_was_stopped_at_its_cap(measured):
    results, _ = measured["memory_hog"]
    assert f"more than the {SETTINGS.limits.memory_mib} MiB allowed" in results["output"]
    assert results["score"] == 0


def test_the_sampler_sees_a_tree_over_the_budget():
    """The budget check can fail: a child holding 900 MiB is measured over it."""
    sampler = TreeSampler(psutil.Process(), interval=0.05, include_root=False)
    child = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                              "block = bytearray(900 << 20)\n"
                              "print('ready', flush=True)\ntime.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        sampler.start()
        time.sleep(0.5)
    finally:
        sampler.stop()
        child.kill()
        child.wait()
    assert sampler.peak_pss >> 20 > MEMORY_BUDGET_MIB

"""Flags for tampering (grade.tampering) and what a flagged submission may still earn."""

from __future__ import annotations

import nbformat

from adaline_kit.assignments.adaline_autograd import checks
from adaline_kit.build import paths
from adaline_kit.grade import tampering
from adaline_kit.outcomes import CheckResult, QuestionResult
from adaline_kit.settings import load


def _code_cells(path) -> list[str]:
    notebook = nbformat.read(path, as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebooks_themselves_raise_no_flag():
    assert tampering.scan(_code_cells(paths.MASTER_NOTEBOOK)) == []
    assert tampering.scan(_code_cells(paths.STUDENT_NOTEBOOK)) == []


def test_reaching_for_the_grader_is_flagged_with_its_cell():
    cells = ["x = 1", "import gc\nfor o in gc.get_objects():\n    pass",
             "frame = inspect.currentframe().f_back", "getattr(frame, 'f_globals')",
             "s = inspect.stack()", "import adaline_kit.assignments.adaline_autograd.probes"]
    flags = tampering.scan(cells)
    for needle in ("code cell 2 uses get_objects", "code cell 3 uses currentframe",
                   "code cell 3 uses f_back", "code cell 4 uses f_globals",
                   "code cell 5 uses inspect.stack()", "code cell 6 uses adaline_kit"):
        assert any(flag.startswith(needle) for flag in flags), (needle, flags)
    # Ordinary names that merely contain the words are not flagged.
    assert tampering.scan(["my_f_back_up = 1", "stacked = torch.stack([a, b])",
                           "objects = get_objects_count()"]) == []


def test_names_built_at_run_time_and_closures_are_flagged():
    cells = ["frame = getattr(error_tb, 'tb_' + 'frame')",
             "for cell in torch.autograd.grad.__closure__:\n    counts = cell.cell_contents",
             "setattr(model, name, value)", "value = getattr(torch, 'nn')"]
    flags = tampering.scan(cells)
    for needle in ("code cell 1 uses getattr() with a name built at run time",
                   "code cell 2 uses __closure__", "code cell 2 uses cell_contents",
                   "code cell 3 uses setattr() with a name built at run time"):
        assert any(flag.startswith(needle) for flag in flags), (needle, flags)
    assert not any(flag.startswith("code cell 4") for flag in flags), flags  # a literal name


def _question(gate_passed: bool) -> QuestionResult:
    checks_ = [CheckResult("module_structure", True, 1.0), CheckResult("zero_init", True, 1.0),
               CheckResult("other_data", gate_passed, 2.0)]
    return QuestionResult.from_checks("q3", 3.0, checks_)


def test_a_flagged_submission_earns_only_what_a_value_check_backs():
    settings = load()
    unproven = checks.withhold_unproven({"q3": _question(False)}, settings)["q3"]
    assert _question(False).score > 0 and unproven.score == 0
    assert all(c.withheld for c in unproven.checks if c.name != "other_data")
    proven = checks.withhold_unproven({"q3": _question(True)}, settings)["q3"]
    assert proven.score == _question(True).score == 3.0

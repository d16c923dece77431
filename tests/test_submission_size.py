"""Stored outputs never cost a submission: they are dropped before the code is measured."""

from __future__ import annotations

import base64
import os

import nbformat

from adaline_kit.grade import submission


def _with_outputs(reference_notebook, target, output_bytes: int):
    notebook = nbformat.read(reference_notebook, as_version=4)
    image = base64.b64encode(os.urandom(output_bytes * 3 // 4)).decode()
    cell = next(c for c in notebook.cells if c.cell_type == "code")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": image})]
    nbformat.write(notebook, target)
    return target


def test_a_notebook_with_25_mib_of_outputs_is_graded_on_its_code(reference_notebook, tmp_path):
    plain = submission.load(reference_notebook)
    big = _with_outputs(reference_notebook, tmp_path / "big.ipynb", 25 << 20)
    assert big.stat().st_size > 25 << 20
    loaded = submission.load(big)
    assert loaded.problem is None and loaded.cells == plain.cells


def test_a_file_past_the_limit_is_refused_with_a_reason(reference_notebook, tmp_path):
    huge = _with_outputs(reference_notebook, tmp_path / "huge.ipynb",
                         submission.MAX_NOTEBOOK_BYTES + (1 << 20))
    loaded = submission.load(huge)
    assert loaded.cells == [] and "too large" in loaded.problem


def test_too_much_code_is_refused(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1\n" * ((submission.MAX_CODE_BYTES // 6) + 10))])
    nbformat.write(notebook, tmp_path / "code.ipynb")
    loaded = submission.load(tmp_path / "code.ipynb")
    assert loaded.cells == [] and "MiB of code" in loaded.problem

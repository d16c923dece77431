"""Helpers for corpus cases: the reference's own definitions, edited in small visible steps.

A case that makes ONE mistake should differ from the reference by that mistake only, so the
wrong versions are written as textual edits of the reference's definitions (each edit must match
exactly once, so a change of the master notebook breaks the case loudly instead of silently
making it another submission). Not a case module itself (``casebook`` loads ``cases_*.py``).
"""

from __future__ import annotations

import ast
import functools
import textwrap

import nbformat

import casebook


@functools.lru_cache(maxsize=None)
def _code_cells(base: str) -> tuple[str, ...]:
    notebook = casebook.base_notebook(base)
    return tuple(cell.source for cell in notebook.cells if cell.cell_type == "code")


def definition(name: str, base: str = "reference") -> str:
    """The source of the top-level ``def``/``class`` ``name`` in the base notebook."""
    for source in _code_cells(base):
        span = casebook._top_level_span(source, name)
        if span:
            return "\n".join(source.splitlines()[span[0]:span[1]]) + "\n"
    raise KeyError(f"no top-level definition of {name!r} in the {base} notebook")


def edit(name: str, *changes: tuple[str, str]) -> dict:
    """``{name: reference definition with each (old, new) applied}``; each ``old`` must occur
    exactly once, and the result must still parse."""
    source = definition(name)
    for old, new in changes:
        count = source.count(old)
        if count != 1:
            raise ValueError(f"{name}: {old!r} occurs {count} times, expected once")
        source = source.replace(old, new)
    ast.parse(source)
    return {name: source}


def code(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


def adaline1_with_backward(body: str) -> dict:
    """``{"Adaline1": the reference class with ``body`` as the code of its backward}`` (the
    docstrings, __init__ and forward stay as given)."""
    source = definition("Adaline1")
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if "grad_loss_yhat = 2 * (yhat - y)" in line)
    body_lines = [("        " + line) if line.strip() else "" for line in code(body).splitlines()]
    source = "\n".join(lines[:start] + body_lines) + "\n"
    ast.parse(source)
    return {"Adaline1": source}


def cell_after(source: str, name: str | None = None):
    """A notebook transform inserting a code cell ``source`` right after the cell that defines
    ``name``, or, without a name, right after the imports (before the data and every part)."""
    def found(cell) -> bool:
        if cell.cell_type != "code":
            return False
        return bool(casebook._top_level_span(cell.source, name)) if name else \
            "import torch" in cell.source

    def transform(notebook):
        position = next(i for i, cell in enumerate(notebook.cells) if found(cell))
        notebook.cells.insert(position + 1, nbformat.v4.new_code_cell(source))
        return notebook
    return transform

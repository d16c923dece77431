"""Make the student notebook (and the clean solution notebook) from the master notebook.

The master notebook ``solutions/NAME/NAME.ipynb`` (``NAME``: the assignment package's) is the
single source of truth: a completed reference solution in which the code students write is
fenced by marker lines::

    def backward(self, x, yhat, y):
        \"\"\"...\"\"\"
        # BEGIN SOLUTION
        # STUB: qN: implement Model.backward
        grad_loss_yhat = 2 * (yhat - y)
        ...
        # END SOLUTION

* :func:`make_student_notebook` replaces each fenced block by
  ``raise NotImplementedError("qN: implement Model.backward")`` at the indentation of the
  ``# BEGIN SOLUTION`` line (a block without a ``# STUB:`` line is dropped without replacement),
  drops cells tagged ``solution-only``, and clears outputs and execution counts. Cell ids are kept.
* :func:`strip_markers` keeps the solution code and drops only the marker lines: the completed
  notebook for the solutions bundle.

Both fill placeholders in markdown and code cells, so numbers live in one place:

* ``{points[qN]}`` from ``grading.toml`` ``[points]`` (``{points[total]}`` the sum; a following
  `` points`` word agrees in number: ``1 point``, ``4 points``);
* ``{assignment[KEY]}`` from ``grading.toml`` ``[assignment]``, the keys the assignment
  package's ``assignment_placeholders`` gives (the settings and what follows from them);
* lines between ``# IF assignment[KEY]`` and ``# END IF`` (in markdown ``<!-- IF
  assignment[KEY] -->`` and ``<!-- END IF -->``) are kept only when the setting is true;
* ``{expected[KEY]}`` from the answer key the reference solution produced (the keys of the
  package's ``expected_placeholders``);
* ``{method_rules[qN]}`` from ``grading.toml`` ``[method_rules]``: the share of the question's
  points that breaking its method rule costs, in words (``half``, ``a quarter``, ``all``,
  ``none``; other fractions as ``40 %``), for "costs {method_rules[qN]} of qN's points".

Command line (from the repository root)::

    python -m adaline_kit.build.student_notebook           # write the student notebook
    python -m adaline_kit.build.student_notebook --check   # exit 1 if the committed copy is stale
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import nbformat

from .. import settings as settings_module

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
STUB = "# STUB:"
SOLUTION_ONLY_TAG = "solution-only"

_MARKER = re.compile(r"^(?P<indent>[ \t]*)(?P<marker># BEGIN SOLUTION|# END SOLUTION|# STUB:)"
                     r"(?P<rest>.*)$")
_STUB_MESSAGE = re.compile(r"^q\d+: \S.*$")
_PLACEHOLDER = re.compile(r"\{(?P<table>points|assignment|expected|method_rules)"
                          r"\[(?P<key>\w+)\]\}(?P<word> points?\b)?")
_ANY_PLACEHOLDER = re.compile(r"\{(?P<table>[a-z_]+)\[(?P<key>\w+)\]\}")


class MarkerError(ValueError):
    """The master notebook's solution markers are malformed; the message names the cell."""


def _format_points(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _points_table(points: dict | None) -> dict[str, float]:
    if points is None:
        points = settings_module.load().points
    table = {str(q): float(p) for q, p in points.items()}
    table["total"] = sum(table.values())
    return table


def assignment_table(assignment) -> dict[str, object]:
    """``{assignment[KEY]}`` values of grading.toml's ``[assignment]`` settings."""
    from ..assignment import current

    return current().assignment_placeholders(assignment)


def expected_table(key) -> dict[str, str]:
    """``{expected[KEY]}`` values of an answer key."""
    from ..assignment import current

    return current().expected_placeholders(key)


_FRACTION_WORDS = {0.0: "none", 0.25: "a quarter", 0.5: "half", 0.75: "three quarters",
                   1.0: "all"}


def fraction_text(value: float) -> str:
    """A method rule's cost in words: 0.5 -> "half", 1 -> "all", 0.4 -> "40 %"."""
    for fraction, words in _FRACTION_WORDS.items():
        if abs(float(value) - fraction) < 1e-12:
            return words
    return f"{100 * float(value):.4g} %"


class Values:
    """The placeholder tables; a table not given is read from grading.toml or the recorded
    answer key when a placeholder first needs it."""

    def __init__(self, points: dict | None = None, assignment=None, key=None,
                 method_rules: dict | None = None):
        self._given = {"points": points, "assignment": assignment, "expected": key,
                       "method_rules": method_rules}
        self._tables: dict[str, dict] = {}

    def table(self, name: str) -> dict:
        if name not in self._tables:
            given = self._given[name]
            if name == "points":
                self._tables[name] = _points_table(given)
            elif name == "assignment":
                self._tables[name] = assignment_table(
                    given or settings_module.load().assignment)
            elif name == "method_rules":
                rules = settings_module.load().method_rules if given is None else given
                self._tables[name] = {str(q): fraction_text(v) for q, v in rules.items()}
            else:
                from ..assignment import current
                self._tables[name] = expected_table(given or current().load_answer_key())
        return self._tables[name]


def _as_values(values) -> Values:
    return values if isinstance(values, Values) else Values(points=values)


def fill_placeholders(text: str, values: Values | dict | None, where: str = "markdown",
                      code: bool = False) -> str:
    """Replace ``{points[...]}``, ``{assignment[...]}``, ``{expected[...]}`` and
    ``{method_rules[...]}`` in ``text``
    (``values`` may be a plain points dict); numbers are written as Python writes them. In
    markdown (not ``code``, where ``{name[key]}`` is also Python) any other ``{name[key]}`` is
    an error."""
    values = _as_values(values)

    def replace(match: re.Match) -> str:
        name, key = match.group("table"), match.group("key")
        table = values.table(name)
        if key not in table:
            raise MarkerError(f"{where}: unknown placeholder {{{name}[{key}]}} "
                              f"(known: {', '.join(f'{{{name}[{k}]}}' for k in table)})")
        value = table[key]
        word = match.group("word")
        if name == "points":
            if word:
                word = " point" if value == 1 else " points"
            return _format_points(value) + (word or "")
        return str(value) + (word or "")

    text = _PLACEHOLDER.sub(replace, text)
    unknown = None if code else _ANY_PLACEHOLDER.search(text)
    if unknown:
        raise MarkerError(f"{where}: unknown placeholder {unknown.group(0)} (expected "
                          "{points[qN]}, {assignment[KEY]}, {expected[KEY]} or "
                          "{method_rules[qN]})")
    return text


fill_points = fill_placeholders

_CONDITION = re.compile(r"^\s*(?:#|<!--)\s*(?P<kind>IF|END IF)\b\s*(?P<name>[^\s>-]*)\s*(?:-->)?\s*$")


def select_conditionals(text: str, values: Values, where: str) -> str:
    """Keep the lines between ``# IF assignment[KEY]`` (markdown: ``<!-- IF assignment[KEY]
    -->``) and ``# END IF`` (``<!-- END IF -->``) when the setting is true, drop them otherwise;
    the marker lines always go. Blocks do not nest."""
    out, keep, inside = [], True, False
    for number, line in enumerate(text.split("\n"), start=1):
        match = _CONDITION.match(line)
        if match is None:
            if keep:
                out.append(line)
            continue
        if match.group("kind") == "IF":
            name = re.fullmatch(r"assignment\[(\w+)\]", match.group("name"))
            table = values.table("assignment")
            if inside or name is None or name.group(1) not in table:
                raise MarkerError(f"{where}, line {number}: expected one 'IF assignment[KEY]' "
                                  f"per block, KEY one of {', '.join(table)}")
            inside, keep = True, bool(table[name.group(1)])
        else:
            if not inside:
                raise MarkerError(f"{where}, line {number}: 'END IF' without 'IF'")
            inside, keep = False, True
    if inside:
        raise MarkerError(f"{where}: 'IF' without 'END IF'")
    return "\n".join(out)


def fill_cell(source: str, values: Values, where: str, code: bool) -> str:
    """One cell's source with its conditional lines selected and its placeholders filled."""
    return fill_placeholders(select_conditionals(source, values, where), values, where, code)


def _blocks(source: str, where: str):
    """Yield ("code", line) and ("block", indent, stub_message_or_None, solution_lines)."""
    lines = source.split("\n")
    block = None  # [indent, stub, lines] while inside a solution block
    for number, line in enumerate(lines, start=1):
        match = _MARKER.match(line)
        marker = match.group("marker") if match else None
        if marker == BEGIN:
            if block is not None:
                raise MarkerError(f"{where}, line {number}: nested '{BEGIN}'")
            if match.group("rest").strip():
                raise MarkerError(f"{where}, line {number}: text after '{BEGIN}'")
            block = [match.group("indent"), None, []]
        elif marker == END:
            if block is None:
                raise MarkerError(f"{where}, line {number}: '{END}' without '{BEGIN}'")
            yield ("block", *block)
            block = None
        elif marker == STUB:
            if block is None:
                raise MarkerError(f"{where}, line {number}: '{STUB}' outside a solution block")
            if block[1] is not None:
                raise MarkerError(f"{where}, line {number}: a second '{STUB}' line in one block")
            message = match.group("rest").strip()
            if not _STUB_MESSAGE.match(message):
                raise MarkerError(f"{where}, line {number}: the stub message must read "
                                  f"'qN: what to implement', got {message!r}")
            block[1] = message
        elif block is not None:
            block[2].append(line)
        else:
            yield ("code", line)
    if block is not None:
        raise MarkerError(f"{where}: '{BEGIN}' without '{END}'")


def _has_markers(source: str) -> bool:
    return any(_MARKER.match(line) for line in source.split("\n"))


def student_source(source: str, where: str = "cell") -> str:
    """The student version of one code cell's source."""
    out = []
    for item in _blocks(source, where):
        if item[0] == "code":
            out.append(item[1])
        else:
            _, indent, stub, _solution = item
            if stub is not None:
                out.append(f"{indent}raise NotImplementedError({json.dumps(stub, ensure_ascii=False)})")
    return "\n".join(out)


def solution_source(source: str, where: str = "cell") -> str:
    """One code cell's source with the marker lines removed and the solution kept."""
    out = []
    for item in _blocks(source, where):
        if item[0] == "code":
            out.append(item[1])
        else:
            out.extend(item[3])
    return "\n".join(out)


def solution_lines(master: nbformat.NotebookNode) -> list[str]:
    """Every line inside a solution block of the master (markers excluded), in order."""
    lines = []
    for cell in master.cells:
        if cell.cell_type == "code" and _has_markers(cell.source):
            for item in _blocks(cell.source, _where(cell)):
                if item[0] == "block":
                    lines.extend(item[3])
    return lines


def _where(cell) -> str:
    return f"cell {cell.get('id', '?')!r}"


def _is_solution_only(cell) -> bool:
    return SOLUTION_ONLY_TAG in cell.get("metadata", {}).get("tags", [])


def _check_compiles(source: str, where: str) -> None:
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        source = TransformerManager().transform_cell(source)
    except ImportError:  # plain Python source is still checked
        pass
    try:
        compile(source, where, "exec")
    except SyntaxError as error:
        raise MarkerError(f"{where}: the student version does not compile: {error}") from None


def _check_ids(master: nbformat.NotebookNode) -> None:
    ids = [cell.get("id") for cell in master.cells]
    if any(not cell_id for cell_id in ids):
        raise MarkerError("every cell of the master needs an id (nbformat 4.5)")
    if len(set(ids)) != len(ids):
        raise MarkerError("the master's cell ids are not unique")


def make_student_notebook(master: nbformat.NotebookNode,
                          points: dict | Values | None = None) -> nbformat.NotebookNode:
    """The student notebook: solutions replaced by stubs, no outputs, same cell ids.

    ``points``: the placeholder values (a :class:`Values`, or a points dict; default: read
    grading.toml and the answer key)."""
    _check_ids(master)
    table = _as_values(points)
    notebook = copy.deepcopy(master)
    cells = []
    for cell in notebook.cells:
        if _is_solution_only(cell):
            continue
        where = _where(cell)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.source = student_source(fill_cell(cell.source, table, where, code=True), where)
            _check_compiles(cell.source, where)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = fill_cell(cell.source, table, where, code=False)
        cells.append(cell)
    notebook.cells = cells
    _check_clean(notebook)
    nbformat.validate(notebook)
    return notebook


def strip_markers(master: nbformat.NotebookNode,
                  points: dict | Values | None = None) -> nbformat.NotebookNode:
    """The completed solution notebook: marker lines removed, solution code and outputs kept,
    placeholders filled (``points`` as in :func:`make_student_notebook`)."""
    _check_ids(master)
    table = _as_values(points)
    notebook = copy.deepcopy(master)
    for cell in notebook.cells:
        where = _where(cell)
        if cell.cell_type == "code":
            cell.source = solution_source(fill_cell(cell.source, table, where, code=True), where)
        elif cell.cell_type == "markdown":
            cell.source = fill_cell(cell.source, table, where, code=False)
    nbformat.validate(notebook)
    return notebook


def _check_clean(notebook: nbformat.NotebookNode) -> None:
    for cell in notebook.cells:
        for needle in (BEGIN, END, STUB, "{points[", "{assignment[", "{expected[",
                       "{method_rules["):
            if needle in cell.source:
                raise MarkerError(f"{_where(cell)}: {needle!r} left in the student notebook")


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def render(notebook: nbformat.NotebookNode) -> str:
    """The notebook file's text, exactly as it is committed."""
    return nbformat.writes(notebook) + "\n"


def main(argv: list[str] | None = None) -> int:
    from . import paths

    parser = argparse.ArgumentParser(
        prog="python -m adaline_kit.build.student_notebook",
        description="Write the student notebook generated from the master notebook.")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the committed student notebook differs")
    parser.add_argument("--master", type=Path, default=paths.MASTER_NOTEBOOK,
                        help="the master notebook (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=paths.STUDENT_NOTEBOOK,
                        help="the student notebook to write or check (default: %(default)s)")
    parser.add_argument("--solution", type=Path, default=None,
                        help="also write the completed notebook without markers to this path")
    args = parser.parse_args(argv)

    master = nbformat.read(args.master, as_version=4)
    try:
        text = render(make_student_notebook(master))
        solution_text = render(strip_markers(master)) if args.solution else None
    except (MarkerError, settings_module.SettingsError) as error:
        print(f"{_shown(args.master)}: {error}", file=sys.stderr)
        return 2
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{_shown(args.output)} is out of date: run "
                  "python -m adaline_kit.build.student_notebook", file=sys.stderr)
            return 1
        print(f"{_shown(args.output)} is up to date")
        return 0
    if current != text:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(args.output)}")
    else:
        print(f"{_shown(args.output)} is up to date")
    if solution_text is not None:
        args.solution.parent.mkdir(parents=True, exist_ok=True)
        args.solution.write_text(solution_text, encoding="utf-8")
        print(f"wrote {_shown(args.solution)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

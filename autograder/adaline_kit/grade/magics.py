"""Cell magics that change what a notebook defines, run while grading as Jupyter runs them.

A submission's cells arrive with IPython syntax already turned into Python (``%%time`` becomes
``get_ipython().run_cell_magic('time', '', body)``). The student process has no IPython, so
:func:`expand` rewrites those calls into the code Jupyter would run:

* ``%%time`` and ``%%capture [name]``: the cell's body, at the top level of the notebook's
  namespace (what it prints goes to the capped output as any cell's; ``name`` is bound to None);
* ``%%writefile [-a] file``: the file is written (or appended to), the body is not run;
* ``%time statement`` (also as ``x = %time expression``): the statement.

Other magics (``%matplotlib``, ``%%timeit``, which runs its body in a namespace of its own,
shell escapes) change nothing the grader looks at and stay no-ops.
"""

from __future__ import annotations

import ast

RUN_BODY = ("time", "capture")


def _python(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - leave what IPython cannot transform as it is
        return source


def _magic(node: ast.AST, kind: str) -> tuple[str, str, str | None] | None:
    """``(name, line, body)`` of a ``get_ipython().run_{kind}_magic(...)`` call, else None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == f"run_{kind}_magic"
            and isinstance(node.func.value, ast.Call)
            and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython"):
        return None
    args = node.args
    if len(args) < 2 or not all(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                 for a in args):
        return None
    return args[0].value, args[1].value, args[2].value if len(args) > 2 else None


def _cell_magic(name: str, line: str, body: str) -> str | None:
    if name in RUN_BODY:
        code = expand(_python(body))
        if name == "capture":
            target = next((w for w in line.split() if not w.startswith("-")), None)
            if target and target.isidentifier():
                code = code + ("" if code.endswith("\n") else "\n") + f"{target} = None\n"
        return code
    if name == "writefile":
        words = line.split()
        append = any(w in ("-a", "--append") for w in words)
        files = [w for w in words if not w.startswith("-")]
        if not files:
            return None
        return (f"with open({files[0]!r}, {'a' if append else 'w'!r}) as __adaline_file:\n"
                f"    __adaline_file.write({body!r})\n")
    return None


def _line_statement(name: str, line: str) -> str | None:
    if name == "time":
        return expand(_python(line))
    return None


def expand(source: str) -> str:
    """``source`` with its top-level cell and line magics replaced by the code they run."""
    if "get_ipython" not in source:
        return source
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    edits = []  # (first line, last line, replacement), 1-based
    for statement in tree.body:
        replacement = None
        if isinstance(statement, ast.Expr):
            cell = _magic(statement.value, "cell")
            line = _magic(statement.value, "line")
            if cell is not None:
                replacement = _cell_magic(cell[0], cell[1], cell[2] or "")
            elif line is not None:
                replacement = _line_statement(line[0], line[1])
        elif isinstance(statement, ast.Assign):
            line = _magic(statement.value, "line")
            if line is not None and line[0] == "time":
                try:
                    ast.parse(line[1], mode="eval")
                except SyntaxError:
                    continue
                targets = " = ".join(ast.unparse(t) for t in statement.targets)
                replacement = f"{targets} = {line[1]}\n"
        if replacement is not None:
            edits.append((statement.lineno, statement.end_lineno, replacement))
    for first, last, replacement in reversed(edits):
        lines[first - 1:last] = [replacement if replacement.endswith("\n")
                                 else replacement + "\n"]
    return "".join(lines)

"""What a student wrote in the stubs, with the given code removed and names normalised.

The stubs are the definitions the assignment package's ``STUBS`` names for each question. For
each, the submission's last definition is taken from its code cells, docstrings are
dropped and the code is printed by :func:`ast.unparse` (so formatting and comments do not
count); lines that the untouched student notebook already has in the same definition (the
signature, the given loop, the ``raise NotImplementedError``) are removed. Local names
(arguments, assigned names, loop variables) become ``v1``, ``v2``... in order of appearance, so
renaming variables does not hide a copy; library names and attributes (``torch.mm``) stay.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import keyword
import re
from pathlib import Path

from ..grade import submission as submission_loader



def stubs() -> dict[str, tuple]:
    """question -> definitions that make up its stub: ((class or None, function or None), ...),
    the assignment package's ``STUBS``."""
    from ..assignment import current

    return dict(current().STUBS)


def describe() -> str:
    """The stubs in words: ``Model.backward, train, ...``."""
    return ", ".join(".".join(part for part in definition if part)
                     for parts in stubs().values() for definition in parts)

_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:e[-+]?\d+)?|\S")


@dataclasses.dataclass
class StubCode:
    """One question's student code: ``lines`` as written (normalised layout), ``tokens`` with
    local names replaced, for comparison."""

    lines: list[str]
    tokens: list[str]


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant) and isinstance(
                    body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _definitions(cells: list[str]) -> dict[tuple, ast.AST]:
    """(class, function) -> the last top-level definition of it in ``cells``."""
    found: dict[tuple, ast.AST] = {}
    for cell in cells:
        try:
            tree = ast.parse(cell)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[(None, node.name)] = node
            elif isinstance(node, ast.ClassDef):
                found[(node.name, None)] = node
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        found[(node.name, item.name)] = item
    return found


def _lines(node: ast.AST | None) -> list[str]:
    if node is None:
        return []
    text = ast.unparse(_strip_docstrings(ast.parse(ast.unparse(node))))
    return [line.strip() for line in text.splitlines() if line.strip()]


def _local_names(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.arg):
            names.add(sub.arg)
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            names.add(sub.id)
    return names - {"self"}


def _tokens(lines: list[str], local: set[str]) -> list[str]:
    renamed: dict[str, str] = {}
    tokens = []
    for line in lines:
        for token in _TOKEN.findall(line):
            if token in local and not keyword.iskeyword(token):
                token = renamed.setdefault(token, f"v{len(renamed) + 1}")
            tokens.append(token)
    return tokens


def extract(cells: list[str], template: dict[tuple, ast.AST]) -> dict[str, StubCode]:
    """The student code of each question in ``cells``; ``template`` is the stub notebook's
    :func:`_definitions`."""
    found = _definitions(cells)
    result = {}
    for question, parts in stubs().items():
        lines, local = [], set()
        for part in parts:
            node = found.get(part)
            given = collections.Counter(_lines(template.get(part)))
            for line in _lines(node):
                if given[line] > 0:
                    given[line] -= 1
                else:
                    lines.append(line)
            if node is not None:
                local |= _local_names(node)
        result[question] = StubCode(lines, _tokens(lines, local))
    return result


def template_definitions(stub_notebook: Path) -> dict[tuple, ast.AST]:
    loaded = submission_loader.load(stub_notebook)
    return _definitions(loaded.cells)


def load_stub_code(path: Path, template: dict[tuple, ast.AST]) -> dict[str, StubCode] | None:
    """The student code of the notebook or zip at ``path``; None if it cannot be read."""
    loaded = submission_loader.load(path)
    if loaded.problem:
        return None
    return extract(loaded.cells, template)

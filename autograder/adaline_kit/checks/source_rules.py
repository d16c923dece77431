"""AST helpers for the method rules: what a definition in the submitted notebook uses.

The notebook's code cells are parsed one by one (a cell that does not parse is skipped, as the
notebook run skips it too). A name's definition is the LAST top-level ``def``/``class`` binding
it across cells (``train_nn = train`` follows one hop to ``def train``). Import aliases are
resolved (``from torch.autograd import grad as g``, ``import torch.autograd as ag``,
``from torch import nn``, ``g = torch.autograd.grad``), so calls are reported by their
qualified names, e.g. ``torch.autograd.grad``. Helper functions that a definition calls by name
are inspected too, one level deep.
"""

from __future__ import annotations

import ast
import dataclasses

_MAX_REPAIRS = 200


@dataclasses.dataclass
class SourceIndex:
    """Parsed cells. ``definitions``: name -> last top-level def/class node;
    ``aliases``: local name -> dotted path, from top-level imports and simple assignments."""

    trees: list[ast.Module]
    definitions: dict[str, ast.AST]
    aliases: dict[str, str]
    unparsable: list[int]


@dataclasses.dataclass
class Usage:
    """What one definition (plus the helpers it calls) uses.

    ``calls``: (qualified name or ``.method`` for calls on a value, receiver name or None);
    ``names``: every qualified Name/Attribute reference; ``attributes`` and ``keywords``: bare
    attribute and keyword-argument names.
    """

    found: bool
    calls: list[tuple[str, str | None]] = dataclasses.field(default_factory=list)
    names: set[str] = dataclasses.field(default_factory=set)
    attributes: set[str] = dataclasses.field(default_factory=set)
    keywords: set[str] = dataclasses.field(default_factory=set)

    def calls_to(self, *qualified: str) -> bool:
        return any(name in qualified for name, _ in self.calls)

    def method_calls(self, method: str, *, except_on: str | None = None) -> int:
        """Calls of ``<value>.method(...)``, ignoring those whose receiver is ``except_on``."""
        return sum(1 for name, receiver in self.calls
                   if name == "." + method and (except_on is None or receiver != except_on))


def _parse_tolerant(text: str) -> tuple[ast.Module | None, bool]:
    """Parse ``text``; on a SyntaxError blank the offending line and retry (best effort)."""
    lines = text.splitlines()
    repaired = False
    for _ in range(_MAX_REPAIRS):
        try:
            return ast.parse("\n".join(lines)), repaired
        except SyntaxError as error:
            line = (error.lineno or 0) - 1
            if not 0 <= line < len(lines) or not lines[line].strip():
                return None, True
            lines[line] = ""
            repaired = True
    return None, True


def index_source(source: str | list[str]) -> SourceIndex:
    """Index the code cells (a list of cell sources, or one string of all cells)."""
    trees, unparsable = [], []
    source = source or ""
    if isinstance(source, str):
        tree, repaired = _parse_tolerant(source)
        if tree is not None:
            trees.append(tree)
        if repaired:
            unparsable.append(0)
    else:
        for number, cell in enumerate(source):
            try:
                trees.append(ast.parse(cell))
            except (SyntaxError, ValueError):
                unparsable.append(number)
    definitions: dict[str, ast.AST] = {}
    aliases: dict[str, str] = {}
    for tree in trees:
        for node in tree.body:
            _bind(node, definitions, aliases)
    return SourceIndex(trees, definitions, aliases, unparsable)


def _bind(node: ast.AST, definitions: dict, aliases: dict) -> None:
    """Record what one top-level statement binds (later statements override earlier ones)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        definitions[node.name] = node
        aliases.pop(node.name, None)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        _import_aliases(node, aliases)
        for name in _import_bound_names(node):
            definitions.pop(name, None)
    elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
            and isinstance(node.targets[0], ast.Name):
        target = node.targets[0].id
        if isinstance(node.value, ast.Name) and node.value.id in definitions:
            definitions[target] = definitions[node.value.id]  # train_nn = train
            return
        qualified = qualified_name(node.value, aliases)
        definitions.pop(target, None)
        if qualified is not None:
            aliases[target] = qualified
        else:
            aliases.pop(target, None)


def _import_bound_names(node) -> list[str]:
    return [(a.asname or a.name.split(".")[0]) for a in node.names if a.name != "*"]


def _import_aliases(node: ast.AST, aliases: dict) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                aliases[top] = top
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        for alias in node.names:
            if alias.name != "*":
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"


def qualified_name(node: ast.AST, aliases: dict) -> str | None:
    """``ag.grad`` -> ``torch.autograd.grad`` when ``ag`` is ``torch.autograd``; None if the
    expression is not a plain dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def find_definition(index: SourceIndex, name: str) -> ast.AST | None:
    return index.definitions.get(name)


def usage(index: SourceIndex, name: str) -> Usage:
    """Everything the last definition of ``name`` uses, including helpers it calls by name."""
    node = find_definition(index, name)
    if node is None:
        return Usage(found=False)
    result = Usage(found=True)
    _collect(node, index, result, helpers=True, seen={name})
    return result


def _local_aliases(node: ast.AST, aliases: dict) -> dict:
    local = dict(aliases)
    for child in ast.walk(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            _import_aliases(child, local)
    return local


def _collect(node: ast.AST, index: SourceIndex, result: Usage, helpers: bool, seen: set) -> None:
    aliases = _local_aliases(node, index.aliases)
    called_helpers = []
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            func = child.func
            if isinstance(func, ast.Attribute):
                receiver = func.value.id if isinstance(func.value, ast.Name) else None
                result.calls.append(("." + func.attr, receiver))
            qualified = qualified_name(func, aliases)
            if isinstance(func, ast.Name) and func.id not in aliases \
                    and func.id in index.definitions:
                qualified = "<notebook>." + func.id  # the notebook's own function, not torch's
            if qualified is not None:
                result.calls.append((qualified, None))
            if isinstance(func, ast.Name) and func.id in index.definitions \
                    and func.id not in seen:
                called_helpers.append(func.id)
            result.keywords.update(k.arg for k in child.keywords if k.arg)
        elif isinstance(child, ast.Attribute):
            result.attributes.add(child.attr)
            qualified = qualified_name(child, aliases)
            if qualified is not None:
                result.names.add(qualified)
        elif isinstance(child, ast.Name):
            result.names.add(aliases.get(child.id, child.id))
    if helpers:
        for helper in called_helpers:
            seen.add(helper)
            helper_node = index.definitions[helper]
            if isinstance(helper_node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                _collect(helper_node, index, result, helpers=False, seen=seen)


# --- the rules ------------------------------------------------------------------------------

GRAD_FUNCTIONS = ("torch.autograd.grad", "torch.autograd.functional.jacobian")
SGD_NAMES = ("torch.optim.SGD", "torch.optim.sgd.SGD")
LINEAR_NAMES = ("torch.nn.Linear", "torch.nn.modules.linear.Linear")


def autograd_findings(found: Usage) -> list[str]:
    """Automatic-differentiation constructs in ``found`` (for a class whose method is named
    ``backward``, its own ``self.backward(...)`` calls are allowed)."""
    findings = []
    if any(n == "torch.autograd" or n.startswith("torch.autograd.") for n in found.names):
        findings.append("torch.autograd")
    if any(n.startswith(("torch.func", "functorch")) for n in found.names):
        findings.append("torch.func")
    if any(name == "grad" or name.endswith(".grad") and not name.startswith((".", "<notebook>"))
           for name, _ in found.calls):
        findings.append("grad(...)")
    if found.method_calls("backward", except_on="self"):
        findings.append(".backward()")
    if {"requires_grad", "requires_grad_"} & (found.attributes | found.keywords):
        findings.append("requires_grad")
    if "enable_grad" in found.attributes or any(n.endswith("enable_grad") for n in found.names):
        findings.append("enable_grad")
    return sorted(set(findings))


def calls_autograd_grad(found: Usage) -> bool:
    return found.calls_to(*GRAD_FUNCTIONS)


def calls_backward(found: Usage) -> bool:
    return bool(found.method_calls("backward")) or found.calls_to("torch.autograd.backward")


def uses_sgd(found: Usage) -> bool:
    return found.calls_to(*SGD_NAMES)


def uses_linear(found: Usage) -> bool:
    return found.calls_to(*LINEAR_NAMES)


def calls_zero_grad(found: Usage) -> bool:
    return bool(found.method_calls("zero_grad"))

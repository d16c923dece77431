"""AST helpers for the method rules: what a definition in the submitted notebook uses.

The notebook's code cells are parsed one by one (a cell that does not parse is skipped, as the
notebook run skips it too). A name's definition is the LAST top-level ``def``/``class`` binding
it across cells (``train_nn = train`` follows one hop to ``def train``). Import aliases are
resolved (``from torch.autograd import grad as g``, ``import torch.autograd as ag``,
``from torch import nn``, ``g = torch.autograd.grad``), so calls are reported by their
qualified names, e.g. ``torch.autograd.grad``. Every function or class of the notebook that a
definition names (called, or passed as a value) is inspected too, at any depth. q1's rule is an
allow-list over that code (:func:`q1_rule_findings`).
"""

from __future__ import annotations

import ast
import builtins
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
    seen, queue = {name}, [node]
    while queue:
        for helper in _collect(queue.pop(), index, result, seen):
            seen.add(helper)
            queue.append(index.definitions[helper])
    return result


def _local_aliases(node: ast.AST, aliases: dict) -> dict:
    local = dict(aliases)
    for child in ast.walk(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            _import_aliases(child, local)
    return local


def _collect(node: ast.AST, index: SourceIndex, result: Usage, seen: set) -> list[str]:
    """Add what ``node`` uses to ``result``; return the notebook definitions it names that are
    not in ``seen`` (to be followed)."""
    aliases = _local_aliases(node, index.aliases)
    helpers = []
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
            result.keywords.update(k.arg for k in child.keywords if k.arg)
        elif isinstance(child, ast.Attribute):
            result.attributes.add(child.attr)
            qualified = qualified_name(child, aliases)
            if qualified is not None:
                result.names.add(qualified)
        elif isinstance(child, ast.Name):
            result.names.add(aliases.get(child.id, child.id))
            if child.id in index.definitions and child.id not in aliases \
                    and child.id not in seen and child.id not in helpers:
                helpers.append(child.id)
    return helpers


# --- the rules ------------------------------------------------------------------------------

GRAD_FUNCTIONS = ("torch.autograd.grad", "torch.autograd.functional.jacobian")
SGD_NAMES = ("torch.optim.SGD", "torch.optim.sgd.SGD")
LINEAR_NAMES = ("torch.nn.Linear", "torch.nn.modules.linear.Linear")


def calls_autograd_grad(found: Usage) -> bool:
    return found.calls_to(*GRAD_FUNCTIONS)


def calls_backward(found: Usage) -> bool:
    return bool(found.method_calls("backward")) or found.calls_to("torch.autograd.backward")


def uses_sgd(found: Usage) -> bool:
    return found.calls_to(*SGD_NAMES)


def uses_linear(found: Usage) -> bool:
    return found.calls_to(*LINEAR_NAMES)



# --- q1: an allow-list over every piece of the student's code that Adaline1 reaches -----------

# Modules whose plain functions are tensor arithmetic or harmless helpers. Any other module a
# reached piece of code names (os, sys, subprocess, multiprocessing, importlib, ctypes, ...)
# breaks the rule.
ALLOWED_MODULES = ("torch", "math", "numpy", "typing", "functools", "itertools", "operator",
                   "collections", "dataclasses", "numbers", "statistics", "warnings",
                   "matplotlib", "pandas", "random", "time", "json", "csv", "pathlib", "os.path")
# Names a notebook has without defining them (besides Python's builtins): IPython's.
NOTEBOOK_BUILTINS = frozenset({"display", "get_ipython", "In", "Out", "_", "__", "___", "_ih",
                               "_oh", "_dh", "exit", "quit"})
# Parts of torch that are (or reach) automatic differentiation.
DENIED_TORCH = ("torch.autograd", "torch.func", "torch._", "torch.nn.Parameter",
                "torch.nn.parameter", "torch.enable_grad", "torch.library", "torch.ops",
                "torch.utils.checkpoint", "torch.utils.cpp_extension", "torch.jit",
                "torch.compile", "torch.vmap", "torch.Tensor.backward")
# Tensor attributes that reach autograd's machinery.
DENIED_ATTRIBUTES = {"backward": ".backward()", "grad_fn": ".grad_fn", "retain_grad": ".retain_grad()",
                     "register_hook": ".register_hook()", "_execution_engine": "_execution_engine",
                     "grad": ".grad"}
# Built-ins that run code built at run time or reach the interpreter's namespaces.
DENIED_BUILTINS = ("exec", "eval", "compile", "__import__", "globals", "vars", "breakpoint",
                   "__builtins__", "__loader__", "__spec__")
ALLOWED_DUNDERS = ("__init__", "__name__", "__len__", "__getitem__", "__class__")


def _is_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value in (False, 0)


def _resolves(qualified: str) -> bool:
    """Whether the dotted name is something the library itself defines (not something the
    notebook stored there, e.g. ``torch.linalg.helper = my_function``): looked up in this,
    the grader's, pristine copy of the module."""
    import importlib
    import sys

    parts = qualified.split(".")
    if parts[0] == "matplotlib" and "matplotlib" not in sys.modules:
        return True  # not imported by the grader; nothing of it can differentiate
    try:
        found = importlib.import_module(parts[0])
    except Exception:  # noqa: BLE001 - not importable here: nothing to compare with
        return True
    for index, part in enumerate(parts[1:], start=1):
        try:
            found = getattr(found, part)
            continue
        except AttributeError:
            pass
        try:
            found = importlib.import_module(".".join(parts[:index + 1]))
        except Exception:  # noqa: BLE001 - no such attribute or submodule
            return False
    return True


def _denied_name(qualified: str) -> str | None:
    """Why a fully qualified name breaks the q1 rule, or None."""
    root = qualified.split(".")[0]
    if root == "functorch":
        return qualified
    if root not in ALLOWED_MODULES and not any(
            qualified == m or qualified.startswith(m + ".") for m in ALLOWED_MODULES):
        return qualified
    if root == "torch":
        if any(qualified == p or qualified.startswith(p if p.endswith("_") else p + ".")
               for p in DENIED_TORCH):
            return qualified
        if any(part in ("backward", "requires_grad_", "grad_fn", "_execution_engine")
               for part in qualified.split(".")[1:]):
            return qualified
    if not _resolves(qualified):
        return f"{qualified} (not part of {root}: something the notebook stored there)"
    return None


class _Q1Walker:
    """Follows Adaline1 through every notebook definition it names (any depth), collecting what
    breaks the rule as ``(finding, where)``. Names are resolved by scope: a parameter, local
    variable or notebook function called ``grad`` is not torch's."""

    def __init__(self, index: SourceIndex):
        self.index = index
        self.findings: dict[str, str] = {}
        self.seen: set[str] = set()
        self.queue: list[str] = []
        self.values = _top_level_values(index)  # variable -> the expressions assigned to it
        self.assigned = _assigned_anywhere(index)
        self.star_modules = [node.module for tree in index.trees for node in ast.walk(tree)
                             if isinstance(node, ast.ImportFrom) and node.module
                             and any(a.name == "*" for a in node.names)]
        self.followed_values: set[str] = set()

    def deny(self, finding: str, where: str) -> None:
        self.findings.setdefault(finding, where)

    def run(self, name: str) -> list[str]:
        self.follow(name)
        while self.queue:
            current = self.queue.pop()
            node = self.index.definitions[current]
            self.visit(node, frozenset(), dict(self.index.aliases), current)
            for tree in self.index.trees:  # Adaline1.backward = something, at the top level
                for statement in tree.body:
                    if isinstance(statement, (ast.Assign, ast.AugAssign)):
                        targets = statement.targets if isinstance(statement, ast.Assign) \
                            else [statement.target]
                        if any(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                               and t.value.id == current for t in targets):
                            self.visit(statement.value, frozenset(), dict(self.index.aliases),
                                       current)
        return [f"{finding} (in {where})" for finding, where in self.findings.items()]

    def follow(self, name: str) -> None:
        if name in self.index.definitions and name not in self.seen:
            self.seen.add(name)
            self.queue.append(name)

    # --- scopes -------------------------------------------------------------------------------
    @staticmethod
    def _local_names(node) -> set[str]:
        args = node.args
        names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        names.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
        declared_global = set()
        for child in ast.walk(node) if not isinstance(node, ast.Lambda) else ():
            if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
                names.add(child.id)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                    and child is not node:
                names.add(child.name)
            elif isinstance(child, ast.Global):
                declared_global.update(child.names)
            elif isinstance(child, ast.arg):
                names.add(child.arg)
        return names - declared_global

    def qualify(self, node: ast.AST, scope: frozenset, aliases: dict) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id in scope:
            return None
        if node.id not in aliases:
            return None
        parts.append(aliases[node.id])
        return ".".join(reversed(parts))

    # --- the walk -----------------------------------------------------------------------------
    def visit(self, node: ast.AST, scope: frozenset, aliases: dict, where: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inner_aliases = dict(aliases)
            for child in ast.walk(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    _import_aliases(child, inner_aliases)
            imported = set(inner_aliases) - set(aliases) | {
                k for k in inner_aliases if inner_aliases[k] != aliases.get(k)}
            inner = scope | (self._local_names(node) - imported)
            label = where if isinstance(node, ast.Lambda) else f"{where}.{node.name}" \
                if where.split(".")[-1] != node.name else where
            for decorator in getattr(node, "decorator_list", []):
                self.visit(decorator, scope, aliases, where)
            for default in node.args.defaults + [d for d in node.args.kw_defaults if d]:
                self.visit(default, scope, aliases, where)
            body = node.body if isinstance(node.body, list) else [node.body]
            for statement in body:
                self.visit(statement, frozenset(inner), inner_aliases, label)
            return
        if isinstance(node, ast.ClassDef):
            for part in node.bases + [k.value for k in node.keywords] + node.decorator_list:
                self.visit(part, scope, aliases, where)
            for statement in node.body:
                self.visit(statement, scope, aliases,
                           where if where.split(".")[-1] == node.name else f"{where}.{node.name}")
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            local = {}
            _import_aliases(node, local)
            for qualified in local.values():
                if _denied_name(qualified):
                    self.deny(f"import {qualified}", where)
            return
        if isinstance(node, ast.Name):
            self._name(node, scope, aliases, where)
            return
        if isinstance(node, ast.Attribute):
            self._attribute(node, scope, aliases, where)
            return
        if isinstance(node, ast.Call):
            self._call(node, scope, aliases, where)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "requires_grad" \
                        and not _is_false(node.value):
                    self.deny(".requires_grad = True", where)
        for child in ast.iter_child_nodes(node):
            self.visit(child, scope, aliases, where)

    def _name(self, node: ast.Name, scope, aliases, where) -> None:
        name = node.id
        if name in scope:
            return
        if name in aliases:
            denied = _denied_name(aliases[name])
            if denied:
                self.deny(denied, where)
        elif name in self.index.definitions:
            self.follow(name)
        elif name in DENIED_BUILTINS:
            self.deny(f"{name}()" if not name.startswith("__") else name, where)
        elif name in self.values:
            self._follow_value(name, where)
        elif not hasattr(builtins, name) and name not in NOTEBOOK_BUILTINS \
                and name not in self.assigned:
            star = next((f"{m}.{name}" for m in self.star_modules if _resolves(f"{m}.{name}")),
                        None)
            if star is not None:
                denied = _denied_name(star)
                if denied:
                    self.deny(denied, where)
            else:  # put in place at run time (builtins.name = ..., globals()[...] = ...)
                self.deny(f"{name} (defined nowhere in the notebook)", where)

    def _follow_value(self, name: str, where: str) -> None:
        """A top-level variable that reached code uses: what was assigned to it is reached."""
        if name in self.followed_values:
            return
        self.followed_values.add(name)
        for value in self.values[name]:
            self.visit(value, frozenset(), dict(self.index.aliases), where)

    def _attribute(self, node: ast.Attribute, scope, aliases, where) -> None:
        qualified = self.qualify(node, scope, aliases)
        if qualified is not None:
            denied = _denied_name(qualified)
            if denied:
                self.deny(denied, where)
                return
        attr = node.attr
        receiver_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        if attr in DENIED_ATTRIBUTES and not receiver_self:
            self.deny(DENIED_ATTRIBUTES[attr], where)
        elif attr.startswith("__") and attr.endswith("__") and attr not in ALLOWED_DUNDERS:
            self.deny(f".{attr}", where)
        if qualified is None or not _denied_name(qualified):
            self.visit(node.value, scope, aliases, where)

    def _call(self, node: ast.Call, scope, aliases, where) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) and func.id not in scope \
            and func.id not in aliases and func.id not in self.index.definitions else None
        if name in ("getattr", "setattr", "delattr", "hasattr"):
            attribute = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(attribute, ast.Constant) and isinstance(attribute.value, str)):
                self.deny(f"{name}() with a computed name", where)
            elif node.args:
                synthetic = ast.Attribute(value=node.args[0], attr=attribute.value,
                                          ctx=ast.Load())
                self._attribute(synthetic, scope, aliases, where)
        attr = func.attr if isinstance(func, ast.Attribute) else None
        if attr == "requires_grad_" and not (node.args and _is_false(node.args[0])) \
                and not any(k.arg == "requires_grad" and _is_false(k.value)
                            for k in node.keywords):
            self.deny(".requires_grad_()", where)
        if attr == "set_grad_enabled" or (self.qualify(func, scope, aliases) or "").endswith(
                "set_grad_enabled"):
            if not (node.args and _is_false(node.args[0])):
                self.deny("torch.set_grad_enabled(True)", where)
        for keyword in node.keywords:
            if keyword.arg == "requires_grad" and not _is_false(keyword.value):
                self.deny("requires_grad=True", where)


def _top_level_values(index: SourceIndex) -> dict[str, list[ast.AST]]:
    """{variable: the expressions assigned to it by top-level statements}, for the variables
    that are not functions, classes or import aliases (``helper = make_helper()``,
    ``for helper in (...)``, ``with ... as helper``)."""
    values: dict[str, list[ast.AST]] = {}

    def bind(target: ast.AST, value: ast.AST) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name) and node.id not in index.definitions \
                    and node.id not in index.aliases:
                values.setdefault(node.id, []).append(value)

    def module_level(node: ast.AST):
        """``node`` and what it holds, not descending into functions and classes."""
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                      ast.ClassDef)):
                yield from module_level(child)

    for tree in index.trees:
        for statement in module_level(tree):
            if isinstance(statement, ast.Assign):
                for target in statement.targets:
                    bind(target, statement.value)
            elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)) and statement.value:
                bind(statement.target, statement.value)
            elif isinstance(statement, (ast.For, ast.AsyncFor)):
                bind(statement.target, statement.iter)
            elif isinstance(statement, (ast.With, ast.AsyncWith)):
                for item in statement.items:
                    if item.optional_vars is not None:
                        bind(item.optional_vars, item.context_expr)
            elif isinstance(statement, ast.NamedExpr):
                bind(statement.target, statement.value)
    return values


def _assigned_anywhere(index: SourceIndex) -> set[str]:
    """Every name the notebook binds somewhere (any depth): targets, parameters, imports,
    definitions, exception names, ``global`` declarations."""
    names: set[str] = set(index.definitions) | set(index.aliases)
    for tree in index.trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update(_import_bound_names(node))
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                names.update(node.names)
            elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
                names.add(node.name)
    return names


def q1_rule_findings(index: SourceIndex, name: str = "Adaline1") -> list[str] | None:
    """What breaks q1's rule in ``name`` and every notebook definition it reaches (None when
    ``name`` is not defined): anything but tensor arithmetic (autograd, torch.func, torch._C,
    nn.Parameter, requires_grad turned on, processes, code built at run time)."""
    if name not in index.definitions:
        return None
    return _Q1Walker(index).run(name)

"""Evidence that a submission reached for the grader's machinery, for course staff to look at.

Two sources, neither complete: :func:`scan` reads the notebook's source for the names an attempt
on the grader needs (frame walking, heap walking, the grading package, the probes) wherever they
appear, strings included; the student process's audit hook (:mod:`adaline_kit.sandbox.audit`)
reports such acts while they run. A flag never changes a score; scores come from checks on
inputs drawn at grading time, which forged data cannot pass.
"""

from __future__ import annotations

import ast
import re

# name in the source -> what it is for
MACHINERY = {
    "adaline_kit": "the grader's package",
    "StudentProcess": "the grader's student-process object",
    "PROBES": "the grader's probe table",
    "f_back": "walking up the call stack (frame.f_back)",
    "f_globals": "another frame's globals (frame.f_globals)",
    "f_locals": "another frame's local variables (frame.f_locals)",
    "tb_frame": "frames from a traceback (tb_frame)",
    "_getframe": "taking frames (sys._getframe)",
    "currentframe": "taking frames (inspect.currentframe)",
    "getouterframes": "walking up the call stack (inspect.getouterframes)",
    "_current_frames": "the frames of every thread (sys._current_frames)",
    "get_objects": "walking every object in memory (gc.get_objects)",
    "get_referrers": "searching memory for references (gc.get_referrers)",
    "get_referents": "following references (gc.get_referents)",
    "addaudithook": "audit hooks",
    "settrace": "tracing the interpreter (sys.settrace)",
    "setprofile": "profiling hooks (sys.setprofile)",
    "__closure__": "a function's closure cells (where wrappers keep what they wrap)",
    "cell_contents": "what a closure cell holds (cell.cell_contents)",
    "gi_frame": "a generator's frame (gi_frame)",
    "cr_frame": "a coroutine's frame (cr_frame)",
}
_PATTERN = re.compile(r"\b(" + "|".join(re.escape(name) for name in MACHINERY) + r")\b")
_INSPECT_STACK = re.compile(r"\binspect\s*\.\s*(stack|trace)\s*\(")
_ATTRIBUTE_FUNCTIONS = ("getattr", "setattr", "delattr")


def _computed_attribute_names(source: str) -> list[str]:
    """``getattr``/``setattr``/``delattr`` calls whose name is not a string literal: names built
    at run time, the way the names above are hidden from a reader (``"f_" + "back"``)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    return [node.func.id for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _ATTRIBUTE_FUNCTIONS and len(node.args) >= 2
            and not (isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str))]


def scan(cells: list[str]) -> list[str]:
    """One line per name found, ``code cell N uses NAME (what it is for)``, first use only."""
    found: dict[str, str] = {}
    for index, source in enumerate(cells):
        for match in _PATTERN.finditer(source):
            name = match.group(1)
            found.setdefault(name, f"code cell {index + 1} uses {name} ({MACHINERY[name]})")
        for function in _computed_attribute_names(source):
            name = f"{function}()"
            found.setdefault(name, f"code cell {index + 1} uses {name} with a name built at run "
                                   "time (how names like f_back are hidden)")
        for match in _INSPECT_STACK.finditer(source):
            name = f"inspect.{match.group(1)}"
            found.setdefault(name, f"code cell {index + 1} uses {name}() (walking the call "
                                   "stack)")
    return list(found.values())


def flag_message(flags: list[str]) -> str:
    """The note a flagged submission's message carries."""
    lines = ["Flagged for review by course staff: this notebook's code reaches for the "
             "grader's own machinery, which an assignment solution never needs. It gained no "
             "points by it. Evidence:"]
    lines += [f"  - {flag}" for flag in flags]
    return "\n".join(lines)

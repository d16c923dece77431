"""Submissions that break, hang, crash or flood (group ``faults``): grading must still finish.

Each case is the reference solution (full marks) with one fault added, so every question the
fault does not touch must keep full credit, and a question the fault does touch must lose its
points with feedback that says what happened. A few cases are not notebooks at all, or not
usable ones (raw bytes, an old nbformat version, a zip with a forged otter log or with two
notebooks, JSON whose structure is broken). ``casebook.py`` writes them to
``faults/``.

Expectations that do not fit the per-question casebook fields live here, for
``tests/test_hardening.py``:

``OUTPUT``   case -> substrings of the results' top-level output (the notebook-run summary)
``ORPHANS``  case -> a marker in the command line of every process the case starts; none of
             them may still run after grading
``MARKERS``  case -> a file name under the grader's temporary folder that must never appear
             (a forged ``.OTTER_LOG`` creates it when something unpickles it)
``STATUS``   case -> the status its results must have (``invalid``, ``graded``)
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import nbformat

from casebook import Case, base_notebook
from edits import cell_after, code, definition

FULL = {"q1": "full", "q2": "full", "q3": "full"}
ZERO = {"q1": "zero", "q2": "zero", "q3": "zero"}


def fault(name: str, description: str, expect: dict | None = None, **fields) -> Case:
    return Case(name=name, group="faults", description=description,
                expect=dict(FULL if expect is None else expect), **fields)


def _no_cells(notebook):
    notebook.cells = []
    return notebook


def _reference_json(version: int = 4, base: str = "reference") -> bytes:
    notebook = base_notebook(base)
    for cell in notebook.cells:  # stable bytes: no random cell ids (nbformat 4.4 has none)
        cell.pop("id", None)
    notebook.nbformat_minor = 4
    if version == 4:
        return (nbformat.writes(notebook, version=4) + "\n").encode()
    old = nbformat.convert(notebook, version)
    return (nbformat.v3.writes_json(old) + "\n").encode()


# --- a forged otter log ---------------------------------------------------------------------

OTTER_LOG_MARKER = "adaline-kit-hardening-forged-otter-log"


class _MarkerPayload:
    """Unpickling this object runs ``exec``: it writes a marker file in the temp folder."""

    def __reduce__(self):
        return (exec, (
            "import pathlib, tempfile, os\n"
            f"pathlib.Path(tempfile.gettempdir(), {OTTER_LOG_MARKER!r}).write_text("
            "'unpickled by uid %d pid %d' % (os.getuid(), os.getpid()))\n",))


def forged_log_bytes() -> bytes:
    return pickle.dumps(_MarkerPayload(), protocol=2)


def _zip(*entries: tuple[str, bytes]) -> bytes:
    """A zip (stable bytes) holding ``entries``, like the ones grader.export() writes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _zip_with_forged_log() -> bytes:
    return _zip(("adaline_autograd.ipynb", _reference_json()), (".OTTER_LOG", forged_log_bytes()))


# --- structurally broken notebooks ----------------------------------------------------------

def _broken_reference(edit) -> bytes:
    """The reference's JSON with ``edit(notebook_dict)`` applied (no nbformat on the way out:
    it would refuse or repair what the edit broke)."""
    notebook = json.loads(_reference_json())
    edit(notebook)
    return (json.dumps(notebook, indent=1) + "\n").encode()


def _code_cell_defining(notebook: dict, name: str) -> dict:
    return next(cell for cell in notebook["cells"] if cell["cell_type"] == "code"
                and f"def {name}" in "".join(cell["source"]))


def _drop_source(notebook: dict) -> None:
    del _code_cell_defining(notebook, "train_autograd")["source"]


def _integer_source(notebook: dict) -> None:
    _code_cell_defining(notebook, "train_autograd")["source"] = 42


def _deeply_nested() -> bytes:
    """The reference with 20,000 nested lists in its metadata (too deep for a JSON parser
    that recurses, as Python's does past about 1,000 levels)."""
    depth = 20_000
    text = _broken_reference(lambda notebook: notebook["metadata"].update(nesting="NESTING"))
    return text.replace(b'"NESTING"', b"[" * depth + b"]" * depth)


# --- code of the faults ---------------------------------------------------------------------

ENDLESS_TRAIN_NN = definition("train_nn").replace(
    '    cost = []\n', '    cost = []\n    while True:  # never returns\n        pass\n', 1)

MEMORY_HOG_TRAIN_AUTOGRAD = code('''
    def train_autograd(model, x, y, num_epochs, learning_rate=0.01, seed=123, minibatch_size=10):
        """Keeps every intermediate result: 64 MiB more per step, far past any memory limit."""
        kept = []
        for step in range(200):  # 12.5 GiB if nothing stops it
            kept.append(torch.ones(64 << 20, dtype=torch.uint8))
        return [float(len(kept))] * num_epochs
''')

PROBE_IGNORES_ALARM = definition("train_autograd").replace(
    '    cost = []\n',
    '    import signal\n'
    '    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # the per-call alarm no longer fires\n'
    '    signal.setitimer(signal.ITIMER_REAL, 0)\n'
    '    while True:\n'
    '        pass\n'
    '    cost = []\n', 1)

SPAWN_CHILDREN = code('''
    import os, subprocess
    # A child process and a forked copy, both still sleeping when grading ends.
    subprocess.Popen(["/bin/sh", "-c", "sleep 300; : adaline-kit-orphan-spawn"])
    if os.fork() == 0:
        os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 300; : adaline-kit-orphan-spawn"])
''')

ESCAPE_PROCESS_GROUP = code('''
    import os
    # Double fork: the grandchild leaves the process group and the session (setsid).
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 300; : adaline-kit-orphan-setsid"])
        os._exit(0)
''')

CRASHING_TRAIN_AUTOGRAD = definition("train_autograd").replace(
    '    cost = []\n', '    import os\n    os._exit(0)  # ends the process whenever it is called\n'
    '    cost = []\n', 1)
CRASHING_CELL = "import os\nos._exit(1)\n"

CASES = [
    fault("syntax_error_cell", "one cell does not parse; the rest of the notebook is fine",
          add_cells=["def plot_everything(:\n    pass\n"]),
    fault("exception_in_cell", "one cell raises an exception after all definitions",
          add_cells=["raise ValueError('boom from an exploration cell')\n"]),
    fault("exit_in_cell", "a cell after the definitions calls exit()", add_cells=["exit()\n"]),
    fault("sys_exit_in_cell", "a cell after the definitions calls sys.exit(3)",
          add_cells=["import sys\nsys.exit(3)\n"]),
    fault("os_exit_at_end", "a cell after the definitions calls os._exit(0): the process ends",
          add_cells=["import os\nos._exit(0)\n"]),
    fault("os_exit_in_the_middle",
          "os._exit(0) in a cell before the data and every definition: the grader re-runs the "
          "cells without it, so the later definitions still count",
          transform=cell_after("import os\nos._exit(0)\n")),
    fault("segfault_cell", "a cell crashes the interpreter (reads address 0 with ctypes)",
          add_cells=["import ctypes\nctypes.string_at(0)\n"]),
    fault("sigkill_cell", "a cell kills its own process with SIGKILL",
          add_cells=["import os\nos.kill(os.getpid(), 9)\n"]),
    fault("endless_train_nn",
          "train_nn loops forever (also when the notebook itself calls it): q3's training "
          "checks stop at the time limit (its structure checks of Adaline3 still count)",
          expect={"q1": "full", "q2": "full", "q3": "loses"},
          feedback={"q3": ["time limit", "lecture_curve", "endless loop"]},
          replace={"train_nn": ENDLESS_TRAIN_NN}),
    fault("endless_top_level_loop", "a cell after the definitions loops forever",
          add_cells=["while True:\n    pass\n"]),
    fault("endless_loop_alarm_disabled",
          "a cell ignores SIGALRM, cancels the timer and loops forever: only the grader's own "
          "deadline and kill can stop it",
          add_cells=["import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                     "while True:\n    signal.setitimer(signal.ITIMER_REAL, 0)\n"]),
    fault("probe_ignores_alarm",
          "train_autograd ignores SIGALRM and loops forever: q2 times out, the process is "
          "killed and restarted, q3 is still graded",
          expect={"q1": "full", "q2": "zero", "q3": "full"},
          feedback={"q2": ["time limit"]},
          replace={"train_autograd": PROBE_IGNORES_ALARM}),
    fault("print_flood", "a cell prints 200,000 lines (and writes 20 MB to the raw stdout)",
          add_cells=["for i in range(200_000):\n    print('line', i, 'of the flood')\n"
                     "import os\nfor _ in range(20):\n    os.write(1, b'x' * (1 << 20))\n"]),
    fault("missing_module", "a cell imports a module that does not exist",
          add_cells=["import some_module_that_does_not_exist\n"]),
    fault("reads_stdin", "a cell waits for keyboard input", add_cells=["name = input('name? ')\n"]),
    fault("empty_notebook", "a notebook without any cells", expect=ZERO,
          feedback={q: ["no code cells"] for q in ZERO}, transform=_no_cells),
    fault("not_json", "random bytes saved with the .ipynb suffix", expect=ZERO,
          feedback={q: ["not a notebook"] for q in ZERO},
          raw=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe{not json at all\x00\x01"),
    fault("nbformat_v3", "the reference solution saved as an nbformat 3 notebook",
          raw=_reference_json(version=3)),
    fault("memory_hog_train_autograd",
          "train_autograd allocates far more memory than allowed: q2 fails with a memory "
          "message, the other questions keep their points",
          expect={"q1": "full", "q2": "zero", "q3": "full"}, feedback={"q2": ["memory"]},
          replace={"train_autograd": MEMORY_HOG_TRAIN_AUTOGRAD}),
    fault("memory_hog_cell", "a cell builds a 4 GiB bytes object (MemoryError)",
          add_cells=["blob = b'x' * (4 << 30)\n"]),
    fault("spawns_children", "a cell starts a subprocess and forks a child that outlive it",
          add_cells=[SPAWN_CHILDREN]),
    fault("escapes_process_group",
          "a cell double-forks a grandchild that calls setsid() to leave the process group",
          add_cells=[ESCAPE_PROCESS_GROUP]),
    fault("zip_with_forged_otter_log",
          "a grader.export() zip: the reference notebook and a forged .OTTER_LOG whose "
          "unpickling would run code in the grader",
          raw=_zip_with_forged_log(), suffix=".zip"),
    fault("cell_without_source", "the reference, but the cell defining train_autograd has no "
          "source field at all", expect=ZERO, feedback={q: ["has no source"] for q in ZERO},
          raw=_broken_reference(_drop_source)),
    fault("integer_source", "the reference, but the source of the cell defining "
          "train_autograd is the number 42", expect=ZERO,
          feedback={q: ["is a number, not text"] for q in ZERO},
          raw=_broken_reference(_integer_source)),
    fault("deeply_nested_json", "the reference with 20,000 nested lists in its metadata",
          expect=ZERO, feedback={q: ["nested far too deeply"] for q in ZERO},
          raw=_deeply_nested()),
    fault("crashing_cells_give_up",
          "seven cells after the definitions each end the process: after its sixth restart "
          "the grader stops, before any question is graded",
          expect=ZERO, feedback={q: ["not graded", "ended 7 times"] for q in ZERO},
          add_cells=[CRASHING_CELL] * 7),
    fault("crashing_probe_gives_up",
          "train_autograd ends the process and five cells do too: the notebook's run costs six "
          "restarts (its own call of train_autograd and the five cells), q1 is graded, q2's "
          "first probe ends the process a seventh time (q2 is judged on that crash, as any "
          "question whose probe crashes), so q3 is not graded",
          expect={"q1": "full", "q2": "zero", "q3": "zero"},
          feedback={"q3": ["not graded", "ended 7 times"]},
          replace={"train_autograd": CRASHING_TRAIN_AUTOGRAD}, add_cells=[CRASHING_CELL] * 5),
    fault("zip_with_untouched_copy",
          "a zip with the untouched adaline_autograd.ipynb beside the real work, saved as "
          "adaline_autograd-Copy1.ipynb (Jupyter's name for a copy): the copy is graded",
          raw=_zip(("adaline_autograd.ipynb", _reference_json(base="student")),
                   ("adaline_autograd-Copy1.ipynb", _reference_json())), suffix=".zip"),
]

OUTPUT = {
    "syntax_error_cell": ["SyntaxError"],
    "exception_in_cell": ["ValueError: boom from an exploration cell"],
    "exit_in_cell": ["exit("],
    "sys_exit_in_cell": ["exit(3)"],
    "os_exit_at_end": ["ended unexpectedly"],
    "os_exit_in_the_middle": ["ended unexpectedly"],
    "segfault_cell": ["ended unexpectedly"],
    "sigkill_cell": ["ended unexpectedly"],
    "endless_train_nn": ["ran longer than"],
    "endless_top_level_loop": ["ran longer than"],
    "endless_loop_alarm_disabled": ["no answer within"],
    "missing_module": ["ModuleNotFoundError", "some_module_that_does_not_exist"],
    "reads_stdin": ["EOFError"],
    "memory_hog_cell": ["MemoryError"],
    "empty_notebook": ["no code cells"],
    "not_json": ["not a notebook"],
    "cell_without_source": ["could not be graded: cell ", "(a code cell) has no source"],
    "integer_source": ["is a number, not text"],
    "deeply_nested_json": ["nested far too deeply"],
    "crashing_cells_give_up": ["Grading stopped early: the notebook's process ended 7 times",
                               "No question was graded"],
    "crashing_probe_gives_up": ["Grading stopped early: the notebook's process ended 7 times",
                                "Fully graded: q1, q2.", "Not graded (0 points): q3."],
    "zip_with_untouched_copy": [
        "only adaline_autograd-Copy1.ipynb was graded, the one with the most work done",
        "Not graded: adaline_autograd.ipynb (5 parts still raising NotImplementedError)"],
}

# case -> the results' status (extra_data.status; grades.csv's status column): structurally
# broken notebooks are the student's to fix (invalid), never a failure of the grader (error).
STATUS = {
    "cell_without_source": "invalid",
    "integer_source": "invalid",
    "deeply_nested_json": "invalid",
    "not_json": "invalid",
    "empty_notebook": "invalid",
    "crashing_cells_give_up": "graded",
    "crashing_probe_gives_up": "graded",
    "zip_with_untouched_copy": "graded",
}

ORPHANS = {
    "spawns_children": "adaline-kit-orphan-spawn",
    "escapes_process_group": "adaline-kit-orphan-setsid",
}

MARKERS = {"zip_with_forged_otter_log": OTTER_LOG_MARKER}

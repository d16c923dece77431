"""Submissions that break, hang, crash or flood (group ``faults``): grading must still finish.

Each case is the reference solution (full marks) with one fault added, so every question the
fault does not touch must keep full credit, and a question the fault does touch must lose its
points with feedback that says what happened. A few cases are not notebooks at all (raw bytes,
an old nbformat version, a zip with a forged otter log). ``python tests/corpus/casebook.py``
writes them to ``faults/``.

Expectations that do not fit the per-question casebook fields live here, for
``tests/test_hardening.py``:

``OUTPUT``   case -> substrings of the results' top-level output (the notebook-run summary)
``ORPHANS``  case -> a marker in the command line of every process the case starts; none of
             them may still run after grading
``MARKERS``  case -> a file name under the grader's temporary folder that must never appear
             (a forged ``.OTTER_LOG`` creates it when something unpickles it)
"""

from __future__ import annotations

import io
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


def _reference_json(version: int = 4) -> bytes:
    notebook = base_notebook("reference")
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


def _zip_with_forged_log() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (("adaline_autograd.ipynb", _reference_json()),
                           (".OTTER_LOG", forged_log_bytes())):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


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
}

ORPHANS = {
    "spawns_children": "adaline-kit-orphan-spawn",
    "escapes_process_group": "adaline-kit-orphan-setsid",
}

MARKERS = {"zip_with_forged_otter_log": OTTER_LOG_MARKER}

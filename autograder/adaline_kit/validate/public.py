"""The public checks (the student bundle's otter tests) run on a corpus case, as a student's
``grader.check`` runs them: in the namespace of the notebook's code, with otter's own test runner.

:func:`public_results_many` runs the cases in ``jobs`` child processes (``python -m
adaline_kit.validate.public TESTS_DIR DATA_FILE NOTEBOOK...``: the notebooks' code is not
trusted with the validating process); each imports torch, matplotlib and otter once and forks a
fresh child per notebook, in a temporary folder holding the data file. It returns notebook
-> question -> passed (an empty dict when the run failed). Cells run in order, each cell's error recorded
and skipped as in Jupyter; cell magics run as in grading (:mod:`adaline_kit.grade.magics`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TIMEOUT_SECONDS = 120
MARK = "ADALINE-KIT-PUBLIC "


class _Shell:
    """``get_ipython()`` for the remaining magics (``%matplotlib`` and the like): no-ops."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _run(notebook: Path, tests_dir: Path) -> dict[str, bool]:
    from otter.test_files.ok_test import OKTestFile

    from ..grade import magics
    from ..grade.submission import load

    shell = _Shell()
    namespace = {"__name__": "__main__", "get_ipython": lambda: shell}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for index, cell in enumerate(load(notebook).cells):
            try:
                exec(compile(magics.expand(cell), f"<cell {index}>", "exec"), namespace)
            except BaseException:  # noqa: BLE001 - a failing cell does not stop the notebook
                continue
    results = {}
    for path in sorted(tests_dir.glob("q*.py")):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            test_file = OKTestFile.from_file(str(path))
            test_file.run(dict(namespace))
        results[path.stem] = bool(test_file.passed_all)
    return results


def _warm_up() -> None:
    """Import what every notebook and otter's runner need, once, before the forks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import torch  # noqa: F401
    from otter.test_files.ok_test import OKTestFile  # noqa: F401


def _serve(tests_dir: Path, data_file: Path, notebooks: list[str]) -> None:
    """Run each notebook's public checks in a forked child (a fresh copy of the warm process,
    in its own temporary folder); print one ``MARK {"case": path, "results": {...}}`` line per
    notebook. A child that runs past ``TIMEOUT_SECONDS`` is killed (its results: {})."""
    import signal
    import time

    from ..assignment import current

    data_name = current().DATA_FILE  # where the notebook reads it
    _warm_up()
    for notebook in notebooks:
        read_end, write_end = os.pipe()
        folder = tempfile.mkdtemp(prefix="adaline-kit-public-")
        target = Path(folder) / data_name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_file, target)
        pid = os.fork()
        if pid == 0:  # the child: run, report through the pipe, leave
            os.close(read_end)
            try:
                os.setsid()
                os.chdir(folder)
                outcome = _run(Path(notebook), tests_dir)
            except BaseException:  # noqa: BLE001 - no result for this case
                outcome = {}
            os.write(write_end, json.dumps(outcome).encode())
            os._exit(0)
        os.close(write_end)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
            time.sleep(0.05)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        with os.fdopen(read_end) as pipe:
            text = pipe.read()
        shutil.rmtree(folder, ignore_errors=True)
        results = json.loads(text) if text else {}
        sys.stdout.write(MARK + json.dumps({"case": notebook, "results": results}) + "\n")
        sys.stdout.flush()


def public_results_many(notebooks: list[Path], tests_dir: Path, data_file: Path,
                        jobs: int = 1) -> dict[str, dict]:
    """Notebook path (as given) -> question -> its public checks pass; ``jobs`` child
    processes share the list, each warm once and forking per notebook."""
    from concurrent.futures import ThreadPoolExecutor

    notebooks = [str(Path(n).resolve()) for n in notebooks]
    chunks = [notebooks[i::max(1, jobs)] for i in range(max(1, jobs))]
    environment = dict(os.environ, MPLBACKEND="Agg")
    package_root = str(Path(__file__).resolve().parents[2])
    environment["PYTHONPATH"] = os.pathsep.join(
        [package_root] + [p for p in [environment.get("PYTHONPATH")] if p])

    def run_chunk(chunk: list[str]) -> dict[str, dict]:
        if not chunk:
            return {}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "adaline_kit.validate.public",
                 str(Path(tests_dir).resolve()), str(Path(data_file).resolve()), *chunk],
                env=environment, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                timeout=TIMEOUT_SECONDS * (len(chunk) + 1), start_new_session=True)
            output = done.stdout
        except subprocess.TimeoutExpired as error:
            output = error.stdout or ""
            output = output.decode() if isinstance(output, bytes) else output
        found = {}
        for line in output.splitlines():
            if line.startswith(MARK):
                entry = json.loads(line[len(MARK):])
                found[entry["case"]] = entry["results"]
        return found

    results: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        for found in pool.map(run_chunk, chunks):
            results.update(found)
    return {str(n): results.get(str(Path(n).resolve()), {}) for n in notebooks}


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
    sys.stdout.flush()
    os._exit(0)

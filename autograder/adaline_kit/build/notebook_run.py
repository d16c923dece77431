"""Execute a completed notebook in a fresh Jupyter kernel, next to its data and public tests."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat

from ..settings import SettingsError
from . import paths


class NotebookRunError(SettingsError):
    """A cell of the notebook raised; the message is the error's last line."""


def execute(notebook: nbformat.NotebookNode, extra_cell: str | None = None,
            timeout: int = 300) -> tuple[nbformat.NotebookNode, str]:
    """Run ``notebook`` (a completed notebook) in a fresh kernel next to the data and the
    public tests -> (the executed notebook without ``extra_cell``, ``extra_cell``'s stdout)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    if extra_cell is not None:
        notebook.cells.append(nbformat.v4.new_code_cell(extra_cell, id="appended"))
    with tempfile.TemporaryDirectory(prefix="adaline-kit-solution-") as tmp:
        shutil.copytree(paths.DATA_FILE.parent, Path(tmp) / "data")
        shutil.copytree(paths.PUBLIC_TESTS, Path(tmp) / "tests")
        try:
            NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": tmp}}).execute()
        except CellExecutionError as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            raise NotebookRunError(lines[-1] if lines else str(error)) from None
        except CellTimeoutError:
            raise NotebookRunError(f"a cell ran longer than {timeout} s") from None
        except DeadKernelError:
            raise NotebookRunError("the kernel died") from None
    output = ""
    if extra_cell is not None:
        cell = notebook.cells.pop()
        output = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
    return notebook, output

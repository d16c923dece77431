"""What student code sees of the grader: stand-ins for Jupyter's and otter's names.

Everything a notebook can reach from its own namespace (``get_ipython``, ``display``, the
``otter`` module, ``sys.stdout``, the alarm that stops a cell) is defined here, in a module that
holds no reference to the grading session: following these objects (their ``__globals__``, their
types) leads nowhere near the connection to the grader or the probes.
"""

from __future__ import annotations

import io
import types


class Interrupted(BaseException):
    """Raised in student code by the per-cell / per-probe alarm."""


def on_alarm(signum, frame):
    raise Interrupted()


class CappedOutput(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)


class Shell:
    """Stands in for IPython's shell: magics and shell escapes do nothing while grading."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def get_ipython() -> Shell:
    return Shell()


def display(*objects, **options) -> None:
    """IPython's ``display``: nothing to show while grading."""


class Notebook:
    """otter's ``Notebook``: ``grader.check`` and ``export`` do nothing while grading."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def otter_module() -> types.ModuleType:
    """An ``otter`` stand-in for ``import otter`` in the notebook."""
    module = types.ModuleType("otter")
    module.Notebook = Notebook
    return module


def namespace() -> dict:
    """A fresh ``__main__`` namespace for the notebook's cells."""
    return {"__name__": "__main__", "__builtins__": __builtins__,
            "get_ipython": get_ipython, "display": display}

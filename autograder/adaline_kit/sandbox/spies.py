"""Run-time spies on PyTorch's autograd and optimizers.

Installed in the student process *before* any student code runs, so that even an alias taken at
import time (``from torch.autograd import grad as g``) goes through the spy. The counts are
evidence for the method rules only; the grader also checks the submitted source, because code in
the same process can always undo a spy.
"""

from __future__ import annotations

import collections

import torch
import torch.autograd
import torch.autograd.graph
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.autograd.variable import Variable


class Spy:
    """Counts of autograd and optimizer events since the last :meth:`reset`.

    Keys of ``counts``: ``engine_runs`` (any backward pass through the autograd engine),
    ``autograd_grad`` (calls of ``torch.autograd.grad``), ``backward`` (``Tensor.backward`` or
    ``torch.autograd.backward``); ``optimizer_steps`` maps optimizer class names to step counts.
    """

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.optimizer_steps: collections.Counter[str] = collections.Counter()

    def reset(self) -> None:
        self.counts.clear()
        self.optimizer_steps.clear()

    def snapshot(self) -> dict:
        return {
            "engine_runs": self.counts["engine_runs"],
            "autograd_grad": self.counts["autograd_grad"],
            "backward": self.counts["backward"],
            "optimizer_steps": dict(self.optimizer_steps),
        }


class _EngineProxy:
    """Stands in for ``Variable._execution_engine`` and counts every backward pass."""

    def __init__(self, engine, spy: Spy) -> None:
        self._engine = engine
        self._spy = spy

    def run_backward(self, *args, **kwargs):
        self._spy.counts["engine_runs"] += 1
        return self._engine.run_backward(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._engine, name)


def _counting(function, spy: Spy, key: str):
    def wrapper(*args, **kwargs):
        spy.counts[key] += 1
        return function(*args, **kwargs)

    wrapper.__name__ = function.__name__
    wrapper.__qualname__ = function.__qualname__
    wrapper.__doc__ = function.__doc__
    wrapper.__module__ = function.__module__
    return wrapper


def install() -> Spy:
    """Install the spies process-wide and return the :class:`Spy` that collects their counts."""
    spy = Spy()
    Variable._execution_engine = _EngineProxy(Variable._execution_engine, spy)
    torch.autograd.grad = _counting(torch.autograd.grad, spy, "autograd_grad")
    torch.autograd.backward = _counting(torch.autograd.backward, spy, "backward")
    # Tensor.backward looks torch.autograd.backward up at call time, so this spy sees it too.

    def count_step(optimizer, args, kwargs):
        spy.optimizer_steps[type(optimizer).__name__] += 1

    register_optimizer_step_pre_hook(count_step)
    return spy

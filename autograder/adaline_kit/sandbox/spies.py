"""Run-time spies on PyTorch's autograd and optimizers.

Installed in the student process *before* any student code runs, so that even an alias taken at
import time (``from torch.autograd import grad as g``) goes through the spy. The counts are
evidence for the method rules only; the grader also checks the submitted source, because code in
the same process can always undo a spy.

:meth:`Spy.guard` makes undoing them harder: the student process calls it before every probe (a
spy removed by a notebook cell is put back, so the probe still counts) and after it (a spy
removed while the student's code ran makes the probe fail). Code that removes a spy and puts it
back within one call of a graded function is not caught; the source rules are the other half.
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
        # (owner, attribute, value): what install() put in place and guard() keeps there.
        self._expected: list[tuple[object, str, object]] = []
        self._closures: list[tuple[object, tuple]] = []  # (wrapper, its closure's contents)
        self._hooks: tuple[dict, int, object] | None = None  # (hook dict, key, hook)
        # While a probe marks gradients (see probes.q2_train), grad() results are scaled.
        self.grad_scale = 1.0

    def reset(self) -> None:
        self.counts.clear()
        self.optimizer_steps.clear()
        self.grad_scale = 1.0

    def guard(self) -> list[str]:
        """Put back every spy that was removed or replaced; return what had been changed."""
        changed = []
        for owner, name, value in self._expected:
            if vars(owner).get(name, _MISSING) is not value:
                setattr(owner, name, value)
                changed.append(f"{getattr(owner, '__name__', type(owner).__name__)}.{name}")
        for wrapper, contents in self._closures:
            for cell, value in zip(wrapper.__closure__, contents):
                if cell.cell_contents is not value:
                    cell.cell_contents = value
                    changed.append(f"{wrapper.__name__} (closure)")
        if self._hooks is not None:
            hooks, key, hook = self._hooks
            if hooks.get(key) is not hook:
                hooks[key] = hook
                changed.append("optimizer step hook")
        for counter in (self.counts, self.optimizer_steps):
            if type(counter) is not collections.Counter:  # a subclass that drops counts
                counter.__class__ = collections.Counter
                changed.append("counter class")
        return list(dict.fromkeys(changed))

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


_MISSING = object()
_ACTIVE: list[Spy] = []


def active() -> Spy | None:
    """The spy :func:`install` put in place in this process, or None."""
    return _ACTIVE[0] if _ACTIVE else None


def _scaling_grad(function, spy: Spy):
    """``torch.autograd.grad`` that counts its calls and multiplies its results by
    ``spy.grad_scale`` (1 outside the marked probe runs)."""
    def grad(*args, **kwargs):
        spy.counts["autograd_grad"] += 1
        result = function(*args, **kwargs)
        scale = spy.grad_scale
        if scale == 1.0:
            return result
        return tuple(None if g is None else g * scale for g in result)

    for name in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(grad, name, getattr(function, name))
    return grad


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
    import torch.optim.optimizer as optimizer_module

    spy = Spy()
    proxy = _EngineProxy(Variable._execution_engine, spy)
    Variable._execution_engine = proxy
    torch.autograd.grad = _scaling_grad(torch.autograd.grad, spy)
    torch.autograd.backward = _counting(torch.autograd.backward, spy, "backward")
    # Tensor.backward looks torch.autograd.backward up at call time, so this spy sees it too.

    def count_step(optimizer, args, kwargs):
        spy.optimizer_steps[type(optimizer).__name__] += 1

    handle = register_optimizer_step_pre_hook(count_step)
    hooks = optimizer_module._global_optimizer_pre_hooks
    spy._hooks = (hooks, handle.id, count_step)
    spy._expected = [
        (Variable, "_execution_engine", proxy),
        (torch.autograd, "grad", torch.autograd.grad),
        (torch.autograd, "backward", torch.autograd.backward),
        (torch.autograd, "_engine_run_backward", torch.autograd._engine_run_backward),
        (torch.autograd.graph, "_engine_run_backward", torch.autograd.graph._engine_run_backward),
        (torch.Tensor, "backward", vars(torch.Tensor)["backward"]),
        (optimizer_module, "_global_optimizer_pre_hooks", hooks),
        (_EngineProxy, "run_backward", vars(_EngineProxy)["run_backward"]),
        (_EngineProxy, "__getattr__", vars(_EngineProxy)["__getattr__"]),
        (proxy, "_engine", proxy._engine),
        (proxy, "_spy", spy),
        (spy, "counts", spy.counts),
        (spy, "optimizer_steps", spy.optimizer_steps),
    ] + [(Spy, name, vars(Spy)[name]) for name in ("reset", "snapshot", "guard")]
    spy._closures = [(wrapper, tuple(cell.cell_contents for cell in wrapper.__closure__))
                     for wrapper in (torch.autograd.grad, torch.autograd.backward, count_step)]
    _ACTIVE[:] = [spy]
    return spy

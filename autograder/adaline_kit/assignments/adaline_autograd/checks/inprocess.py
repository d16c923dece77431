"""Run submissions in this process, for tests and quick experiments (no isolation at all).

``build_namespace(cells, data)`` executes the lecture's given code and then the cells, like a
notebook run; ``make_probe(ns)`` returns a probe callable with the sandbox's contract: it resets
the spies, runs the probe and adds ``"spy"``; any exception becomes ``ProbeFailure("error",
"<ExcType>: <message>")``. The spies patch torch process-wide, so they are installed once per
process, before any namespace is built (:func:`spy`).
"""

from __future__ import annotations

from adaline_kit.outcomes import ProbeFailure
from adaline_kit.sandbox import spies
from .. import probes

_SPY = None

# The code the notebook gives the students (the lecture's own), run before their cells;
# compute_accuracy is the notebook's helper, word for word (a test compares them).
GIVEN_CODE = '''
import torch
import torch.nn.functional as F
from torch.autograd import grad


def loss_func(yhat, y):
    return torch.mean((yhat - y) ** 2)


def train_manual(model, x, y, num_epochs, learning_rate=0.01, seed=123, minibatch_size=10):
    cost = []
    torch.manual_seed(seed)
    for e in range(num_epochs):
        shuffle_idx = torch.randperm(y.size(0), dtype=torch.long)
        minibatches = torch.split(shuffle_idx, minibatch_size)
        for minibatch_idx in minibatches:
            yhat = model.forward(x[minibatch_idx])
            negative_grad_w, negative_grad_b = model.backward(
                x[minibatch_idx], yhat, y[minibatch_idx])
            model.weight += learning_rate * negative_grad_w
            model.bias += learning_rate * negative_grad_b
        yhat = model.forward(x)
        cost.append(loss_func(yhat, y))
    return cost


def compute_accuracy(model, x, y):
    # Percentage of examples whose thresholded output (> 0.5 means class 1) equals the label.
    # One output per label: an (n, 1) output is flattened, so it is never compared with the
    # (n,) labels as an (n, n) table; a different number of outputs is an error.
    with torch.no_grad():
        outputs = model.forward(x).reshape(-1)
    if outputs.numel() != y.numel():
        raise ValueError(f"compute_accuracy: the model gave {outputs.numel()} outputs for "
                         f"{y.numel()} labels (forward should return shape (n,))")
    predictions = (outputs > 0.5).int()
    return torch.mean((predictions == y.reshape(-1).int()).float()).item() * 100


class Adaline2():
    def __init__(self, num_features):
        self.num_features = num_features
        self.weight = torch.zeros(num_features, 1, dtype=torch.float, requires_grad=True)
        self.bias = torch.zeros(1, dtype=torch.float, requires_grad=True)

    def forward(self, x):
        netinputs = torch.add(torch.mm(x, self.weight), self.bias)
        activations = netinputs
        return activations.view(-1)
'''


def spy():
    """The process-wide :class:`~adaline_kit.sandbox.spies.Spy`, installed on first use."""
    global _SPY
    if _SPY is None:
        _SPY = spies.install()
    return _SPY


def build_namespace(cells: list[str], data, given: bool = True) -> dict:
    """Execute ``GIVEN_CODE`` (if ``given``) and ``cells`` in a fresh namespace holding the
    lecture's tensors (copies). A cell that raises is recorded in ``ns["__cell_errors__"]`` and
    the run goes on, as in a notebook run."""
    spy()
    ns: dict = {"__name__": "__main__", "__cell_errors__": []}
    for name in ("X_train", "X_test", "y_train", "y_test"):
        ns[name] = getattr(data, name).clone()
    for number, cell in enumerate(([GIVEN_CODE] if given else []) + list(cells)):
        try:
            exec(compile(cell, f"<cell {number}>", "exec"), ns)
        except Exception as error:  # noqa: BLE001 - a failing cell does not stop the notebook
            ns["__cell_errors__"].append(f"cell {number}: {type(error).__name__}: {error}")
    return ns


def make_probe(ns: dict, runtime_spy: bool = True):
    """A probe callable over ``ns`` with the sandbox's contract (see the module docstring).

    ``runtime_spy=False`` reports ``"spy": None`` (no run-time evidence; the checks then judge
    the method rules on the source alone): right when the spies were installed after the
    student's code ran, as in otter's in-kernel tests, where an earlier
    ``from torch.autograd import grad`` bypasses them.
    """
    the_spy = spy()

    def probe(name: str, args: dict) -> dict:
        the_spy.reset()
        if not runtime_spy:  # an earlier alias of grad() would dodge the marking spy
            args = {key: value for key, value in args.items() if key != "grad_scale"}
        try:
            data = probes.run(name, ns, args)
        except Exception as error:  # noqa: BLE001
            raise ProbeFailure("error", f"{type(error).__name__}: {error}") from error
        data["spy"] = the_spy.snapshot() if runtime_spy else None
        return data

    return probe


def source_cells(cells: list[str], given: bool = True) -> list[str]:
    """The submission's code cells as the grader sees them."""
    return ([GIVEN_CODE] if given else []) + list(cells)

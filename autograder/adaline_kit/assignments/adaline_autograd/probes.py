"""Probes: run the student's code on inputs chosen by the grader and report plain data.

A probe runs in the student process. It receives JSON-able arguments (lists of floats and ints),
calls the student's classes and functions from the notebook's global namespace, and returns only
JSON-able data: numbers, shapes and short strings. The grader process judges that data against
its own references, so nothing the student's code patches here can change a verdict.

Encoded tensors (see :func:`encode`) are ``{"shape": [...], "dtype": "torch.float32",
"values": [...]}`` with ``values`` flattened in row-major order. Every probe also returns
``"spy"``: the autograd and optimizer counts (see :mod:`adaline_kit.sandbox.spies`) observed
while the student's code ran.

Probe names and their arguments (``x`` is a list of rows, ``y`` a list of 0/1 labels):

``inventory``  {} -> {"names": {name: kind}}
``q1_backward``  {num_features, x, weight, bias, y} -> {"grad_w", "grad_b", "forward_shape"};
    sets the model's weight (m, 1) and bias (1,), then calls ``backward(x, forward(x), y)`` as
    the notebook's contract promises (yhat is always forward(x)).
``q1_train``  {x, y, num_epochs, learning_rate, seed, minibatch_size, evaluate: [[x, y], ...]}
    -> {"costs", "weight", "bias", "net_inputs", "accuracies"}; trains the student's
    ``Adaline1`` with the lecture's training loop (the probe's own copy of ``train_manual``).
``q2_train``  same arguments (+ optional ``grad_scale``: while it runs, every result of
    ``torch.autograd.grad`` is multiplied by it, so a training loop that uses grad()'s result
    takes smaller steps and one that ignores it does not); trains the lecture's ``Adaline2``
    with the student's ``train_autograd``.
``q3_structure``  {num_features, x} -> {"is_module", "linear_layers", "parameters",
    "forward_shape"}
``q3_train``  same arguments as ``q1_train``; trains the student's ``Adaline3`` with the
    student's ``train_nn``; adds ``"sgd"``: {"exact_steps": optimizer steps over the model's
    parameters that moved them by exactly -lr x grad (the optimizer's lr > 0), "learning_rates":
    the learning rates those optimizers used, "momentum": the largest momentum,
    "zero_gradient_steps": steps taken while every gradient was zero,
    "changed_before_steps" / "changed_between_steps": how often the parameters changed outside
    a step, before the first one / after one (see ``_StepWatch``)}.

Accuracies are computed by the grader from the returned net inputs (the lecture's given
``compute_accuracy`` is the grader's own copy, whatever the notebook did to it).
"""

from __future__ import annotations

import torch

from adaline_kit.sandbox import spies

CONTRACT_NAMES = (
    "X_train", "X_test", "y_train", "y_test", "loss_func", "train_manual", "compute_accuracy",
    "Adaline1", "Adaline2", "train_autograd", "Adaline3", "train_nn",
)


class ProbeError(Exception):
    """The student's code did not provide what the probe needs; the message says what."""


def encode(value, what: str) -> dict:
    """Encode a tensor-like value as plain data; raise :class:`ProbeError` naming ``what``."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    else:
        try:
            tensor = torch.as_tensor(value)
        except Exception as error:  # noqa: BLE001 - any failure means "not a tensor"
            raise ProbeError(f"{what} should be a tensor, got {type(value).__name__}") from error
    dtype = str(tensor.dtype)
    if tensor.is_complex():
        raise ProbeError(f"{what} is complex ({dtype}); expected real numbers")
    values = [float(v) for v in tensor.to(torch.float64).reshape(-1).tolist()]
    return {"shape": [int(s) for s in tensor.shape], "dtype": dtype, "values": values}


def to_number(value, what: str) -> float:
    """A Python float from a float or a one-element tensor."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ProbeError(f"{what} should be one number, got a tensor of shape "
                             f"{tuple(value.shape)}")
        return float(value.detach().reshape(-1)[0])
    try:
        return float(value)
    except Exception as error:  # noqa: BLE001
        raise ProbeError(f"{what} should be a number, got {type(value).__name__}") from error


def _lookup(ns: dict, name: str):
    if name not in ns:
        raise ProbeError(f"`{name}` is not defined in the notebook")
    return ns[name]


def _features(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def _labels(labels) -> torch.Tensor:
    """Labels as the notebook gives them: an int tensor of 0/1 (like ``y_train``)."""
    return torch.tensor(labels, dtype=torch.int)


def _kind(value) -> str:
    if isinstance(value, type):
        return "class"
    if isinstance(value, torch.Tensor):
        return "tensor"
    if callable(value):
        return "function"
    return type(value).__name__


def inventory(ns: dict, args: dict) -> dict:
    return {"names": {name: _kind(ns[name]) if name in ns else "missing"
                      for name in CONTRACT_NAMES}}


def q1_backward(ns: dict, args: dict) -> dict:
    model = _lookup(ns, "Adaline1")(args["num_features"])
    x = _features(args["x"])
    model.weight = torch.tensor(args["weight"], dtype=torch.float32).view(-1, 1)
    model.bias = torch.tensor(args["bias"], dtype=torch.float32).view(1)
    yhat = model.forward(x)
    y = torch.tensor(args["y"], dtype=torch.float32)
    result = model.backward(x, yhat, y)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise ProbeError("backward should return a pair (negative_grad_w, negative_grad_b), "
                         f"got {type(result).__name__}")
    forward_output = model.forward(x)
    return {
        "grad_w": encode(result[0], "negative_grad_w"),
        "grad_b": encode(result[1], "negative_grad_b"),
        "forward_shape": encode(forward_output, "forward(x)")["shape"],
    }


class LectureAdaline2:
    """The lecture's Adaline2: weight (m, 1) and bias (1,) zeros with ``requires_grad=True``."""

    def __init__(self, num_features: int):
        self.num_features = num_features
        self.weight = torch.zeros(num_features, 1, dtype=torch.float, requires_grad=True)
        self.bias = torch.zeros(1, dtype=torch.float, requires_grad=True)

    def forward(self, x):
        netinputs = torch.add(torch.mm(x, self.weight), self.bias)
        activations = netinputs
        return activations.view(-1)


def lecture_train_manual(model, x, y, num_epochs, learning_rate=0.01, seed=123,
                         minibatch_size=10):
    """The lecture's training loop around a hand-written ``model.backward``."""
    cost = []
    torch.manual_seed(seed)
    for _ in range(num_epochs):
        shuffle_idx = torch.randperm(y.size(0), dtype=torch.long)
        for minibatch_idx in torch.split(shuffle_idx, minibatch_size):
            yhat = model.forward(x[minibatch_idx])
            negative_grad_w, negative_grad_b = model.backward(
                x[minibatch_idx], yhat, y[minibatch_idx])
            model.weight += learning_rate * negative_grad_w
            model.bias += learning_rate * negative_grad_b
        with torch.no_grad():
            yhat = model.forward(x)
            cost.append(torch.mean((yhat - y) ** 2))
    return cost


def _net_inputs(model, x: torch.Tensor, what: str) -> dict:
    with torch.no_grad():
        return encode(model.forward(x) if hasattr(model, "forward") else model(x), what)


def _train_and_report(ns: dict, args: dict, model, train) -> dict:
    x, y = _features(args["x"]), _labels(args["y"])
    costs = train(model, x, y, args["num_epochs"], learning_rate=args["learning_rate"],
                  seed=args["seed"], minibatch_size=args["minibatch_size"])
    if costs is None or isinstance(costs, (str, bytes)) or not hasattr(costs, "__len__"):
        raise ProbeError(f"the training function should return the list of per-epoch losses, "
                         f"got {type(costs).__name__}")
    report = {"costs": [to_number(c, f"loss of epoch {i + 1}") for i, c in enumerate(costs)]}
    report["net_inputs"] = [_net_inputs(model, _features(x_eval), "the model's output")
                             for x_eval, _ in args.get("evaluate", [])]
    return report


def q1_train(ns: dict, args: dict) -> dict:
    model = _lookup(ns, "Adaline1")(len(args["x"][0]))
    report = _train_and_report(ns, args, model, lecture_train_manual)
    report["weight"] = encode(model.weight, "model.weight")
    report["bias"] = encode(model.bias, "model.bias")
    return report


def q2_train(ns: dict, args: dict) -> dict:
    model = LectureAdaline2(len(args["x"][0]))
    spy = spies.active()
    scale = float(args.get("grad_scale", 1.0))
    if spy is not None:
        spy.grad_scale = scale
    try:
        report = _train_and_report(ns, args, model, _lookup(ns, "train_autograd"))
    finally:
        if spy is not None:
            spy.grad_scale = 1.0
    report["grad_scaled"] = spy is not None and scale != 1.0
    report["weight"] = encode(model.weight, "model.weight")
    report["bias"] = encode(model.bias, "model.bias")
    return report


def _linear_layers(model) -> list:
    if not isinstance(model, torch.nn.Module):
        return []
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)]


def q3_structure(ns: dict, args: dict) -> dict:
    model = _lookup(ns, "Adaline3")(args["num_features"])
    is_module = isinstance(model, torch.nn.Module)
    layers = _linear_layers(model)
    parameters = [encode(p, "a model parameter") for p in model.parameters()] if is_module else []
    output = model(_features(args["x"])) if is_module else model.forward(_features(args["x"]))
    return {
        "is_module": is_module,
        "linear_layers": [[layer.in_features, layer.out_features] for layer in layers],
        "parameters": parameters,
        "forward_shape": encode(output, "forward(x)")["shape"],
    }


class _StepWatch:
    """Optimizer step hooks for one run: which steps moved ``parameters`` by exactly
    -lr x grad with the optimizer's lr (what an SGD does, momentum aside, on its first step), and
    how often the parameters changed outside any step: ``changed_before_steps`` (before the
    first step, e.g. an initialisation) and ``changed_between_steps`` (after a step, before the
    next one or the end of training: updates made by hand)."""

    def __init__(self, parameters):
        self.parameters = list(parameters)
        self.exact_steps = 0
        self.zero_gradient_steps = 0  # steps taken with every gradient zero (nothing to apply)
        self.steps = 0
        self.changed_before_steps = 0
        self.changed_between_steps = 0
        self.learning_rates: set[float] = set()
        self.momentum = 0.0
        self._before = None
        self._left = self._values()  # the values the last step left (at first: the initial ones)

    def _values(self) -> list:
        return [p.detach().clone() for p in self.parameters]

    def note_changes(self) -> None:
        """Count a change of the parameters since the last step (or since the start)."""
        current = self._values()
        if any(a.shape != b.shape or not torch.equal(a, b) for a, b in zip(current, self._left)):
            if self.steps:
                self.changed_between_steps += 1
            else:
                self.changed_before_steps += 1
        self._left = current

    def _mine(self, optimizer) -> list:
        ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
        return [p for p in self.parameters if id(p) in ids]

    def pre(self, optimizer, args, kwargs):
        mine = self._mine(optimizer)
        if not mine:
            self._before = None
            return
        self.note_changes()
        group_of = {id(p): group for group in optimizer.param_groups for p in group["params"]}
        for group in {id(group_of[id(p)]): group_of[id(p)] for p in mine}.values():
            self.learning_rates.add(float(group.get("lr", float("nan"))))
            self.momentum = max(self.momentum, float(group.get("momentum", 0.0) or 0.0))
        self._before = [(p, p.detach().clone(), None if p.grad is None else p.grad.detach().clone(),
                         float(group_of[id(p)].get("lr", float("nan")))) for p in mine]

    def post(self, optimizer, args, kwargs):
        before, self._before = self._before, None
        if not before:
            return
        self.steps += 1
        self._left = self._values()
        if all(g is None or not bool(torch.any(g != 0)) for _, _, g, _ in before):
            self.zero_gradient_steps += 1  # (zero_grad() between backward() and step())
            return
        if any(g is None for _, _, g, _ in before):
            return
        # Some gradient is not zero here. An SGD step with the optimizer's own rate counts (a
        # rate other than the learning_rate argument is a bug the other-data run shows).
        if all(rate > 0 and torch.allclose(p.detach() - old, -rate * g, rtol=1e-4,
                                           atol=1e-6 * (1.0 + float(old.abs().max())))
               for p, old, g, rate in before):
            self.exact_steps += 1


def q3_train(ns: dict, args: dict) -> dict:
    from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                       register_optimizer_step_pre_hook)

    model = _lookup(ns, "Adaline3")(len(args["x"][0]))
    watch = _StepWatch(model.parameters() if isinstance(model, torch.nn.Module) else [])
    handles = [register_optimizer_step_pre_hook(watch.pre),
               register_optimizer_step_post_hook(watch.post)]
    try:
        report = _train_and_report(ns, args, model, _lookup(ns, "train_nn"))
    finally:
        for handle in handles:
            handle.remove()
    watch.note_changes()  # the end of training counts as the next step
    report["sgd"] = {"exact_steps": watch.exact_steps,
                     "learning_rates": sorted(watch.learning_rates),
                     "momentum": watch.momentum,
                     "zero_gradient_steps": watch.zero_gradient_steps,
                     "changed_before_steps": watch.changed_before_steps,
                     "changed_between_steps": watch.changed_between_steps}
    layers = _linear_layers(model)
    if layers:
        report["weight"] = encode(layers[0].weight, "linear.weight")
        report["bias"] = encode(layers[0].bias, "linear.bias")
    return report


PROBES = {
    "inventory": inventory,
    "q1_backward": q1_backward,
    "q1_train": q1_train,
    "q2_train": q2_train,
    "q3_structure": q3_structure,
    "q3_train": q3_train,
}


def run(name: str, ns: dict, args: dict) -> dict:
    """Run probe ``name`` on the student namespace ``ns``; raise ProbeError or what the code raised."""
    return PROBES[name](ns, args)


"""Public checks of q1 (otter's OK format), run by ``grader.check("q1")``.

Each test case is one short doctest line that runs one check of CHECKS in the notebook's
namespace, as a doctest would. A passing check prints nothing; a failing one prints a few lines,
what failed and the hint (no traceback and no test code), and fails the doctest, which expects
no output.
"""

import re
import sys
import types

OK_FORMAT = True
QUESTION = "q1"

SHARED = r"""
X5 = [[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [-1.0, 2.0, 1.0], [0.0, 1.0, 0.5], [2.0, -0.5, -1.5]]
Y5 = [0, 1, 1, 0, 1]
# Two small runs that differ in every setting (losses from a float64 reference run):
RUNS = [
    (dict(num_epochs=3, learning_rate=0.1, seed=1, minibatch_size=2),
     [0.129169, 0.123491, 0.147643]),
    (dict(num_epochs=2, learning_rate=0.05, seed=7, minibatch_size=3), [0.349956, 0.238724]),
]


def _compare_runs(train, make_model, label):
    '''Both RUNS with ``train``: each loss within 1e-4 (relative) of the expected one.'''
    import contextlib, io, torch
    x, y = torch.tensor(X5), torch.tensor(Y5, dtype=torch.int)  # int labels, like y_train
    models = []
    for settings, expected in RUNS:
        model = make_model()
        with contextlib.redirect_stdout(io.StringIO()):
            costs = train(model, x, y, **settings)
        assert costs is not None and hasattr(costs, "__len__"), (
            f"{label} should return the list of per-epoch losses, got {costs!r}")
        got = [float(c) for c in costs]
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        assert len(got) == len(expected), (
            f"{label}({shown}) returned {len(got)} losses for {len(expected)} epochs "
            "(one full-data loss per epoch)")
        close = all(abs(a - b) <= 1e-4 * abs(b) + 1e-6 for a, b in zip(got, expected))
        assert close, (
            f"{label}({shown}) on 5 samples with 3 features: losses {[round(v, 6) for v in got]}, "
            f"expected {expected}.\nHint: the training loop is the given one, so the difference "
            "comes from backward: check its gradients on batches of other sizes and more "
            "features (the 2/n factor with n the number of rows, the mean over the batch, "
            "the sign).")
        models.append(model)
    return models


def _reached(root, scope):
    '''What ``root`` (a class or function of the notebook) and every notebook function or
    class it names use, resolved to the real objects: ``names`` (module.qualname) and
    ``findings`` (autograd attributes, requires_grad turned on, code built at run time).'''
    import builtins, dis, types
    names, findings, seen, todo = set(), set(), set(), [(root, scope)]

    def resolve(value, where):
        if isinstance(value, types.ModuleType):
            names.add(value.__name__)
        elif getattr(value, "__module__", None) == "__main__":
            todo.append((value, where))
        elif value is not None:
            qualname = getattr(value, "__qualname__", None) or getattr(value, "__name__", "")
            if qualname.startswith("_VariableFunctions"):  # torch.add and its kind
                qualname = value.__name__
            names.add(f"{getattr(value, '__module__', '') or ''}.{qualname}")

    while todo:
        obj, where = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, type):
            todo.extend((value, where) for value in vars(obj).values())
            continue
        obj = getattr(obj, "__func__", None) or getattr(obj, "fget", None) or obj
        code = obj if isinstance(obj, types.CodeType) else getattr(obj, "__code__", None)
        if code is None:
            continue
        where = getattr(obj, "__globals__", where)
        todo.extend((c, where) for c in code.co_consts if isinstance(c, types.CodeType))
        steps = list(dis.get_instructions(code))
        value = None
        for i, step in enumerate(steps):
            op, arg = step.opname, step.argval
            before = steps[i - 1] if i else None
            after = steps[i + 1] if i + 1 < len(steps) else None
            if op in ("IMPORT_NAME", "IMPORT_FROM"):
                names.add(arg if op == "IMPORT_NAME" else f"{value}.{arg}")
                value = arg if op == "IMPORT_NAME" else value
                continue
            if op == "LOAD_GLOBAL":
                value = where.get(arg, getattr(builtins, arg, None))
                if value is getattr(builtins, arg, None) and arg in (
                        "exec", "eval", "compile", "__import__", "globals", "vars"):
                    findings.add(f"{arg}()")
                if value is getattr:
                    call = next((s for s in steps[i + 1:] if s.opname == "PRECALL"), None)
                    last = steps[steps.index(call) - 1] if call else None
                    if last is None or last.opname != "LOAD_CONST" or not isinstance(
                            last.argval, str):
                        findings.add("getattr() with a computed name")
                    elif steps[i + 1].opname == "LOAD_GLOBAL" and steps[i + 2] is last:
                        owner = where.get(steps[i + 1].argval)
                        if isinstance(owner, (types.ModuleType, type)):
                            resolve(getattr(owner, last.argval, None), where)
                resolve(value, where)
            elif op in ("LOAD_ATTR", "LOAD_METHOD"):
                value = getattr(value, arg, None) \
                    if isinstance(value, (types.ModuleType, type)) else None
                resolve(value, where)
                if arg in ("backward", "grad_fn", "register_hook", "retain_grad",
                           "_execution_engine") and not (
                        before is not None and before.argval == "self"):
                    findings.add(f".{arg}")
                if arg == "requires_grad_" and not (
                        after is not None and after.opname == "LOAD_CONST"
                        and after.argval in (False, 0)):
                    findings.add(".requires_grad_()")
            elif op == "KW_NAMES":
                keywords = code.co_consts[step.arg]
                if keywords and keywords[-1] == "requires_grad" and before is not None \
                        and before.opname == "LOAD_CONST" and before.argval not in (False, 0):
                    findings.add("requires_grad=True")
            else:
                value = None
    return names, findings


def _q1_rule(scope):
    '''What in Adaline1 (and the notebook code it reaches) breaks q1's method rule.'''
    allowed = ("torch.autograd.grad_mode.no_grad", "torch.autograd.grad_mode.inference_mode")
    denied = ("torch.autograd", "torch.func", "torch._", "functorch", "torch.nn.parameter",
              "posix", "os", "nt", "subprocess", "multiprocessing", "importlib", "ctypes",
              "builtins.exec", "builtins.eval", "builtins.compile", "builtins.__import__")
    names, findings = _reached(scope["Adaline1"], scope)
    for name in sorted(names):
        if name not in allowed and any(name == d or name.startswith(d + ".")
                                       or d.endswith("_") and name.startswith(d)
                                       for d in denied):
            findings.add(name)
    return sorted(findings)
"""

CHECKS = {
    "shapes": r"""
def _q1_shapes():
    import torch
    x = torch.tensor(X5)
    result = Adaline1(3).backward(x, Adaline1(3).forward(x), torch.tensor(Y5, dtype=torch.float))
    assert isinstance(result, (tuple, list)) and len(result) == 2, (
        f"backward should return a pair (negative_grad_w, negative_grad_b), got {result!r}")
    grad_w, grad_b = result
    assert isinstance(grad_w, torch.Tensor) and isinstance(grad_b, torch.Tensor), (
        "both negative gradients should be tensors")
    assert tuple(grad_w.shape) == (3, 1), (
        f"for 5 samples with 3 features negative_grad_w should have shape (3, 1), like "
        f"model.weight, got {tuple(grad_w.shape)}")
    assert grad_b.numel() == 1 and grad_b.dim() <= 1, (
        f"negative_grad_b should be one number, shape (1,) like model.bias (or ()), got "
        f"{tuple(grad_b.shape)}")
    assert grad_w.is_floating_point() and grad_b.is_floating_point(), (
        f"the negative gradients should be float tensors, got {grad_w.dtype} and {grad_b.dtype}")
""",
    "values": r"""
def _q1_values():
    import torch
    # A model that is not at its start, so yhat = forward(x) is not zero. By the formula of
    # Part 1 (n = 5 samples, m = 3 features): -dL/dw = [[0.59], [0.92], [-1.04]], -dL/db = 0.64.
    model = Adaline1(3)
    model.weight = torch.tensor([[0.2], [-0.1], [0.3]])
    model.bias = torch.tensor([0.1])
    x = torch.tensor(X5)
    grad_w, grad_b = model.backward(x, model.forward(x), torch.tensor(Y5, dtype=torch.float))
    got = torch.cat([grad_w.detach().reshape(-1), grad_b.detach().reshape(-1)]).double()
    expected = torch.tensor([0.59, 0.92, -1.04, 0.64], dtype=torch.double)
    hints = {-1.0: "the sign is flipped: return the NEGATIVE gradient",
             2.5: "n/2 = 2.5 times too large: the factor 2/n of dL/dyhat = (2/n)(yhat - y) is missing",
             5.0: "n = 5 times too large: divide by n, the number of samples (the mean of the loss)",
             5 / 3: "n/m times too large: divide by n = x.size(0), the number of samples, not by "
                    "x.size(1), the number of features",
             0.5: "half as large: the derivative of the square brings a factor 2"}
    scale = float(got @ expected / (expected @ expected)) if got.numel() == 4 else 0.0
    hint = next((text for factor, text in hints.items()
                 if torch.allclose(got, factor * expected, rtol=1e-4, atol=1e-6)), "")
    assert got.numel() == 4 and torch.allclose(got, expected, rtol=1e-4, atol=1e-6), (
        f"for x = X5, yhat = forward(x) with weight [[0.2], [-0.1], [0.3]] and bias [0.1], "
        f"y = Y5: negative gradients (weight, then bias) should be {expected.tolist()}, got "
        f"{[round(v, 5) for v in got.tolist()]}" + (f"\nHint: {hint}" if hint else ""))
""",
    "runs": r"""
def _q1_runs():
    import torch

    def lecture_loop(model, x, y, num_epochs, learning_rate, seed, minibatch_size):
        # The given train_manual (the grader's own copy, as in the hidden checks).
        cost = []
        torch.manual_seed(seed)
        for epoch in range(num_epochs):
            shuffle_idx = torch.randperm(y.size(0), dtype=torch.long)
            for minibatch_idx in torch.split(shuffle_idx, minibatch_size):
                yhat = model.forward(x[minibatch_idx])
                negative_grad_w, negative_grad_b = model.backward(x[minibatch_idx], yhat,
                                                                  y[minibatch_idx])
                model.weight += learning_rate * negative_grad_w
                model.bias += learning_rate * negative_grad_b
            with torch.no_grad():
                cost.append(torch.mean((model.forward(x) - y) ** 2))
        return cost

    _compare_runs(lecture_loop, lambda: Adaline1(3), "the lecture's training loop with your Adaline1")
""",
    "method": r"""
def _q1_method():
    found = _q1_rule(globals())
    assert not found, (
        "q1's method rule: Adaline1.backward, and every function of yours it calls, computes "
        "with tensor arithmetic only; found " + ", ".join(found) + " (breaking the rule costs part "
        "of q1's points, see the notebook)")
""",
}


def _hint_lines(text: str) -> list[str]:
    """``text`` as lines of at most 90 characters, each paragraph wrapped on its own."""
    import textwrap
    return [line for paragraph in str(text).strip().splitlines()
            for line in textwrap.wrap(paragraph, 90, subsequent_indent="  ") or [""]]


def _run(name: str, namespace: dict) -> None:
    """Run check ``name`` of CHECKS on the notebook's namespace (a copy of it, with SHARED's
    helpers added); print nothing when it passes, else a few lines: what failed and the hint.
    The student's own printing while the check runs is not shown."""
    import contextlib, io, traceback
    source, where = CHECKS[name], f"<public check {QUESTION}"
    scope = dict(namespace)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(SHARED, where + ">", "exec"), scope)
            exec(compile(source, f"{where} {name}>", "exec"), scope)
            scope[re.match(r"def (\w+)", source.strip()).group(1)]()
    except Exception as error:  # noqa: BLE001 - a failed check, or the student's code raised
        frames = traceback.extract_tb(error.__traceback__)
        if isinstance(error, AssertionError) and frames[-1].filename.startswith(where):
            text = str(error)
        else:
            mine = [f for f in frames
                    if "ipykernel" in f.filename or f.filename.startswith("<cell")]
            place = f" (in {mine[-1].name}, line {mine[-1].lineno} of its cell)" if mine else ""
            message = (str(error).strip().splitlines() or [""])[0]
            text = f"your code raised {type(error).__name__}: {message}{place}"
        print("\n".join(_hint_lines(text)))


_module = types.ModuleType(f"_adaline_public_{QUESTION}")
_module.run = _run
sys.modules[_module.__name__] = _module

test = {
    "name": "q1",
    "points": None,
    "suites": [
        {
            "cases": [
                {
                    "name": "q1 - backward returns a pair of gradients with the weight's and bias' shapes",
                    "code": '>>> __import__("_adaline_public_q1").run("shapes", globals())\n',
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": 'q1 - negative gradients on 5 samples with 3 features, yhat = forward(x)',
                    "code": '>>> __import__("_adaline_public_q1").run("values", globals())\n',
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": 'q1 - train_manual with your backward, two runs with different settings',
                    "code": '>>> __import__("_adaline_public_q1").run("runs", globals())\n',
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": 'q1 - method rule: backward uses tensor arithmetic only',
                    "code": '>>> __import__("_adaline_public_q1").run("method", globals())\n',
                    "hidden": False,
                    "locked": False,
                },
            ],
            "scored": True,
            "setup": "",
            "teardown": "",
            "type": "doctest",
        }
    ],
}

"""Public checks of q3 (otter's OK format), run by ``grader.check("q3")``.

Each test case is one short doctest line that runs one check of CHECKS in the notebook's
namespace, as a doctest would. A passing check prints nothing; a failing one prints a few lines,
what failed and the hint (no traceback and no test code), and fails the doctest, which expects
no output.
"""

import re
import sys
import types

OK_FORMAT = True
QUESTION = "q3"

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
            f"expected {expected}.\nHint: use every argument (learning_rate, seed, minibatch_size, "
            "num_epochs); call torch.manual_seed(seed) once before the epochs; shuffle with "
            "torch.randperm and cut with torch.split as train_manual does; reset gradients "
            "every step; log the loss on all of (x, y) after each epoch.")
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
"""

CHECKS = {
    "structure": r"""
def _q3_structure():
    import torch
    model = Adaline3(3)
    assert isinstance(model, torch.nn.Module), "Adaline3 should subclass torch.nn.Module"
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(layers) == 1, (
        f"Adaline3 should hold exactly one torch.nn.Linear layer, found {len(layers)} "
        "(assign it to an attribute such as self.linear so that it is registered)")
    shape = (layers[0].in_features, layers[0].out_features)
    assert shape == (3, 1), f"Adaline3(3) should use nn.Linear(3, 1), got nn.Linear{shape}"
    assert all(float(p.detach().abs().sum()) == 0.0 for p in model.parameters()), (
        "the weight and the bias should start at zero (use .detach().zero_() on each)")
    out = model(torch.tensor(X5))
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (5,), (
        f"forward on 5 samples should return shape (5,), got {tuple(getattr(out, 'shape', ()))} "
        "(nn.Linear gives (n, 1); .view(-1) makes it (n,))")
""",
    "runs": r"""
def _q3_runs():
    _compare_runs(train_nn, lambda: Adaline3(3), "train_nn")
""",
    "method": r"""
def _q3_method():
    import torch
    from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                       register_optimizer_step_pre_hook)
    model_names, _ = _reached(Adaline3, globals())
    model = Adaline3(3)
    params = list(model.parameters())
    # What the optimizer steps did to the model's parameters while train_nn ran (RUNS[0]):
    # "last" is how the parameters looked when the last step over them ended.
    seen = {"last": [p.detach().clone() for p in params], "exact": 0, "outside": 0,
            "kinds": set(), "before": None}

    def changed():
        return any(not torch.equal(p.detach(), old) for p, old in zip(params, seen["last"]))

    def pre(optimizer, args, kwargs):
        groups = [g for g in optimizer.param_groups
                  if any(p is q for p in g["params"] for q in params)]
        seen["before"] = None
        if groups:
            seen["outside"] += changed()
            seen["kinds"].add(type(optimizer).__name__)
            rate = {id(p): float(g.get("lr", 0.0)) for g in groups for p in g["params"]}
            seen["before"] = [(p.detach().clone(), None if p.grad is None else
                               p.grad.detach().clone(), rate.get(id(p), 0.0)) for p in params]

    def post(optimizer, args, kwargs):
        before, seen["before"] = seen["before"], None
        if before is None:
            return
        moved = any(not torch.equal(p.detach(), old) for p, (old, _, _) in zip(params, before))
        exact = all(g is not None and torch.allclose(
            p.detach() - old, -rate * g, rtol=1e-4, atol=1e-6 * (1.0 + float(old.abs().max())))
            for p, (old, g, rate) in zip(params, before))
        seen["exact"] += moved and exact
        seen["last"] = [p.detach().clone() for p in params]

    handles = [register_optimizer_step_pre_hook(pre), register_optimizer_step_post_hook(post)]
    try:
        train_nn(model, torch.tensor(X5), torch.tensor(Y5, dtype=torch.int), **RUNS[0][0])
    finally:
        for handle in handles:
            handle.remove()
    seen["outside"] += changed()
    problems = []
    if "torch.nn.modules.linear.Linear" not in model_names:
        problems.append("Adaline3 does not use torch.nn.Linear")
    others = sorted(seen["kinds"] - {"SGD"})
    if others:
        problems.append("train_nn steps a torch.optim." + ", ".join(others))
    elif not seen["exact"]:
        problems.append("no optimizer.step() of an SGD over model.parameters() moved the "
                        "parameters by -lr x grad")
    if seen["outside"]:
        problems.append("the parameters changed outside optimizer.step() (between steps "
                        "or after the last one)")
    assert not problems, (
        "q3's method rule: " + "; ".join(problems) + ".\nHint: let the step() of a "
        "torch.optim.SGD over the model's parameters, with the learning_rate argument as its "
        "lr, make every update (no update by hand); breaking the rule costs part of q3's "
        "points, see the notebook.")
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
    "name": "q3",
    "points": None,
    "suites": [
        {
            "cases": [
                {
                    "name": 'q3 - Adaline3 is an nn.Module with one zeroed nn.Linear(3, 1), output (n,)',
                    "code": '>>> __import__("_adaline_public_q3").run("structure", globals())\n',
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": 'q3 - train_nn, two runs with different settings',
                    "code": '>>> __import__("_adaline_public_q3").run("runs", globals())\n',
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": 'q3 - method rule: nn.Linear and optim.SGD',
                    "code": '>>> __import__("_adaline_public_q3").run("method", globals())\n',
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

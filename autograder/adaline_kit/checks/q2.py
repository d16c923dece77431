"""q2: ``train_autograd(model, x, y, num_epochs, learning_rate, seed, minibatch_size)`` with
``torch.autograd.grad``, run on the lecture's Adaline2.

Checks (weights): lecture_curve 2, lecture_accuracy 1, final_weights 1, other_data 2,
method_autograd_grad (0, voids the question when it fails).
"""

from __future__ import annotations

from ..outcomes import CheckResult
from . import common, diagnoses, runs, source_rules
from .common import Evidence, Outcome, verdict


def _weights_check(outcome: Outcome, spec: common.RunSpec) -> CheckResult:
    name, weight = "final_weights", 1.0
    if outcome.failure:
        return common.failed_check(name, weight, outcome)
    _, w, b = spec.reference()
    problems = [common.compare_values(f"the final {key}", outcome.data.get(key), value)
                for key, value in (("weight", w), ("bias", b))]
    problems = [p for p in problems if p]
    if not problems:
        return verdict(name, True, weight, "After training on the lecture's data, the weight "
                                           "and bias match the reference.")
    costs = [float(c) for c in outcome.data["costs"]]
    return verdict(name, False, weight, "After training on the lecture's data, "
                   + "; ".join(problems) + ".", runs.curve_evidence(costs, spec),
                   diagnoses.TRAINING_LOOP)


def _method_check(outcomes: list[Outcome], index: source_rules.SourceIndex) -> CheckResult:
    name = "method_autograd_grad"
    grads = common.spy_total(outcomes, "autograd_grad")
    backwards = common.spy_total(outcomes, "backward")
    found = source_rules.usage(index, "train_autograd")
    problems = []
    source_backward = found.found and source_rules.calls_backward(found)
    if not found.found:
        problems.append("could not find `def train_autograd` in your notebook's code")
    elif not source_rules.calls_autograd_grad(found):
        problems.append("train_autograd does not call torch.autograd.grad")
    if source_backward:
        problems.append("train_autograd calls .backward()")
    if backwards:
        problems.append(f".backward() ran {backwards} times during training")
    if grads == 0:
        problems.append("torch.autograd.grad never ran during training")
    if not problems:
        return verdict(name, True, 0.0, "train_autograd computes the gradients with "
                                        "torch.autograd.grad.", method_violation=True)
    evidence = Evidence(backward_used=bool(source_backward or backwards))
    return verdict(name, False, 0.0, "; ".join(problems) + ". This question asks for "
                   "torch.autograd.grad, so it scores 0.", evidence,
                   ("uses_backward_not_grad",), method_violation=True)


def grade(ctx: common.QuestionContext, setup) -> tuple[list[CheckResult], dict | None]:
    lecture, other = setup.lecture, setup.other["q2"]
    run = ctx.call("q2_train", lecture.probe_args(),
                   "training Adaline2 with your train_autograd on the lecture's data")
    run_other = ctx.call("q2_train", other.probe_args(),
                         "training Adaline2 with your train_autograd on other data")
    curve, matched = runs.curve_check("lecture_curve", 2.0, run, lecture,
                                        diagnoses.TRAINING_LOOP,
                                        published=True)
    checks = [
        curve,
        runs.accuracy_check("lecture_accuracy", 1.0, run, lecture),
        _weights_check(run, lecture),
        runs.other_run_check("other_data", 2.0, run_other, other, matched),
        _method_check([run, run_other], setup.index),
    ]
    return checks, runs.curve_payload(run, lecture)

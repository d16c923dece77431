"""q2: ``train_autograd(model, x, y, num_epochs, learning_rate, seed, minibatch_size)`` with
``torch.autograd.grad``, run on the lecture's Adaline2.

Checks (default weights, see ``grading.toml``): lecture_curve 2, lecture_accuracy 1,
final_weights 1, other_data 2; method_autograd_grad (weight 0: breaking it costs the
``[method_rules]`` fraction). The rule is judged on behaviour: a third run on the other data
scales every result of torch.autograd.grad, and a loop that uses them must then train
differently.
"""

from __future__ import annotations

from adaline_kit.outcomes import CheckResult
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


# While the marked run trains, every result of torch.autograd.grad is multiplied by this: a
# loop whose updates use grad()'s result takes different steps, one that ignores it does not.
GRAD_MARK = 0.5


def _ignores_grad(run_other: Outcome, marked: Outcome) -> bool:
    """The marked run took exactly the steps of the unmarked one (grad()'s result unused),
    while the parameters did change (a loop that never updates is the curve checks' matter)."""
    if run_other.failure or marked.failure or not marked.data.get("grad_scaled"):
        return False
    plain = [float(c) for c in run_other.data["costs"]]
    scaled = [float(c) for c in marked.data["costs"]]
    if len(plain) < 2 or len(plain) != len(scaled) or max(plain) - min(plain) <= 1e-7 * abs(
            plain[0]):
        return False
    return all(abs(a - b) <= 1e-7 * max(abs(a), 1e-12) for a, b in zip(plain, scaled))


def _method_check(outcomes: list[Outcome], index: source_rules.SourceIndex,
                  run_other: Outcome, marked: Outcome) -> CheckResult:
    """The rule: the updates use what torch.autograd.grad returned; no .backward()."""
    name = "method_autograd_grad"
    grads = common.spy_total(outcomes, "autograd_grad")
    backwards = common.spy_total(outcomes, "backward")
    found = source_rules.usage(index, "train_autograd")
    problems = []
    source_backward = found.found and source_rules.calls_backward(found)
    if not found.found:
        problems.append("could not find `def train_autograd` in your notebook's code")
    elif grads is None and not source_rules.calls_autograd_grad(found):
        problems.append("train_autograd does not call torch.autograd.grad")
    if source_backward:
        problems.append("train_autograd calls .backward()")
    if backwards:
        problems.append(f".backward() ran {backwards} times during training")
    if grads == 0:
        problems.append("torch.autograd.grad never ran during training")
    ignored = _ignores_grad(run_other, marked)
    if ignored:
        problems.append(f"the updates do not use what torch.autograd.grad returned (with "
                        f"grad()'s results scaled by {GRAD_MARK:g}, training took exactly the "
                        "same steps)")
    if not problems:
        return verdict(name, True, 0.0, "train_autograd updates the parameters with the "
                                        "gradients torch.autograd.grad returns.",
                       method_violation=True)
    evidence = Evidence(backward_used=bool(source_backward or backwards), grad_unused=ignored)
    return verdict(name, False, 0.0, "; ".join(problems) + ". q2's rule: the update uses the "
                   "gradients from torch.autograd.grad (no .backward()).", evidence,
                   ("uses_backward_not_grad", "grad_result_unused"), method_violation=True)


def grade(ctx: common.QuestionContext, setup) -> tuple[list[CheckResult], dict | None]:
    lecture, other = setup.lecture, setup.other["q2"]
    run = ctx.call("q2_train", lecture.probe_args(),
                   "training Adaline2 with your train_autograd on the lecture's data")
    run_other = ctx.call("q2_train", other.probe_args(),
                         "training Adaline2 with your train_autograd on other data")
    marked = ctx.call("q2_train", dict(other.probe_args(), grad_scale=GRAD_MARK),
                      "training Adaline2 with your train_autograd on other data, with "
                      "grad()'s results scaled")
    loop = runs.loop_evidence(setup.index, "train_autograd")
    curve, matched = runs.curve_check("lecture_curve", 2.0, run, lecture,
                                      diagnoses.TRAINING_LOOP, published=True, extra=loop)
    checks = [
        curve,
        runs.accuracy_check("lecture_accuracy", 1.0, run, lecture),
        _weights_check(run, lecture),
        runs.other_run_check("other_data", 2.0, run_other, other, matched, extra=loop),
        _method_check([run, run_other], setup.index, run_other, marked),
    ]
    return checks, runs.curve_payload(run, lecture)

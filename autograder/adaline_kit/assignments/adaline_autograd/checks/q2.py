"""q2: ``train_autograd(model, x, y, num_epochs, learning_rate, seed, minibatch_size)`` with
``torch.autograd.grad``, run on the lecture's Adaline2.

Checks (default weights, see ``grading.toml``): lecture_curve 2, lecture_accuracy 1,
final_weights 1, other_data 2; method_autograd_grad (weight 0: breaking it costs the
``[method_rules]`` fraction). The rule is judged on behaviour: a third run, on data of its own
and at a place among q2's runs drawn at grading time, scales every result of
torch.autograd.grad by a drawn factor s, and a loop that uses them must then train like the
float64 reference with learning rate lr * s (see :func:`follows_grad`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

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


# The marked run: while it trains, every result of torch.autograd.grad is multiplied by a scale
# drawn at grading time from this range. It is a run like the others: its own data, seed,
# learning rate and minibatch size, drawn as the other-data run's are, and the order of q2's
# runs is drawn too, so neither a repeated input nor the call order tells the student's code
# which run is marked.
GRAD_MARK_RANGE = (0.3, 0.7)
RUNS = ("lecture", "other", "marked")


@dataclasses.dataclass(frozen=True, eq=False)
class MarkingSpec:
    """q2's marked run (``spec``, grad()'s results times ``scale``) and the order of q2's
    probe runs (a permutation of :data:`RUNS`)."""

    spec: common.RunSpec
    scale: float
    order: tuple[str, ...]


def marking_spec(rng: np.random.Generator, other: common.RunSpec) -> MarkingSpec:
    """The marked run's data and settings (drawn like ``other``'s, with another seed), its
    scale and the order of the runs."""
    spec = common.other_spec(rng, avoid_seeds=(other.seed,))
    scale = float(rng.uniform(*GRAD_MARK_RANGE))
    order = tuple(RUNS[i] for i in rng.permutation(len(RUNS)))
    return MarkingSpec(spec, scale, order)


def follows_grad(marked: Outcome, marking: MarkingSpec, other_matched: bool) -> bool | None:
    """Whether the marked run's updates followed grad()'s results, judged against the
    independent float64 reference. With plain SGD, scaling every gradient by s is training with
    learning rate lr * s, so a loop whose updates use grad()'s results matches the reference
    trained with lr * s (True), and one that ignores them matches the one trained with lr
    (False). A run that matches neither:

    - if the same loop reproduced the reference on the unmarked other-data run, it trains
      correctly without the mark, yet not as grad()'s results say with it: its updates do not
      (all) follow them (say grad()'s weight gradient with a hand-made bias step): False;
    - else the loop is wrong anyway and the curve checks already charge it; nothing here tells
      whether it used grad(), so the method rule is not charged from this evidence: None.

    None also when the run failed or was not marked (no run-time spy, as in the public checks).
    """
    if marked.failure or not marked.data.get("grad_scaled"):
        return None
    spec = marking.spec
    costs = [float(c) for c in marked.data["costs"]]
    scaled = runs.curves_match(costs, spec.reference(
        learning_rate=spec.learning_rate * marking.scale)[0])
    plain = runs.curves_match(costs, spec.reference()[0])
    if scaled != plain:
        return scaled
    if scaled:  # both references alike: no evidence either way
        return None
    return False if other_matched else None


def _method_check(outcomes: list[Outcome], index: source_rules.SourceIndex,
                  marked: Outcome, marking: MarkingSpec, other_matched: bool) -> CheckResult:
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
    ignored = follows_grad(marked, marking, other_matched) is False
    if ignored:
        problems.append("the updates did not follow what torch.autograd.grad returned (in one "
                        f"run grad()'s results were scaled by {marking.scale:.3g}; a loop "
                        f"whose updates use them then trains like one with learning rate "
                        f"{marking.spec.learning_rate:g} x {marking.scale:.3g}, yours did not)")
    if not problems:
        return verdict(name, True, 0.0, "train_autograd updates the parameters with the "
                                        "gradients torch.autograd.grad returns.",
                       method_violation=True)
    evidence = Evidence(backward_used=bool(source_backward or backwards), grad_unused=ignored)
    return verdict(name, False, 0.0, "; ".join(problems) + ". q2's rule: the update uses the "
                   "gradients from torch.autograd.grad (no .backward()).", evidence,
                   ("uses_backward_not_grad", "grad_result_unused"), method_violation=True)


def grade(ctx: common.QuestionContext, setup) -> tuple[list[CheckResult], dict | None]:
    lecture, other, marking = setup.lecture, setup.other["q2"], setup.marking
    calls = {
        "lecture": (lecture.probe_args(),
                    "training Adaline2 with your train_autograd on the lecture's data"),
        "other": (other.probe_args(),
                  "training Adaline2 with your train_autograd on other data"),
        "marked": (dict(marking.spec.probe_args(), grad_scale=marking.scale),
                   "training Adaline2 with your train_autograd on other data, with grad()'s "
                   "results scaled"),
    }
    done = {key: ctx.call("q2_train", *calls[key]) for key in marking.order}
    run, run_other, marked = done["lecture"], done["other"], done["marked"]
    loop = runs.loop_evidence(setup.index, "train_autograd")
    curve, matched = runs.curve_check("lecture_curve", 2.0, run, lecture,
                                      diagnoses.TRAINING_LOOP, published=True, extra=loop)
    other_check = runs.other_run_check("other_data", 2.0, run_other, other, matched, extra=loop)
    checks = [
        curve,
        runs.accuracy_check("lecture_accuracy", 1.0, run, lecture),
        _weights_check(run, lecture),
        other_check,
        _method_check([run, run_other, marked], setup.index, marked, marking,
                      other_check.passed),
    ]
    return checks, runs.curve_payload(run, lecture)

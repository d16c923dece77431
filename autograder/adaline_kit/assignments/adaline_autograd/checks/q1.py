"""q1: ``Adaline1.backward(x, yhat, y)`` -> (negative_grad_w (m, 1), negative_grad_b (1,)).

Checks (default weights, see ``grading.toml``): gradient_shapes 1, gradient_values 2,
lecture_curve 2, lecture_accuracy 1, other_data 2; method_no_autograd (weight 0: breaking it
costs the ``[method_rules]`` fraction of the question's points).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import reference
from adaline_kit.outcomes import CheckResult
from . import common, runs, source_rules
from .common import Evidence, Outcome, verdict

# float32 rounding of 2/n X^T (yhat - y) with n <= 13 terms is below ~1e-6 of the largest
# entry; 1e-4 leaves 100x margin for float32 internals, while every classic value mistake
# (factor n, sign, factor 2, ignoring yhat) is off by 50 % or more. Shape mistakes are the
# shape check's business (a transposed weight gradient holds the right values).
GRADIENT_RTOL = 1e-4


@dataclasses.dataclass(frozen=True)
class BackwardSpec:
    """Fresh random inputs for ``backward``: x (n, m), the model's weight (m, 1) and bias (1,),
    y (n,) of 0/1 floats. ``yhat`` (n,) is forward(x) = x w + b, which the probe passes."""

    x: list
    weight: list
    bias: list
    y: list

    @property
    def yhat(self) -> list:
        return forward(self.x, self.weight, self.bias).tolist()

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def m(self) -> int:
        return len(self.x[0])


# A gradient entry is a sum of n terms. When the terms nearly cancel, float32 rounding (about
# n * 6e-8 of the sum of |terms|) is no longer small next to the result: a correct bias
# gradient of -8e-5 from terms of size 0.5 was once 1e-4 off. Draws are therefore kept only
# where every gradient's size is at least CANCELLATION_FLOOR of its sum of |terms|; then a
# correct float32 answer is within ~1e-5 relative, and a sign flip is still 200 % off.
CANCELLATION_FLOOR = 0.1


def forward(x, weight, bias) -> np.ndarray:
    """The model's outputs x w + b, shape (n,), as float32 computes them."""
    x = np.asarray(x, np.float32)
    return (x @ np.asarray(weight, np.float32).reshape(-1, 1)).reshape(-1) \
        + np.float32(np.asarray(bias, np.float32).reshape(-1)[0])


def backward_spec(rng: np.random.Generator) -> BackwardSpec:
    """Shapes unlike the lecture's (m = 2, minibatch 10): m in 3..5, n odd in 7..13, and a
    model that is not at its zero start (random weight and bias, so yhat = forward(x) varies).

    Redraws (same ``rng``) until the gradients are well conditioned (see CANCELLATION_FLOOR).
    """
    while True:
        m = int(rng.integers(3, 6))
        n = int(rng.choice([7, 9, 11, 13]))
        x = rng.normal(size=(n, m)).astype(np.float32)
        weight = rng.normal(0.0, 0.6 / np.sqrt(m), size=(m, 1)).astype(np.float32)
        bias = rng.normal(0.5, 0.2, size=1).astype(np.float32)
        y = rng.permutation(np.arange(n) % 2).astype(np.float32)
        if cancellation(x, forward(x, weight, bias), y) >= CANCELLATION_FLOOR:
            return BackwardSpec(x.tolist(), weight.tolist(), bias.tolist(), y.tolist())


def cancellation(x, yhat, y) -> float:
    """min over {weight, bias} of max|gradient| / max(sum of |terms|): 1 = no cancellation.

    x (n, m), yhat (n,), y (n,); the terms of the gradients are x[i, j] * e[i] and e[i].
    """
    x, e = np.asarray(x, np.float64), np.asarray(yhat, np.float64) - np.asarray(y, np.float64)
    ratios = (np.abs(x.T @ e).max() / max(float((np.abs(x).T @ np.abs(e)).max()), 1e-300),
              abs(e.sum()) / max(float(np.abs(e).sum()), 1e-300))
    return float(min(ratios))


def _shapes_check(outcome: Outcome, spec: BackwardSpec) -> CheckResult:
    name, weight = "gradient_shapes", 1.0
    if outcome.failure:
        return common.failed_check(name, weight, outcome)
    w_shape = outcome.data["grad_w"]["shape"]
    b_shape = outcome.data["grad_b"]["shape"]
    b_size = int(np.prod(b_shape)) if b_shape else 1
    problems = []
    if w_shape != [spec.m, 1]:
        problems.append(f"negative_grad_w has shape {common.shape_text(w_shape)}, expected "
                        f"({spec.m}, 1) (the shape of the weights)")
    # The lecture's own solution returns a 0-dim bias gradient; both update a (1,) bias.
    if b_shape not in ([1], []):
        problems.append(f"negative_grad_b has shape {common.shape_text(b_shape)}, expected (1,)")
    forward_shape = outcome.data.get("forward_shape")
    if forward_shape is not None and forward_shape != [spec.n]:
        problems.append(f"forward(x) returns shape {common.shape_text(forward_shape)}, "
                        f"expected ({spec.n},)")
    evidence = Evidence(m=spec.m, n=spec.n, grad_w_shape=w_shape, grad_b_shape=b_shape,
                        grad_b_size=b_size)
    message = "; ".join(problems) if problems else (
        f"For x of shape ({spec.n}, {spec.m}) the gradients have shapes ({spec.m}, 1) and "
        f"{common.shape_text(b_shape)}.")
    return verdict(name, not problems, weight, message, evidence,
                   ("weight_transposed", "bias_not_reduced"))


def _scale(got: np.ndarray, expected: np.ndarray, spec: BackwardSpec) -> tuple[float, float]:
    """Least-squares scale s (got ~ s * expected) and the cosine of the two vectors.

    Two one-element vectors always have cosine +-1, which says nothing; for them the cosine is
    reported only when the scale is a recognised one (+-1, +-0.5, +-n, +-n/2, +-n/m), else nan.
    """
    norm = float(expected @ expected)
    if norm == 0 or got.size != expected.size:
        return float("nan"), float("nan")
    scale = float(got @ expected) / norm
    cosine = scale * np.sqrt(norm) / max(float(np.linalg.norm(got)), 1e-300)
    known = (1.0, 0.5, spec.n, spec.n / 2, spec.n / spec.m)
    if got.size == 1 and not any(abs(abs(scale) - k) <= 0.02 * k for k in known):
        cosine = float("nan")
    return scale, float(cosine)


def _values_check(outcome: Outcome, spec: BackwardSpec) -> CheckResult:
    name, weight = "gradient_values", 2.0
    if outcome.failure:
        return common.failed_check(name, weight, outcome)
    expected_w, expected_b = reference.negative_gradients(spec.x, spec.yhat, spec.y)
    got_w = common.values_of(outcome.data["grad_w"])
    got_b = common.values_of(outcome.data["grad_b"])
    scales, problems = [], []
    for part, got, expected in (("weight", got_w, expected_w.reshape(-1)),
                                ("bias", got_b, expected_b)):
        if got.size != expected.size:
            problems.append(f"the {part} gradient has {got.size} elements, expected "
                            f"{expected.size}")
            continue
        error = reference.relative_error(got, expected)
        if not np.all(np.isfinite(got)) or error > GRADIENT_RTOL:
            problems.append(f"the {part} gradient differs from the expected one: yours "
                            f"{common.short(got)}, expected {common.short(expected)} "
                            f"(relative error {error:.2g})")
            scales.append((part, *_scale(got, expected, spec)))
    if len(scales) == 2 and got_w.size == expected_w.size:
        both = _scale(np.concatenate([got_w, got_b]),
                      np.concatenate([expected_w.reshape(-1), expected_b]), spec)
        scales.insert(0, ("weight and bias", *both))
    head = (f"On random inputs (x of shape ({spec.n}, {spec.m}), yhat = forward(x) of a model "
            "with random weights): ")
    if not problems:
        return verdict(name, True, weight, head + "both negative gradients match the closed "
                                                  "form of the MSE gradient.")
    evidence = Evidence(scales=scales, n=spec.n, m=spec.m, grad_b_size=got_b.size,
                        grad_w_shape=outcome.data["grad_w"]["shape"],
                        half_n=spec.n / 2, n_over_m=spec.n / spec.m)
    return verdict(name, False, weight, head + "; ".join(problems), evidence,
                   ("sum_not_mean", "missing_two_over_n", "wrong_n", "sign_flipped",
                    "missing_factor_2", "bias_not_reduced", "weight_transposed"))


def _method_check(outcomes: list[Outcome], index: source_rules.SourceIndex) -> CheckResult:
    """The rule: Adaline1 and every function of the notebook it reaches use tensor arithmetic
    only (an allow-list, see source_rules.q1_rule_findings); autograd never runs."""
    name = "method_no_autograd"
    engine_runs = common.spy_total(outcomes, "engine_runs")
    findings = source_rules.q1_rule_findings(index)
    problems = []
    if findings is None:
        problems.append("could not find `class Adaline1` in your notebook's code")
    elif findings:
        problems.append("Adaline1 (or code it calls) uses " + ", ".join(findings))
    if engine_runs:
        problems.append(f"PyTorch's autograd engine ran {engine_runs} times while your "
                        "Adaline1 was trained")
    if not problems:
        return verdict(name, True, 0.0, "Adaline1 computes its gradients with tensor arithmetic "
                       "only.", method_violation=True)
    detail = ", ".join(findings or []) or ("autograd ran during training" if engine_runs else "")
    evidence = Evidence(autograd_detail=detail)
    return verdict(name, False, 0.0, "; ".join(problems) + ". q1's rule: backward computes the "
                   "gradients by hand, with tensor arithmetic only (no autograd, torch.func, "
                   "torch._C, nn.Parameter or requires_grad, no processes, no code built at run "
                   "time).", evidence, ("uses_autograd",), method_violation=True)


def grade(ctx: common.QuestionContext, setup) -> tuple[list[CheckResult], dict | None]:
    """All q1 checks; ``setup`` carries the specs drawn up front (see checks.__init__)."""
    lecture, other, bspec = setup.lecture, setup.other["q1"], setup.backward
    backward = ctx.call("q1_backward", {"num_features": bspec.m, "x": bspec.x,
                                        "weight": bspec.weight, "bias": bspec.bias,
                                        "y": bspec.y},
                        "calling Adaline1(m).backward(x, yhat, y) on random inputs")
    run = ctx.call("q1_train", lecture.probe_args(),
                   "training Adaline1 with the lecture's loop on the lecture's data")
    run_other = ctx.call("q1_train", other.probe_args(),
                         "training Adaline1 with the lecture's loop on other data")
    curve_candidates = ("ascending", "params_never_change")
    curve, matched = runs.curve_check("lecture_curve", 2.0, run, lecture, curve_candidates,
                                        published=True)
    checks = [
        _shapes_check(backward, bspec),
        _values_check(backward, bspec),
        curve,
        runs.accuracy_check("lecture_accuracy", 1.0, run, lecture),
        runs.other_run_check("other_data", 2.0, run_other, other, matched, curve_candidates),
        _method_check([backward, run, run_other], setup.index),
    ]
    return checks, runs.curve_payload(run, lecture)

"""Checks of training runs: per-epoch loss curves, accuracies, runs on other data.

Every run is compared with the float64 reference trained on the same data with the same
shuffles (``RunSpec.reference``); tolerances are those of :mod:`.common`.
"""

from __future__ import annotations

import math

import numpy as np

from .. import reference
from adaline_kit.outcomes import CheckResult
from . import diagnoses
from .common import (AMBIGUOUS_MARGIN, CURVE_ATOL, CURVE_RTOL, DEFAULTS, PUBLISHED_ATOL,
                     Evidence, Outcome, RunSpec, compare_values, failed_check,
                     published_costs, shape_text, values_of, verdict)


# --- curves -----------------------------------------------------------------------------------

def first_divergence(student, expected) -> int | None:
    """Index of the first epoch where the curves differ beyond tolerance (or lengths differ)."""
    for i, (a, b) in enumerate(zip(student, expected)):
        if not (math.isfinite(a) and abs(a - b) <= CURVE_ATOL + CURVE_RTOL * abs(b)):
            return i
    if len(student) != len(expected):
        return min(len(student), len(expected))
    return None


def curves_match(student, expected) -> bool:
    return first_divergence(student, expected) is None


def curve_table(student, expected, mark: int | None = None, limit: int = 25) -> str:
    lines = ["epoch       yours   reference"]
    for i in range(min(max(len(student), len(expected)), limit)):
        ours = f"{student[i]:11.6f}" if i < len(student) else "          -"
        ref = f"{expected[i]:11.6f}" if i < len(expected) else "          -"
        lines.append(f"{i + 1:5d} {ours} {ref}" + ("   <- first difference" if i == mark else ""))
    return "\n".join(lines)


def divergence_text(student, expected, index: int) -> str:
    if index >= len(student) or index >= len(expected):
        return (f"You returned {len(student)} losses for {len(expected)} epochs "
                "(one full-data loss per epoch, after the epoch's updates).")
    ours, ref = student[index], expected[index]
    relative = abs(ours - ref) / abs(ref) if ref else float("inf")
    return (f"Your losses leave the reference at epoch {index + 1}: yours {ours:.6f}, "
            f"reference {ref:.6f} (off by {ours - ref:+.3g}, {100 * relative:.3g} %).")


def curve_evidence(costs: list[float], spec: RunSpec, **extra) -> Evidence:
    """Shape of the curve plus lazily computed matches with the mistake variants."""
    finite = [c for c in costs if math.isfinite(c)]
    flat = len(costs) >= 2 and len(finite) == len(costs) \
        and max(finite) - min(finite) <= 1e-7 * max(abs(finite[0]), 1e-12)
    rising = sum(1 for a, b in zip(costs, costs[1:]) if b > a)
    ascending = len(costs) >= 2 and (not math.isfinite(costs[-1]) or (
        costs[-1] > costs[0] * (1 + 1e-4) and rising >= 0.7 * (len(costs) - 1)))

    expected = spec.reference()[0]
    count = min(len(costs), len(expected))
    extra.setdefault("count", len(costs))
    extra.setdefault("epochs", spec.num_epochs)
    extra["per_minibatch"] = len(costs) == spec.steps != spec.num_epochs
    extra["epochs_ignored"] = len(costs) != spec.num_epochs and count > 0 \
        and first_divergence(costs[:count], expected[:count]) is None

    def variant(**changes):
        return lambda: curves_match(costs, spec.reference(**changes)[0])

    lazy = {
        "matches_seed_each_epoch": variant(reseed_each_epoch=True),
        "matches_full_batch": variant(minibatch_size=max(spec.n, 1)),
        "matches_accumulate": variant(accumulate_gradients=True),
        "matches_last_minibatch": variant(last_minibatch_loss=True),
    }
    for key, default in DEFAULTS.items():
        if getattr(spec, key) != default:
            lazy[f"matches_{'lr' if key == 'learning_rate' else key}_default"] = \
                variant(**{key: default})
    lazy["looks_hardcoded"] = lambda: _looks_hardcoded(costs, spec)
    return Evidence(flat=flat, ascending=ascending, lazy=lazy, **extra)


def _looks_hardcoded(costs, spec: RunSpec) -> bool:
    """Losses on data other than the lecture's that repeat the published numbers."""
    if spec.is_lecture or not costs:
        return False
    return all(abs(a - b) <= 1e-4 for a, b in zip(costs, published_costs()))


def curve_check(name: str, weight: float, outcome: Outcome, spec: RunSpec, candidates,
                published: bool = False, extra: dict | None = None) -> tuple[CheckResult, bool]:
    """Per-epoch losses of ``outcome`` against the reference -> (check, matched); ``extra``:
    more evidence for the diagnoses (see :func:`loop_evidence`)."""
    if outcome.failure:
        return failed_check(name, weight, outcome, candidates), False
    costs = [float(c) for c in outcome.data["costs"]]
    expected = spec.reference()[0]
    index = first_divergence(costs, expected)
    passed = index is None
    off_published = None
    if published and passed:
        off_published = max(abs(a - b) for a, b in zip(costs, published_costs()))
        passed = off_published <= PUBLISHED_ATOL
    table = curve_table(costs, expected, index)
    if passed:
        worst = max((abs(a - b) / abs(b) for a, b in zip(costs, expected) if b), default=0.0)
        message = (f"Your losses match the reference in all {len(expected)} epochs on "
                   f"{spec.label} (largest relative difference {worst:.1g}).\n{table}")
        return verdict(name, True, weight, message), True
    if index is not None:
        message = divergence_text(costs, expected, index)
    else:
        message = (f"Your losses match the reference but differ from the reference solution's "
                   f"recorded losses by up to {off_published:.2g}.")
    message = f"On {spec.label} ({spec.describe()}): {message}\n{table}"
    evidence = curve_evidence(costs, spec, **run_evidence(outcome, extra))
    return verdict(name, False, weight, message, evidence, candidates), False


def loop_evidence(index, name: str) -> dict:
    """What the source of training function ``name`` (and the code it reaches) shows:
    ``dataloader`` (a torch DataLoader: iterating one draws from torch's global generator,
    shuffling or not, so the torch.randperm shuffles after it are not the lecture's) and
    ``seed_missing`` (torch.manual_seed is never called)."""
    from . import source_rules

    found = source_rules.usage(index, name)
    if not found.found:
        return {}
    return {"dataloader": any(q.endswith("DataLoader") for q, _ in found.calls),
            "seed_missing": not any(q.endswith("manual_seed") for q, _ in found.calls)}


def run_evidence(outcome: Outcome, extra: dict | None) -> dict:
    """``extra`` plus the optimizer settings a q3 run reported (``momentum``)."""
    evidence = dict(extra or {})
    sgd = (outcome.data or {}).get("sgd") if not outcome.failure else None
    if isinstance(sgd, dict) and float(sgd.get("momentum") or 0) > 0:
        evidence["momentum"] = float(sgd["momentum"])
    return evidence


# --- accuracy ---------------------------------------------------------------------------------

def accuracy_check(name: str, weight: float, outcome: Outcome, spec: RunSpec) -> CheckResult:
    """The accuracy of the returned net inputs (threshold 0.5, the given compute_accuracy's rule,
    computed here: the grader uses its own copy of given code) against the reference model's
    accuracy (92.86 % / 93.33 % with the lecture's settings)."""
    if outcome.failure:
        return failed_check(name, weight, outcome)
    _, w, b = spec.reference()
    lines, passed = [], True
    nets = outcome.data["net_inputs"]
    if len(nets) != len(spec.evaluate):
        return verdict(name, False, weight, "the model could not be evaluated on every split")
    for (label, x, y), encoded in zip(spec.evaluate, nets):
        net = values_of(encoded)
        expected_net = reference.net_inputs(x, w, b)
        expected = reference.accuracy(expected_net, y)
        if net.size != len(y):
            passed = False
            lines.append(f"{label}: the model's output has shape "
                         f"{shape_text(encoded.get('shape', []))}, expected ({len(y)},)")
            continue
        ours = reference.accuracy(net, y)
        flips = (net > 0.5) != (expected_net > 0.5)
        net_ok = ours == expected or bool(np.all(np.abs(expected_net[flips] - 0.5)
                                                 < AMBIGUOUS_MARGIN))
        passed = passed and net_ok
        lines.append(f"{label} accuracy of your trained model: {ours:.2f} %; expected "
                     f"{expected:.2f} %")
    return verdict(name, passed, weight, "\n".join(lines))


# --- other data ---------------------------------------------------------------------------------

def other_run_check(name: str, weight: float, outcome: Outcome, spec: RunSpec,
                    lecture_matched: bool, candidates=diagnoses.OTHER_RUN,
                    extra: dict | None = None) -> CheckResult:
    """Losses, final parameters and net inputs of a run on ``spec`` (not the lecture's data)."""
    if outcome.failure:
        return failed_check(name, weight, outcome, candidates)
    costs = [float(c) for c in outcome.data["costs"]]
    expected, w, b = spec.reference()
    problems = []
    index = first_divergence(costs, expected)
    if index is not None:
        problems.append(divergence_text(costs, expected, index) + "\n"
                        + curve_table(costs, expected, index))
    if "weight" in outcome.data:
        for label, key, value in (("the final weight", "weight", w), ("the final bias", "bias", b)):
            problem = compare_values(label, outcome.data.get(key), value)
            if problem:
                problems.append(problem)
    elif not problems:
        problems.append("the model has no nn.Linear layer whose parameters could be compared")
    if not problems:
        for (_, x, _), encoded in zip(spec.evaluate, outcome.data["net_inputs"]):
            problem = compare_values("the trained model's net inputs", encoded,
                                     reference.net_inputs(x, w, b))
            if problem:
                problems.append(problem)
    head = f"On other data ({spec.describe()}): "
    if not problems:
        return verdict(name, True, weight, head + "losses, final parameters and net inputs "
                                                  "match the reference.")
    evidence = curve_evidence(costs, spec, lecture_matches=lecture_matched,
                              **run_evidence(outcome, extra))
    return verdict(name, False, weight, head + "\n".join(problems), evidence, candidates)


def curve_payload(outcome: Outcome, spec: RunSpec) -> dict | None:
    """``{"student": [...], "reference": [...]}`` for the feedback plot; ``student`` is empty
    when the run failed."""
    student = [] if outcome.failure else [float(c) for c in outcome.data["costs"]]
    return {"student": student, "reference": spec.reference()[0]}

"""The diagnosis catalogue: likely misconceptions, recognised from a check's evidence.

Each entry is a key, a predicate over an evidence dict and the student-facing message (a
``str.format`` template over the same evidence). A check collects evidence, then asks
:func:`diagnose` for the first entry among its candidate keys whose predicate holds. Adding a
diagnosis is one ``Diagnosis(...)`` line here plus its key in a check's candidates.

Evidence keys used here (a check supplies those relevant to it; missing keys read as None):

``error``            message of a failed probe ("<ExcType>: <message>")
``scales``           [(part, scale, cosine)]: least-squares scale of the submitted gradient
                     against the true one, and their cosine, per part ("weight"/"bias")
``n``, ``m``         batch size and number of features of the probe
``grad_w_shape``, ``grad_b_shape``, ``forward_shape``   shapes received
``flat``, ``ascending``      shape of the submitted loss curve
``count``, ``epochs``, ``per_minibatch``, ``epochs_ignored``   number of losses returned
``matches_<variant>`` the submitted curve matches the reference trained with a variant:
                     ``seed_each_epoch``, ``full_batch``, ``accumulate``, ``last_minibatch``
                     (each epoch logs its last minibatch's loss), ``lr_default``,
                     ``seed_default``, ``minibatch_size_default``
``looks_hardcoded``  losses on other data repeat the lecture's published numbers
``lecture_matches``  the lecture-data curve matched
``nonzero_init``     Adaline3 starts from nonzero parameters
``optimizers``       optimizer class names that stepped; ``sgd_steps``, ``expected_steps``
``half_n``, ``n_over_m``  the scales of a gradient missing 2/n, or dividing by m instead of n
``autograd_detail``, ``backward_used``, ``grad_unused``, ``sgd_unused``/``sgd_detail``
                     method-rule findings
``momentum``, ``dataloader``, ``seed_missing``
                     training-loop evidence (optimizer settings, the source)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    key: str
    applies: Callable[[dict], bool]
    message: str
    # More values for the message, computed from the evidence when the diagnosis applies.
    details: Callable[[dict], dict] | None = None


def _near(value, target, tolerance) -> bool:
    return value is not None and abs(value - target) <= tolerance


def _scaled_parts(evidence, test) -> list[str]:
    """The parts ("weight and bias", "weight", "bias") of ``scales`` whose scale passes ``test``."""
    return [part for part, scale, cosine in evidence.get("scales") or []
            if test(scale, cosine, evidence)]


def _any_scale(evidence, test) -> bool:
    return bool(_scaled_parts(evidence, test))


def _which_gradient(test) -> Callable[[dict], dict]:
    """``{"gradient": "Your bias gradient is"}`` (or weight, or weight and bias ... are): the
    gradients that are off by the scale ``test`` recognises, named exactly."""
    def details(evidence) -> dict:
        parts = _scaled_parts(evidence, test)
        if "weight and bias" in parts or {"weight", "bias"} <= set(parts):
            return {"gradient": "Both your weight and your bias gradients are",
                    "has": "Both your weight and your bias gradients have"}
        part = parts[0] if parts else "weight"
        return {"gradient": f"Your {part} gradient is", "has": f"Your {part} gradient has"}
    return details


def _scale_diagnosis(key: str, test, message: str) -> Diagnosis:
    """A q1 diagnosis recognised by the scale of a gradient; ``message`` names the gradient
    with ``{gradient}`` ("Your bias gradient is") or ``{has}`` ("Your bias gradient has")."""
    return Diagnosis(key, lambda e: _any_scale(e, test), message, _which_gradient(test))


def _scale_near(target_key: str):
    return lambda s, c, ev: c > 0.999 and _near(s, ev[target_key], 0.02 * ev[target_key])


_DTYPE_ERROR = re.compile(r"(dtype|scalar type|can't be cast|same type)", re.IGNORECASE)
_INTEGER = re.compile(r"\b(int|long|Int|Long|int32|int64)\b")


# torch raises NotImplementedError for a kernel that lacks a dtype, e.g. F.mse_loss on int
# tensors: '"mse_cpu" not implemented for 'Int''. That is not an untouched stub.
_KERNEL_DTYPE = re.compile(r"not implemented for '(\w+)'")
_INTEGER_KERNEL = re.compile(r"not implemented for '(Int|Long|Short|Char|Byte)'")
# backward()/grad() of a loss that no parameter reaches (thresholded, .int(), .item(), detached).
_NO_GRAPH = re.compile(r"does not require grad and does not have a grad_fn")


def _integer_dtype_error(message: str | None) -> bool:
    return bool(message) and (
        bool(_DTYPE_ERROR.search(message)) and bool(_INTEGER.search(message))
        or bool(_INTEGER_KERNEL.search(message)))


def _stub_error(message: str | None) -> bool:
    return bool(message) and "NotImplementedError" in message \
        and not _KERNEL_DTYPE.search(message)


CATALOGUE: list[Diagnosis] = [
    Diagnosis(
        "stub_untouched",
        lambda e: _stub_error(e.get("error")),
        "This part still raises NotImplementedError: replace the `raise NotImplementedError` "
        "line with your implementation."),
    Diagnosis(
        "integer_labels",
        lambda e: _integer_dtype_error(e.get("error")),
        "A float/integer dtype mismatch: the labels y are integer tensors (torch.int). Convert "
        "them with y.float() before using them in matrix products or losses with the float "
        "net inputs."),
    Diagnosis(
        "loss_detached",
        lambda e: bool(_NO_GRAPH.search(e.get("error") or "")),
        "The loss is not connected to the parameters (it has no grad_fn), so there is nothing "
        "to differentiate: did the model's output get thresholded or converted on the way (> "
        "0.5, .int(), .round(), .item(), .detach(), a new torch.tensor(...))? Adaline trains on "
        "the raw net inputs; the 0.5 threshold belongs in compute_accuracy only."),
    Diagnosis(
        "weight_transposed",
        lambda e: e.get("m") not in (None, 1) and e.get("grad_w_shape") == [1, e.get("m")],
        "negative_grad_w has shape (1, {m}) but must have the weights' shape ({m}, 1): compute "
        "x.t() @ (...) rather than (...) @ x, or transpose the result."),
    Diagnosis(
        "bias_not_reduced",
        lambda e: e.get("n") not in (None, 1) and e.get("grad_b_size") == e.get("n"),
        "negative_grad_b has {n} elements, one per sample: the bias gradient is a single "
        "number, averaged over the batch (shape (1,))."),
    _scale_diagnosis(
        "sum_not_mean", _scale_near("n"),
        "{gradient} about n = {n} times too large: it looks like you summed over the "
        "batch instead of averaging. The loss is the mean over the batch, so divide by the "
        "batch size (y.size(0))."),
    _scale_diagnosis(
        "missing_two_over_n", _scale_near("half_n"),
        "{gradient} n/2 = {half_n:g} times too large: the factor 2/n of dL/dyhat = "
        "(2/n) (yhat - y) is missing (n = {n} samples in this batch)."),
    _scale_diagnosis(
        "wrong_n", _scale_near("n_over_m"),
        "{gradient} n/m = {n_over_m:.3g} times too large: it divides by the number of "
        "features m = {m} instead of the number of samples n = {n}. n is x.size(0) (or "
        "y.size(0)); x.size(1) is m."),
    _scale_diagnosis(
        "sign_flipped", lambda s, c, ev: c < -0.999,
        "{has} the opposite sign: backward must return the NEGATIVE gradients, "
        "-(dL/dw, dL/db), with dL/dyhat = (2/n) (yhat - y)."),
    _scale_diagnosis(
        "missing_factor_2", lambda s, c, ev: c > 0.999 and _near(s, 0.5, 0.01),
        "{gradient} half as large as expected: the derivative of (yhat - y)**2 is "
        "2 (yhat - y), so dL/dyhat = (2/n) (yhat - y); the factor 2 is missing."),
    Diagnosis(
        "uses_autograd",
        lambda e: bool(e.get("autograd_detail")),
        "Adaline1.backward must compute the gradients by hand (the chain rule from the "
        "lecture), without PyTorch's automatic differentiation; found: {autograd_detail}."),
    Diagnosis(
        "uses_backward_not_grad",
        lambda e: bool(e.get("backward_used")),
        "train_autograd must compute the gradients with torch.autograd.grad(loss, ...); it "
        "calls .backward() instead."),
    Diagnosis(
        "grad_result_unused",
        lambda e: bool(e.get("grad_unused")),
        "train_autograd calls torch.autograd.grad but its updates do not follow what grad() "
        "returns: update model.weight and model.bias, both, with learning_rate times the "
        "negative gradients grad() gives you."),
    Diagnosis(
        "sgd_not_used",
        lambda e: bool(e.get("sgd_unused")),
        "train_nn must update the model's parameters with optimizer.step() of a "
        "torch.optim.SGD(model.parameters(), lr=learning_rate); {sgd_detail}."),
    Diagnosis(
        "other_optimizer",
        lambda e: bool(e.get("optimizers")) and set(e["optimizers"]) != {"SGD"},
        "train_nn must use torch.optim.SGD; the optimizer that stepped was {optimizers_text}."),
    Diagnosis(
        "random_init",
        lambda e: bool(e.get("nonzero_init")),
        "Adaline3 starts from nonzero parameters: nn.Linear initialises them randomly. Set the "
        "weight and the bias to zero in __init__ (e.g. nn.init.zeros_(self.linear.weight), or "
        "self.linear.weight.detach().zero_())."),
    Diagnosis(
        "output_shape_n1",
        lambda e: e.get("n") is not None and e.get("forward_shape") == [e["n"], 1],
        "forward returns shape ({n}, 1) but the labels have shape ({n},), so F.mse_loss "
        "broadcasts to ({n}, {n}) and computes the wrong loss: return .view(-1) of the output."),
    Diagnosis(
        "params_never_change",
        lambda e: bool(e.get("flat")),
        "The loss is the same in every epoch: the parameters never change. Is the update "
        "applied to the model's own parameters, and is zero_grad() called between backward() "
        "and step()? (Call it before backward() or after step().)"),
    Diagnosis(
        "losses_per_minibatch",
        lambda e: bool(e.get("per_minibatch")),
        "You returned {count} losses, one per minibatch: return one loss per epoch, the "
        "full-data loss after the epoch's updates."),
    Diagnosis(
        "num_epochs_ignored",
        lambda e: bool(e.get("epochs_ignored")),
        "You returned {count} losses for {epochs} epochs, though the ones returned match: use "
        "the num_epochs argument."),
    Diagnosis(
        "last_minibatch_loss",
        lambda e: bool(e.get("matches_last_minibatch")),
        "Your losses are those of each epoch's last minibatch (computed before its update), "
        "not the loss on all of (x, y) after the epoch: after the minibatch loop, compute the "
        "MSE of the model on all of x and y (under torch.no_grad()) and append that."),
    Diagnosis(
        "gradients_accumulate",
        lambda e: bool(e.get("matches_accumulate")),
        "Gradients accumulate across steps: each update uses the sum of all gradients so far. "
        "Reset them once per minibatch before backward() (optimizer.zero_grad(), or set each "
        "parameter's .grad to None)."),
    Diagnosis(
        "momentum",
        lambda e: bool(e.get("momentum")),
        "Your SGD uses momentum = {momentum:g}: each step also adds a share of the previous "
        "steps, so the losses leave the plain gradient descent of the lecture. Create it as "
        "torch.optim.SGD(model.parameters(), lr=learning_rate), without momentum."),
    Diagnosis(
        "dataloader_shuffle",
        lambda e: bool(e.get("dataloader")),
        "Your minibatches come from a DataLoader: iterating a DataLoader, shuffling or not, "
        "draws a random number from torch's global generator (one that shuffles also picks "
        "its own order), so the torch.randperm shuffles after it are not the lecture's. "
        "Shuffle with shuffle_idx = torch.randperm(y.size(0), dtype=torch.long) once per "
        "epoch and cut it with torch.split(shuffle_idx, minibatch_size), as train_manual "
        "does, or give a DataLoader with shuffle=False its own generator "
        "(generator=torch.Generator())."),
    Diagnosis(
        "seed_missing",
        lambda e: bool(e.get("seed_missing")) and not e.get("flat"),
        "Your training never calls torch.manual_seed(seed), so its shuffles depend on whatever "
        "ran before: call torch.manual_seed(seed) once, before the epoch loop."),
    Diagnosis(
        "seed_reset_each_epoch",
        lambda e: bool(e.get("matches_seed_each_epoch")),
        "Every epoch uses the same shuffle: torch.manual_seed(seed) is called inside the epoch "
        "loop. Call it once, before the loop."),
    Diagnosis(
        "full_batch",
        lambda e: bool(e.get("matches_full_batch"))
        or (e.get("sgd_steps") is not None and e.get("sgd_steps") == e.get("epochs")),
        "Your training makes one update per epoch on all the data (full-batch gradient "
        "descent): make one update per minibatch of torch.split(shuffle_idx, minibatch_size)."),
    Diagnosis(
        "learning_rate_ignored",
        lambda e: bool(e.get("lecture_matches")) and bool(e.get("matches_lr_default")),
        "With another learning_rate your losses are those of learning rate 0.01: use the "
        "learning_rate argument instead of a fixed value."),
    Diagnosis(
        "seed_ignored",
        lambda e: bool(e.get("lecture_matches")) and bool(e.get("matches_seed_default")),
        "With another seed your losses are those of seed 123: pass the seed argument to "
        "torch.manual_seed."),
    Diagnosis(
        "minibatch_size_ignored",
        lambda e: bool(e.get("lecture_matches")) and bool(e.get("matches_minibatch_size_default")),
        "With another minibatch_size your losses are those of minibatches of 10: use the "
        "minibatch_size argument."),
    Diagnosis(
        "hardcoded_curve",
        lambda e: bool(e.get("lecture_matches")) and bool(e.get("looks_hardcoded")),
        "On other data your function returns the lecture's published losses: return the "
        "losses your training loop computes."),
    Diagnosis(
        "ascending",
        lambda e: bool(e.get("ascending")),
        "The loss increases during training: the parameters move up the gradient. Add the "
        "learning rate times the NEGATIVE gradient (or subtract the gradient)."),
]

BY_KEY = {entry.key: entry for entry in CATALOGUE}

# Candidate lists for the checks (catalogue order decides priority).
PROBE_ERRORS = ("stub_untouched", "integer_labels", "loss_detached")
TRAINING_LOOP = ("params_never_change", "losses_per_minibatch", "num_epochs_ignored",
                 "last_minibatch_loss", "gradients_accumulate", "momentum", "dataloader_shuffle", "seed_missing",
                 "seed_reset_each_epoch", "full_batch", "ascending")
OTHER_RUN = TRAINING_LOOP + ("learning_rate_ignored", "seed_ignored", "minibatch_size_ignored",
                             "hardcoded_curve")


class _Blank(dict):
    def __missing__(self, key):
        return "?"


def diagnose(evidence: dict, candidates) -> tuple[str, str] | None:
    """The first catalogue entry among ``candidates`` whose predicate holds, as (key, message)."""
    wanted = set(candidates)
    for entry in CATALOGUE:
        if entry.key not in wanted:
            continue
        try:
            applies = entry.applies(evidence)
        except (TypeError, KeyError, ValueError, ZeroDivisionError):
            applies = False
        if applies:
            values = _Blank({k: v for k, v in _items(evidence) if v is not None})
            if entry.details is not None:
                values.update(entry.details(evidence))
            return entry.key, entry.message.format_map(values)
    return None


def _items(evidence: dict):
    return dict.items(evidence)

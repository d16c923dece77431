"""An independent float64 NumPy reference for the Adaline assignment (grader side).

Loss: ``L(w, b) = mean((x @ w + b - y) ** 2)`` over a batch of n samples, with x (n, m),
w (m, 1), b (1,), y (n,). Its gradients, from the chain rule:

    dL/dw = 2/n * x.T @ (yhat - y)     (m, 1)
    dL/db = 2/n * sum(yhat - y)        (1,)

The assignment's ``backward`` returns the *negative* gradients. Training follows the lecture's
recipe: the shuffles come from torch (seed once, one ``randperm`` per epoch, ``split`` into
minibatches) so they match the student's run; all arithmetic is NumPy float64.
"""

from __future__ import annotations

import functools

import numpy as np
import torch


def _array(values, ndim: int) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to(torch.float64).numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"expected {ndim} dimensions, got shape {array.shape}")
    return array


def negative_gradients(x, yhat, y) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form negative gradients of the batch MSE: x (n, m), yhat (n,), y (n,) ->
    ``(-dL/dw (m, 1), -dL/db (1,))``."""
    x, yhat, y = _array(x, 2), _array(yhat, 1), _array(y, 1)
    error = yhat - y
    n = error.shape[0]
    grad_w = (2.0 / n) * (x.T @ error)[:, None]
    grad_b = np.array([(2.0 / n) * error.sum()])
    return -grad_w, -grad_b


def loss(x, y, w, b) -> float:
    """``mean((x @ w + b - y) ** 2)``; x (n, m), y (n,), w (m, 1), b (1,)."""
    return float(np.mean((net_inputs(x, w, b) - _array(y, 1)) ** 2))


def net_inputs(x, w, b) -> np.ndarray:
    """``x @ w + b`` flattened: x (n, m), w (m, 1), b (1,) -> (n,)."""
    return (_array(x, 2) @ np.asarray(w, dtype=np.float64).reshape(-1, 1)).reshape(-1) \
        + float(np.asarray(b, dtype=np.float64).reshape(-1)[0])


def numerical_negative_gradients(x, w, b, y, h: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Central finite differences of :func:`loss` at (w, b), negated: -> ((m, 1), (1,)).

    Cross-check for :func:`negative_gradients` (CS231n style). The loss is quadratic, so the
    central difference has no truncation error; what is left is float64 round-off of about
    eps * |L| / h ~ 1e-16 / 1e-6 = 1e-10 per entry. A relative error
    ``|a - b| / max(|a|, |b|)`` below 1e-7 therefore means "correct", above 1e-2 "wrong".
    """
    x, y = _array(x, 2), _array(y, 1)
    w = np.array(w, dtype=np.float64).reshape(-1, 1)
    b = np.array(b, dtype=np.float64).reshape(1)
    grad_w = np.zeros_like(w)
    for i in range(w.shape[0]):
        plus, minus = w.copy(), w.copy()
        plus[i, 0] += h
        minus[i, 0] -= h
        grad_w[i, 0] = (loss(x, y, plus, b) - loss(x, y, minus, b)) / (2 * h)
    grad_b = np.array([(loss(x, y, w, b + h) - loss(x, y, w, b - h)) / (2 * h)])
    return -grad_w, -grad_b


def relative_error(a, b) -> float:
    """``max |a - b| / max(max |a|, max |b|, 1e-12)``: scale-free, safe for entries near zero."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), 1e-12)
    return float(np.abs(a - b).max(initial=0.0) / scale)


def train_curve(x, y, num_epochs: int, learning_rate: float = 0.01, seed: int = 123,
                minibatch_size: int = 10, *, reseed_each_epoch: bool = False,
                accumulate_gradients: bool = False,
                last_minibatch_loss: bool = False) -> tuple[list[float], np.ndarray, np.ndarray]:
    """Train from zero weights as the lecture does -> (per-epoch full-data MSE, w (m, 1), b (1,)).

    Keyword variants reproduce classic mistakes for the diagnoses: ``reseed_each_epoch`` calls
    ``torch.manual_seed(seed)`` at the start of every epoch; ``accumulate_gradients`` never
    zeroes the gradients (each step uses the sum of all gradients so far);
    ``last_minibatch_loss`` logs, per epoch, the loss of the epoch's last minibatch as computed
    before its update (instead of the full-data loss after the epoch). Full-batch training is
    ``minibatch_size >= n``. Results are cached; callers get fresh copies.
    """
    x, y = _array(x, 2), _array(y, 1)
    key = (x.tobytes(), x.shape, y.tobytes(), int(num_epochs), float(learning_rate), int(seed),
           int(minibatch_size), bool(reseed_each_epoch), bool(accumulate_gradients),
           bool(last_minibatch_loss))
    costs, w, b = _train_cached(key)
    return list(costs), w.copy(), b.copy()


@functools.lru_cache(maxsize=128)
def _train_cached(key) -> tuple[tuple[float, ...], np.ndarray, np.ndarray]:
    x_bytes, shape, y_bytes, num_epochs, lr, seed, minibatch_size, reseed, accumulate, last = key
    x = np.frombuffer(x_bytes, dtype=np.float64).reshape(shape)
    y = np.frombuffer(y_bytes, dtype=np.float64)
    n, m = shape
    w, b = np.zeros((m, 1)), np.zeros(1)
    sum_w, sum_b = np.zeros((m, 1)), np.zeros(1)
    generator = torch.Generator()  # same stream as torch.manual_seed(seed), process RNG untouched
    generator.manual_seed(seed)
    costs = []
    for _ in range(num_epochs):
        if reseed:
            generator.manual_seed(seed)
        perm = torch.randperm(n, dtype=torch.long, generator=generator)
        for batch in torch.split(perm, minibatch_size):
            idx = batch.numpy()
            xb = x[idx]
            batch_loss = loss(xb, y[idx], w, b)
            grad_w, grad_b = negative_gradients(xb, (xb @ w).reshape(-1) + b[0], y[idx])
            if accumulate:
                sum_w, sum_b = sum_w + grad_w, sum_b + grad_b
                grad_w, grad_b = sum_w, sum_b
            w = w + lr * grad_w
            b = b + lr * grad_b
        costs.append(batch_loss if last else loss(x, y, w, b))
    w.setflags(write=False)
    b.setflags(write=False)
    return tuple(costs), w, b


def accuracy(net_inputs_, y, threshold: float = 0.5) -> float:
    """Percent of samples whose prediction ``net_input > threshold`` equals the 0/1 label."""
    predictions = (_array(net_inputs_, 1) > threshold).astype(np.int64)
    labels = _array(y, 1).astype(np.int64)
    return float(100.0 * np.mean(predictions == labels)) if labels.size else 0.0

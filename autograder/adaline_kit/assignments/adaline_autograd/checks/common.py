"""Shared pieces of the hidden checks: evidence, probe calls, run specifications, values.

Tolerances. The student's code computes in float32, the reference in float64 from the same
float32 inputs. Over the lecture's 20 epochs the losses of a correct float32 implementation stay
within ~2e-7 relative of the reference (the tests assert < 1e-5), so curves are compared with
``CURVE_RTOL = 1e-4`` (+ ``CURVE_ATOL = 1e-6``): ~500x the float32 drift, while the subtlest
mistake in the catalogue (reseeding every epoch) leaves the curve by 7e-4 at epoch 2 and all
others by more than 1 % at once. Weights and net inputs use the scale-free relative error
``reference.relative_error`` against ``VALUE_RTOL = 1e-4``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import numpy as np

from adaline_kit import settings
from .. import answer_key, reference
from adaline_kit.outcomes import CheckResult, ProbeFailure
from . import diagnoses

CURVE_RTOL = 1e-4
CURVE_ATOL = 1e-6
VALUE_RTOL = 1e-4
# The recorded losses are the reference solution's float32 run: float32 drift, with margin.
PUBLISHED_ATOL = 2e-5
# A sample whose reference net input is this close to the threshold may flip in float32.
AMBIGUOUS_MARGIN = 1e-4

# The lecture run's settings, from grading.toml [assignment]; the defaults of the notebook's
# training functions' signatures (``learning_rate=0.01, seed=123, minibatch_size=10``), which a
# run that ignores its arguments falls back to.
LECTURE_SETTINGS = settings.load().assignment.run_settings()
DEFAULTS = {"learning_rate": 0.01, "seed": 123, "minibatch_size": 10}


def published_costs() -> tuple[float, ...]:
    """The per-epoch losses the reference solution produced on the lecture's data for the
    declared settings (recorded by ``adaline-kit build`` in the answer key)."""
    return tuple(answer_key.load().costs)


_SEVERITY = {"error": 1, "timeout": 2, "crash": 3, "memory": 4}


# --- evidence ---------------------------------------------------------------------------------

class Evidence(dict):
    """A dict whose ``lazy`` entries are computed on first read; missing keys read as None."""

    def __init__(self, *args, lazy: dict[str, Callable[[], object]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})

    def __missing__(self, key):
        if key in self._lazy:
            value = self._lazy.pop(key)()
            self[key] = value
            return value
        return None

    def get(self, key, default=None):
        value = self[key]
        return default if value is None else value


def verdict(name: str, passed: bool, weight: float, message: str, evidence: dict | None = None,
            candidates=(), method_violation: bool = False) -> CheckResult:
    """A CheckResult; on failure, the first fitting diagnosis is prepended to the message."""
    diagnosis = None
    if not passed and evidence is not None:
        found = diagnoses.diagnose(evidence, candidates)
        if found:
            diagnosis, text = found
            message = f"{text}\n{message}" if message else text
    return CheckResult(name, passed, weight, message, diagnosis, method_violation)


# --- probes -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    """One probe call: ``data`` (plain dict) or ``failure``; ``what`` names it for messages."""

    what: str
    data: dict | None = None
    failure: ProbeFailure | None = None

    @property
    def spy(self) -> dict | None:
        return (self.data or {}).get("spy")


class QuestionContext:
    """Probe calls of one question. After a timeout, crash or memory failure the remaining
    probes of the question are not run (they would fail the same way and cost time)."""

    def __init__(self, probe, question: str):
        self.probe = probe
        self.question = question
        self.failures: list[ProbeFailure] = []
        self._fatal: ProbeFailure | None = None

    def call(self, name: str, args: dict, what: str) -> Outcome:
        if self._fatal is not None:
            return Outcome(what, failure=self._fatal)
        try:
            data = self.probe(name, args)
            if not isinstance(data, dict):
                raise ProbeFailure("error", f"unusable probe result ({type(data).__name__})")
        except ProbeFailure as failure:
            self.failures.append(failure)
            if failure.kind != "error":
                self._fatal = failure
            return Outcome(what, failure=failure)
        except Exception as error:  # noqa: BLE001 - a probe callable should raise ProbeFailure
            failure = ProbeFailure("error", f"{type(error).__name__}: {error}")
            self.failures.append(failure)
            return Outcome(what, failure=failure)
        return Outcome(what, data=data)

    def status(self) -> str | None:
        """The most severe probe failure kind of this question, or None."""
        if not self.failures:
            return None
        return max((f.kind for f in self.failures), key=lambda k: _SEVERITY.get(k, 1))


def failure_text(outcome: Outcome) -> str:
    failure = outcome.failure
    kind, message = failure.kind, failure.message
    if kind == "timeout":
        return f"Stopped while {outcome.what}: it took longer than the time limit ({message})."
    if kind == "crash":
        return (f"The Python process running your notebook stopped unexpectedly while "
                f"{outcome.what} ({message}).")
    if kind == "memory":
        return f"Your code used more memory than allowed while {outcome.what} ({message})."
    return f"Your code raised an error while {outcome.what}: {message}"


def failed_check(name: str, weight: float, outcome: Outcome, candidates=(),
                 method_violation: bool = False) -> CheckResult:
    evidence = Evidence(error=outcome.failure.message)
    return verdict(name, False, weight, failure_text(outcome), evidence,
                   tuple(candidates) + diagnoses.PROBE_ERRORS, method_violation)


# --- run specifications -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class RunSpec:
    """One training run: data as plain lists, hyper-parameters, evaluation sets."""

    label: str
    x: list
    y: list
    num_epochs: int
    learning_rate: float
    seed: int
    minibatch_size: int
    evaluate: tuple = ()          # ((label, x, y), ...)
    is_lecture: bool = False

    def probe_args(self) -> dict:
        return {"x": self.x, "y": self.y, "num_epochs": self.num_epochs,
                "learning_rate": self.learning_rate, "seed": self.seed,
                "minibatch_size": self.minibatch_size,
                "evaluate": [[x, y] for _, x, y in self.evaluate]}

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def steps(self) -> int:
        return self.num_epochs * math.ceil(self.n / self.minibatch_size)

    def reference(self, **changes) -> tuple[list[float], np.ndarray, np.ndarray]:
        """Reference run with optional changed settings or variants (see reference.train_curve)."""
        settings = {"num_epochs": self.num_epochs, "learning_rate": self.learning_rate,
                    "seed": self.seed, "minibatch_size": self.minibatch_size}
        settings.update(changes)
        return reference.train_curve(self.x, self.y, **settings)

    def describe(self) -> str:
        return (f"{self.n} samples, {len(self.x[0])} features, {self.num_epochs} epochs, "
                f"learning_rate={self.learning_rate:g}, seed={self.seed}, "
                f"minibatch_size={self.minibatch_size}")


@functools.lru_cache(maxsize=8)
def lecture_spec(data) -> RunSpec:
    """The lecture's run on ``data`` (a LectureData; cached per instance)."""
    lists = data.as_lists()
    return RunSpec("the lecture's data", lists["X_train"], lists["y_train"],
                   evaluate=(("training", lists["X_train"], lists["y_train"]),
                             ("test", lists["X_test"], lists["y_test"])),
                   is_lecture=True, **LECTURE_SETTINGS)


def other_spec(rng: np.random.Generator, avoid_seeds: tuple[int, ...] = (),
               label: str = "other data") -> RunSpec:
    """Random data and settings unlike the lecture's and the signatures' defaults: 3-4 features,
    41-59 samples, a minibatch size that does not divide n, another learning rate, seed (never
    one of ``avoid_seeds`` either) and number of epochs."""
    m = int(rng.integers(3, 5))
    n = int(rng.integers(41, 60))
    # Not a divisor of n, and a different number of minibatches than the default size 10
    # gives: code that ignores minibatch_size must fail every draw, not only some.
    batches = {-(-n // size) for size in (DEFAULTS["minibatch_size"],
                                          LECTURE_SETTINGS["minibatch_size"])}
    sizes = [s for s in (6, 7, 8, 9) if n % s and -(-n // s) not in batches] \
        or [s for s in range(5, 20) if n % s and -(-n // s) not in batches]
    minibatch_size = int(rng.choice(sizes))
    rates = [r for r in (0.02, 0.03, 0.05)
             if r not in (LECTURE_SETTINGS["learning_rate"], DEFAULTS["learning_rate"])]
    learning_rate = float(rng.choice(rates))
    seed = int(rng.integers(1, 100_000))
    while seed in (LECTURE_SETTINGS["seed"], DEFAULTS["seed"], *avoid_seeds):
        seed += 1
    num_epochs = int(rng.integers(6, 10))
    num_epochs = num_epochs + 4 if num_epochs == LECTURE_SETTINGS["num_epochs"] else num_epochs
    y = rng.permutation(np.arange(n) % 2)
    shift = rng.uniform(0.5, 1.5, size=m) * rng.choice([-1.0, 1.0], size=m)
    x = rng.normal(size=(n, m)) + (2 * y[:, None] - 1) * shift
    x = ((x - x.mean(axis=0)) / x.std(axis=0, ddof=1)).astype(np.float32)
    rows = [[float(v) for v in row] for row in x]
    labels = [int(v) for v in y]
    return RunSpec(label, rows, labels, num_epochs, learning_rate, seed, minibatch_size,
                   evaluate=(("other", rows, labels),))


# --- values -------------------------------------------------------------------------------------

def values_of(encoded) -> np.ndarray:
    return np.asarray((encoded or {}).get("values", []), dtype=np.float64)


def shape_text(shape) -> str:
    shape = list(shape)
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def compare_values(label: str, encoded, expected: np.ndarray) -> str | None:
    """None when ``encoded`` holds ``expected``'s values (any shape with as many elements)."""
    got = values_of(encoded)
    expected = np.asarray(expected, dtype=np.float64).reshape(-1)
    if got.size != expected.size:
        return (f"{label} has {got.size} elements (shape {shape_text(encoded.get('shape', []))}), "
                f"expected {expected.size}")
    if not np.all(np.isfinite(got)):
        return f"{label} contains nan or inf"
    error = reference.relative_error(got, expected)
    if error > VALUE_RTOL:
        return (f"{label} differs from the reference: yours {short(got)}, reference "
                f"{short(expected)} (relative error {error:.2g})")
    return None


def short(values: np.ndarray, limit: int = 4) -> str:
    shown = ", ".join(f"{v:.5g}" for v in values[:limit])
    return f"[{shown}{', ...' if values.size > limit else ''}]"


def spy_total(outcomes, key: str) -> int | None:
    """Sum of a spy count over the outcomes that returned data (None if none did)."""
    spies = [o.spy for o in outcomes if o.spy is not None]
    return sum(int(s.get(key, 0)) for s in spies) if spies else None

"""Adaline three ways: the assignment this kit ships, everything that knows it.

Students train Adaline on two Iris features with hand-derived gradients (q1), with
``torch.autograd.grad`` (q2) and with ``nn.Linear`` + ``optim.SGD`` (q3). This module is the
assignment's side of the seam described in :mod:`adaline_kit.assignment`: the constants and
functions below are all the kit uses. It stays light (no torch, no hidden checks are imported
here): the sandbox's zygote imports it before any student code runs.

Inside the package: ``probes`` (run in the student process), ``checks/`` (the hidden checks,
grader side), ``reference.py`` (the independent float64 reference), ``data.py`` (the lecture's
split), ``answer_key.py`` + ``answer_key.json`` (what the reference solution produced, written by
``adaline-kit build``), ``reference_run.py`` (how build records it) and ``corpus/`` (the
validation corpus, written by ``corpus/casebook.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from adaline_kit.settings import SettingsError, is_number, is_positive_int

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]

NAME = "adaline_autograd"
TITLE = "Adaline three ways"
# The one data file, as the notebook reads it (beside the notebook), and its copy in the repository.
DATA_FILE = "data/iris.data"
DATA_SOURCE = REPO / "data" / "iris.data"
CORPUS = HERE / "corpus"

# The questions the hidden checks grade (checks.GRADERS); grading.toml [points] must give each
# points. Their checks and default weights (relative, within the question):
CHECK_WEIGHTS = {
    "q1": {"gradient_shapes": 1.0, "gradient_values": 2.0, "lecture_curve": 2.0,
           "lecture_accuracy": 1.0, "other_data": 2.0},
    "q2": {"lecture_curve": 2.0, "lecture_accuracy": 1.0, "final_weights": 1.0,
           "other_data": 2.0},
    "q3": {"module_structure": 1.0, "zero_init": 1.0, "output_shape": 1.0, "lecture_curve": 2.0,
           "lecture_accuracy": 1.0, "other_data": 2.0},
}
QUESTIONS = tuple(CHECK_WEIGHTS)
# Fraction of a question's points that breaking its method rule costs.
METHOD_RULE_COST = 0.5
# question -> the definitions students write for it: (class or None, function or None)
STUBS = {
    "q1": (("Adaline1", "backward"),),
    "q2": ((None, "train_autograd"),),
    "q3": (("Adaline3", None), (None, "train_nn")),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """grading.toml ``[assignment]``: the data split and the training run students reproduce.

    ``data_rows`` = (first, end): rows ``first..end-1`` of ``iris.data`` (0-based, blank lines
    skipped); ``features``: column indices; the first ``train_size`` shuffled rows train, the
    rest test; ``seed`` seeds both the split's permutation and the training shuffles;
    ``standardise``: scale both sets with the training mean and unbiased std.
    """

    num_epochs: int = 20
    learning_rate: float = 0.01
    seed: int = 123
    minibatch_size: int = 10
    data_rows: tuple = (50, 150)
    features: tuple = (1, 2)
    train_size: int = 70
    standardise: bool = True

    @property
    def rows(self) -> int:
        return self.data_rows[1] - self.data_rows[0]

    @property
    def test_size(self) -> int:
        return self.rows - self.train_size

    def run_settings(self) -> dict:
        """The training run's keyword arguments: num_epochs, learning_rate, seed, minibatch_size."""
        return {"num_epochs": self.num_epochs, "learning_rate": self.learning_rate,
                "seed": self.seed, "minibatch_size": self.minibatch_size}

    def as_dict(self) -> dict:
        """Plain JSON-able values (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def _int_pair(value) -> bool:
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
            and value[0] < value[1])


def _int_list(value) -> bool:
    return (isinstance(value, list) and len(value) >= 1
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
            and len(set(value)) == len(value))


# key -> (is the value valid, expected form for the message, conversion)
SETTING_FORMS = {
    "num_epochs": (is_positive_int, "a whole number >= 1", int),
    "learning_rate": (lambda v: is_number(v) and 0 < v < 10, "a number between 0 and 10", float),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
             "a whole number >= 0", int),
    "minibatch_size": (is_positive_int, "a whole number >= 1", int),
    "data_rows": (_int_pair, "[first, end], whole numbers with first < end", tuple),
    "features": (_int_list, "a list of distinct column numbers, e.g. [1, 2]", tuple),
    "train_size": (is_positive_int, "a whole number >= 1", int),
    "standardise": (lambda v: isinstance(v, bool), "true or false", bool),
}


def check_settings(settings: Settings, path) -> None:
    """Raise :class:`SettingsError` (one line) when the values do not fit together."""
    if not 2 <= settings.train_size <= settings.rows - 1:
        raise SettingsError(f"{path}: [assignment] train_size = {settings.train_size}: "
                            f"expected 2..{settings.rows - 1} (data_rows gives "
                            f"{settings.rows} rows; the rest is the test set)")


# --- grader side (imported when first called) --------------------------------------------------

def load_data(data_file, settings: Settings | None = None):
    """The data the hidden checks take (the lecture's split) from ``data_file``."""
    from .data import prepare_lecture_split

    return prepare_lecture_split(data_file, settings)


def grade_questions(probe, cells, settings, rng, data, questions=None) -> dict:
    """The hidden checks: question -> QuestionResult (see :func:`.checks.grade_questions`)."""
    from .checks import grade_questions as grade

    return grade(probe, cells, settings, rng, data, questions)


def withhold_unproven(results: dict, settings) -> dict:
    """Results of a submission flagged for tampering, with only proven checks credited."""
    from .checks import withhold_unproven as withhold

    return withhold(results, settings)


def in_process_probe(namespace: dict, runtime_spy: bool = True):
    """A probe callable over a notebook namespace in this process (plain ``otter run``)."""
    from .checks.inprocess import make_probe

    return make_probe(namespace, runtime_spy=runtime_spy)


def diagnoses():
    """The diagnosis catalogue (``CATALOGUE``, ``BY_KEY``) of the hidden checks."""
    from .checks import diagnoses as catalogue

    return catalogue


def hidden_check_files() -> list[Path]:
    """The hidden checks' source files (feedback must never quote a line of them)."""
    return sorted((HERE / "checks").glob("*.py"))


def load_answer_key(settings: Settings | None = None, scoring: dict | None = None):
    """The recorded answer key for ``settings`` (default: grading.toml's) and, if given, the
    scoring declarations ``scoring``; raises a one-line SettingsError when it is missing or
    stale."""
    from . import answer_key as recorded

    return recorded.load(assignment=settings, scoring=scoring)


def record_answer_key(completed, settings: Settings, data, questions, scoring: dict):
    """Run the completed master notebook, cross-check and return (answer key, executed
    notebook); ``scoring`` is recorded with it. See :func:`.reference_run.record`."""
    from .reference_run import record

    return record(completed, settings, data, questions, scoring)


def provisional_answer_key(settings: Settings, data):
    """The independent reference's answer key (for filling the notebook before its run)."""
    from .reference_run import provisional_key

    return provisional_key(settings, data)


def write_answer_key(key) -> bool:
    """Write the answer key that ships with the grader; True if it changed."""
    from . import answer_key as recorded

    return recorded.write(key)


def assignment_placeholders(settings: Settings) -> dict:
    """``{assignment[KEY]}`` values of the notebooks: the settings and what follows from them."""
    table = dict(settings.run_settings())
    table.update(features=list(settings.features), train_size=settings.train_size,
                 test_size=settings.test_size, rows=settings.rows,
                 data_first=settings.data_rows[0], data_end=settings.data_rows[1],
                 train_percent=round(100 * settings.train_size / settings.rows),
                 test_percent=round(100 * settings.test_size / settings.rows),
                 standardise=settings.standardise)
    return table


def expected_placeholders(key) -> dict:
    """``{expected[KEY]}`` values of the notebooks, from an answer key."""
    accuracies, costs = key.accuracies, key.costs
    return {"train_accuracy": f"{accuracies['training']:.2f}",
            "test_accuracy": f"{accuracies['test']:.2f}",
            "first_loss": f"{costs[0]:.5f}", "last_loss": f"{costs[-1]:.5f}"}

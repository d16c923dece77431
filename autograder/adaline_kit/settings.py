"""The grading settings from ``grading.toml``: points, limits, visibility, the assignment's settings.

The file is strict: every question the kit has hidden checks for needs a positive number of
points; unknown tables or keys and values of the wrong type are errors. A :class:`SettingsError`
is one line naming the file, the place and the expected form.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

SETTINGS_FILE = Path(__file__).with_name("grading.toml")
# The questions the hidden checks grade (``checks.GRADERS``); grading.toml must give each points.
QUESTIONS = ("q1", "q2", "q3")
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
TABLES = ("points", "limits", "results", "assignment", "weights", "method_rules")


class SettingsError(ValueError):
    """``grading.toml`` is malformed; the message is one line: file, place, expected form."""


# Each question's behavioural checks and their default weights (relative, within the question).
CHECK_WEIGHTS = {
    "q1": {"gradient_shapes": 1.0, "gradient_values": 2.0, "lecture_curve": 2.0,
           "lecture_accuracy": 1.0, "other_data": 2.0},
    "q2": {"lecture_curve": 2.0, "lecture_accuracy": 1.0, "final_weights": 1.0,
           "other_data": 2.0},
    "q3": {"module_structure": 1.0, "zero_init": 1.0, "output_shape": 1.0, "lecture_curve": 2.0,
           "lecture_accuracy": 1.0, "other_data": 2.0},
}
# Fraction of a question's points that breaking its method rule costs.
METHOD_RULE_COST = 0.5


@dataclasses.dataclass(frozen=True)
class Limits:
    question_seconds: float = 20.0
    cell_seconds: float = 30.0
    submission_seconds: float = 300.0
    memory_mib: int = 160
    output_bytes: int = 20000
    max_processes: int = 64
    disk_mib: int = 200


@dataclasses.dataclass(frozen=True)
class Assignment:
    """The assignment's settings: the data split and the training run students reproduce.

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


@dataclasses.dataclass(frozen=True)
class Settings:
    points: dict
    limits: Limits
    hidden_visibility: str = "after_due_date"
    assignment: Assignment = Assignment()
    weights: dict = dataclasses.field(
        default_factory=lambda: {q: dict(w) for q, w in CHECK_WEIGHTS.items()})
    method_rules: dict = dataclasses.field(
        default_factory=lambda: {q: METHOD_RULE_COST for q in QUESTIONS})

    @property
    def max_total(self) -> float:
        return float(sum(self.points.values()))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _int_pair(value) -> bool:
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
            and value[0] < value[1])


def _int_list(value) -> bool:
    return (isinstance(value, list) and len(value) >= 1
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
            and len(set(value)) == len(value))


# key -> (is the value valid, expected form for the message, conversion)
_ASSIGNMENT_FORMS = {
    "num_epochs": (_positive_int, "a whole number >= 1", int),
    "learning_rate": (lambda v: _number(v) and 0 < v < 10, "a number between 0 and 10", float),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
             "a whole number >= 0", int),
    "minibatch_size": (_positive_int, "a whole number >= 1", int),
    "data_rows": (_int_pair, "[first, end], whole numbers with first < end", tuple),
    "features": (_int_list, "a list of distinct column numbers, e.g. [1, 2]", tuple),
    "train_size": (_positive_int, "a whole number >= 1", int),
    "standardise": (lambda v: isinstance(v, bool), "true or false", bool),
}
_LIMIT_FORMS = {f.name: (_positive_int, "a positive whole number", int) if f.type == "int"
                else (lambda v: _number(v) and v > 0, "a positive number", float)
                for f in dataclasses.fields(Limits)}


def _table(raw: dict, name: str, path) -> dict:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise SettingsError(f"{path}: {name} must be a table ([{name}])")
    return value


def _points(raw: dict, path) -> dict:
    table = _table(raw, "points", path)
    for key, value in table.items():
        if key not in QUESTIONS:
            raise SettingsError(
                f"{path}: [points] {key}: the question is declared but has no hidden checks "
                f"(questions with checks: {', '.join(QUESTIONS)})")
        if not _number(value) or value <= 0:
            raise SettingsError(f"{path}: [points] {key} = {value!r}: expected a positive number")
    for question in QUESTIONS:
        if question not in table:
            raise SettingsError(f"{path}: [points] {question} is missing: every question with "
                                f"hidden checks needs points ({question} = <positive number>)")
    return {q: float(table[q]) for q in QUESTIONS}


def _typed_table(raw: dict, name: str, forms: dict, path) -> dict:
    """The table's values, each checked and converted by ``forms[key]``."""
    values = {}
    for key, value in _table(raw, name, path).items():
        if key not in forms:
            raise SettingsError(f"{path}: [{name}] unknown key {key!r} "
                                f"(known: {', '.join(forms)})")
        valid, form, convert = forms[key]
        if not valid(value):
            raise SettingsError(f"{path}: [{name}] {key} = {value!r}: expected {form}")
        values[key] = convert(value)
    return values


def _limits(raw: dict, path) -> Limits:
    return Limits(**_typed_table(raw, "limits", _LIMIT_FORMS, path))


def _assignment(raw: dict, path) -> Assignment:
    values = _typed_table(raw, "assignment", _ASSIGNMENT_FORMS, path)
    assignment = Assignment(**values)
    if not 2 <= assignment.train_size <= assignment.rows - 1:
        raise SettingsError(f"{path}: [assignment] train_size = {assignment.train_size}: "
                            f"expected 2..{assignment.rows - 1} (data_rows gives "
                            f"{assignment.rows} rows; the rest is the test set)")
    return assignment


def load(path: Path | str = SETTINGS_FILE) -> Settings:
    """Read and check ``grading.toml``; raise :class:`SettingsError` (one line) when malformed."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except OSError as error:
        raise SettingsError(f"{path}: cannot read the file ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from None
    for name in raw:
        if name not in TABLES:
            raise SettingsError(f"{path}: unknown table [{name}] (known: "
                                f"{', '.join(f'[{t}]' for t in TABLES)})")
    results = _table(raw, "results", path)
    for key in results:
        if key != "hidden_visibility":
            raise SettingsError(f"{path}: [results] unknown key {key!r} (known: hidden_visibility)")
    visibility = results.get("hidden_visibility", "after_due_date")
    if visibility not in VISIBILITIES:
        raise SettingsError(f"{path}: [results] hidden_visibility = {visibility!r}: expected one "
                            f"of {', '.join(repr(v) for v in VISIBILITIES)}")
    return Settings(points=_points(raw, path), limits=_limits(raw, path),
                    hidden_visibility=visibility, assignment=_assignment(raw, path),
                    weights=_weights(raw, path), method_rules=_method_rules(raw, path))


def _weights(raw: dict, path) -> dict:
    """``[weights.qN]`` check -> weight over the defaults; ValueError on unknown or bad ones."""
    table = raw.get("weights", {})
    unknown = set(table) - set(QUESTIONS)
    if unknown:
        raise SettingsError(f"{path}: unknown questions in [weights]: {sorted(unknown)}")
    weights = {q: dict(w) for q, w in CHECK_WEIGHTS.items()}
    for question, entries in table.items():
        bad = sorted(set(entries) - set(CHECK_WEIGHTS[question]))
        if bad:
            raise SettingsError(f"{path}: unknown checks in [weights.{question}]: {bad} (known: "
                             f"{', '.join(CHECK_WEIGHTS[question])})")
        for name, value in entries.items():
            if not _number(value) or value < 0:
                raise SettingsError(f"{path}: [weights.{question}] {name} must be a number >= 0, "
                                 f"got {value!r}")
            weights[question][name] = float(value)
        if not any(weights[question].values()):
            raise SettingsError(f"{path}: [weights.{question}] gives every check weight 0")
    return weights


def _method_rules(raw: dict, path) -> dict:
    """``[method_rules]`` question -> cost fraction in [0, 1]; ValueError otherwise."""
    table = raw.get("method_rules", {})
    unknown = set(table) - set(QUESTIONS)
    if unknown:
        raise SettingsError(f"{path}: unknown questions in [method_rules]: {sorted(unknown)}")
    rules = {q: METHOD_RULE_COST for q in QUESTIONS}
    for question, value in table.items():
        if not _number(value) or not 0 <= value <= 1:
            raise SettingsError(f"{path}: [method_rules] {question} must be a fraction from 0 to 1, "
                             f"got {value!r}")
        rules[question] = float(value)
    return rules

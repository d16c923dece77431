"""The grading settings (points, limits, visibility) from ``grading.toml``, with defaults."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

SETTINGS_FILE = Path(__file__).with_name("grading.toml")
QUESTIONS = ("q1", "q2", "q3")
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
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
    memory_mib: int = 640
    output_bytes: int = 20000


@dataclasses.dataclass(frozen=True)
class Settings:
    points: dict
    limits: Limits
    hidden_visibility: str = "after_due_date"
    weights: dict = dataclasses.field(
        default_factory=lambda: {q: dict(w) for q, w in CHECK_WEIGHTS.items()})
    method_rules: dict = dataclasses.field(
        default_factory=lambda: {q: METHOD_RULE_COST for q in QUESTIONS})

    @property
    def max_total(self) -> float:
        return float(sum(self.points.values()))


def load(path: Path | str = SETTINGS_FILE) -> Settings:
    """Read ``grading.toml``; raise ValueError on an unknown question, limit or visibility."""
    with open(path, "rb") as handle:
        raw = tomllib.load(handle)
    points = {q: float(raw.get("points", {}).get(q, 0)) for q in QUESTIONS}
    unknown = set(raw.get("points", {})) - set(QUESTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown questions in [points]: {sorted(unknown)}")
    limit_fields = {f.name for f in dataclasses.fields(Limits)}
    unknown = set(raw.get("limits", {})) - limit_fields
    if unknown:
        raise ValueError(f"{path}: unknown keys in [limits]: {sorted(unknown)}")
    limits = Limits(**raw.get("limits", {}))
    visibility = raw.get("results", {}).get("hidden_visibility", "after_due_date")
    if visibility not in VISIBILITIES:
        raise ValueError(f"{path}: hidden_visibility must be one of {VISIBILITIES}")
    return Settings(points=points, limits=limits, hidden_visibility=visibility,
                    weights=_weights(raw, path), method_rules=_method_rules(raw, path))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _weights(raw: dict, path) -> dict:
    """``[weights.qN]`` check -> weight over the defaults; ValueError on unknown or bad ones."""
    table = raw.get("weights", {})
    unknown = set(table) - set(QUESTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown questions in [weights]: {sorted(unknown)}")
    weights = {q: dict(w) for q, w in CHECK_WEIGHTS.items()}
    for question, entries in table.items():
        bad = sorted(set(entries) - set(CHECK_WEIGHTS[question]))
        if bad:
            raise ValueError(f"{path}: unknown checks in [weights.{question}]: {bad} (known: "
                             f"{', '.join(CHECK_WEIGHTS[question])})")
        for name, value in entries.items():
            if not _number(value) or value < 0:
                raise ValueError(f"{path}: [weights.{question}] {name} must be a number >= 0, "
                                 f"got {value!r}")
            weights[question][name] = float(value)
        if not any(weights[question].values()):
            raise ValueError(f"{path}: [weights.{question}] gives every check weight 0")
    return weights


def _method_rules(raw: dict, path) -> dict:
    """``[method_rules]`` question -> cost fraction in [0, 1]; ValueError otherwise."""
    table = raw.get("method_rules", {})
    unknown = set(table) - set(QUESTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown questions in [method_rules]: {sorted(unknown)}")
    rules = {q: METHOD_RULE_COST for q in QUESTIONS}
    for question, value in table.items():
        if not _number(value) or not 0 <= value <= 1:
            raise ValueError(f"{path}: [method_rules] {question} must be a fraction from 0 to 1, "
                             f"got {value!r}")
        rules[question] = float(value)
    return rules

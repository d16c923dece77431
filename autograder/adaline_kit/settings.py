"""The grading settings (points, limits, visibility) from ``grading.toml``, with defaults."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

SETTINGS_FILE = Path(__file__).with_name("grading.toml")
QUESTIONS = ("q1", "q2", "q3")
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


@dataclasses.dataclass(frozen=True)
class Limits:
    question_seconds: float = 20.0
    cell_seconds: float = 30.0
    submission_seconds: float = 120.0
    memory_mib: int = 192
    output_bytes: int = 20000
    max_processes: int = 64
    disk_mib: int = 200


@dataclasses.dataclass(frozen=True)
class Settings:
    points: dict
    limits: Limits
    hidden_visibility: str = "after_due_date"

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
    return Settings(points=points, limits=limits, hidden_visibility=visibility)

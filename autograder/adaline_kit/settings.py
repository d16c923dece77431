"""The grading settings from ``grading.toml``: points, limits, visibility, the assignment's settings.

The file is strict: every question the assignment has hidden checks for needs a positive number
of points; unknown tables or keys and values of the wrong type are errors. A :class:`SettingsError`
is one line naming the file, the place and the expected form.

``[assignment] package`` names the assignment package (see :mod:`adaline_kit.assignment`); the
package defines the table's other keys, the questions and their checks' default weights.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

SETTINGS_FILE = Path(__file__).with_name("grading.toml")
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
TABLES = ("points", "limits", "results", "assignment", "weights", "method_rules")


class SettingsError(ValueError):
    """``grading.toml`` is malformed; the message is one line: file, place, expected form."""



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
class Settings:
    """``points``: question -> points, in grading.toml's order (the declared questions);
    ``assignment``: the assignment package's ``Settings`` for ``[assignment]``; ``package``: that
    package's name; ``weights``: question -> check -> weight; ``method_rules``: question ->
    fraction of its points that breaking its method rule costs."""

    points: dict
    limits: Limits
    hidden_visibility: str = "after_due_date"
    assignment: object = None
    weights: dict = dataclasses.field(default_factory=dict)
    method_rules: dict = dataclasses.field(default_factory=dict)
    package: str = ""

    @property
    def questions(self) -> tuple[str, ...]:
        return tuple(self.points)

    @property
    def max_total(self) -> float:
        return float(sum(self.points.values()))

    def scoring(self) -> dict:
        """The scoring declarations as plain JSON data, as build records them beside the answer
        key: ``{"points": {q: points}, "weights": {q: {check: weight}}, "method_rules": {q:
        fraction}}`` (a grading run refuses when they differ from grading.toml's)."""
        return {"points": dict(self.points),
                "weights": {q: dict(w) for q, w in self.weights.items()},
                "method_rules": dict(self.method_rules)}


def is_number(value) -> bool:
    """An int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_positive_int(value) -> bool:
    """An int >= 1 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


_number, _positive_int = is_number, is_positive_int


_LIMIT_FORMS = {f.name: (_positive_int, "a positive whole number", int) if f.type == "int"
                else (lambda v: _number(v) and v > 0, "a positive number", float)
                for f in dataclasses.fields(Limits)}


def _table(raw: dict, name: str, path) -> dict:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise SettingsError(f"{path}: {name} must be a table ([{name}])")
    return value


def _points(raw: dict, path, questions: tuple) -> dict:
    """``[points]`` for the assignment's ``questions`` (those with hidden checks), in order."""
    table = _table(raw, "points", path)
    for key, value in table.items():
        if key not in questions:
            raise SettingsError(
                f"{path}: [points] {key}: the question is declared but has no hidden checks "
                f"(questions with checks: {', '.join(questions)})")
        if not _number(value) or value <= 0:
            raise SettingsError(f"{path}: [points] {key} = {value!r}: expected a positive number")
    for question in questions:
        if question not in table:
            raise SettingsError(f"{path}: [points] {question} is missing: every question with "
                                f"hidden checks needs points ({question} = <positive number>)")
    return {q: float(table[q]) for q in questions}


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


def _assignment(raw: dict, path, package):
    """``[assignment]`` (without ``package``) as the assignment package's ``Settings``."""
    table = {k: v for k, v in _table(raw, "assignment", path).items() if k != "package"}
    forms = package.SETTING_FORMS
    values = _typed_table({"assignment": table}, "assignment", forms, path)
    settings = package.Settings(**values)
    package.check_settings(settings, path)
    return settings


def read_package_name(path: Path | str = SETTINGS_FILE) -> str | None:
    """``[assignment] package`` of ``path`` as written (None when left out); the file is only
    parsed, not checked (see :func:`load`)."""
    raw = _read(path)
    name = _table(raw, "assignment", path).get("package")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise SettingsError(f"{path}: [assignment] package = {name!r}: expected the name of an "
                            "assignment package (a string)")
    return name


def _read(path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise SettingsError(f"{path}: cannot read the file ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from None


def questions(path: Path | str = SETTINGS_FILE) -> tuple[str, ...]:
    """The declared questions of ``path`` (grading.toml ``[points]``), in order."""
    return load(path).questions


def load(path: Path | str = SETTINGS_FILE) -> Settings:
    """Read and check ``grading.toml``; raise :class:`SettingsError` (one line) when malformed."""
    from . import assignment as assignment_module

    raw = _read(path)
    package = assignment_module.load(read_package_name(path), path)
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
    return Settings(points=_points(raw, path, tuple(package.QUESTIONS)),
                    limits=_limits(raw, path), hidden_visibility=visibility,
                    assignment=_assignment(raw, path, package),
                    weights=_weights(raw, path, package.CHECK_WEIGHTS),
                    method_rules=_method_rules(raw, path, tuple(package.QUESTIONS),
                                               float(package.METHOD_RULE_COST)),
                    package=package.__name__)


def _weights(raw: dict, path, defaults: dict) -> dict:
    """``[weights.<question>]`` check -> weight over the assignment's ``defaults`` (question ->
    check -> weight); SettingsError on unknown or bad ones."""
    table = raw.get("weights", {})
    unknown = set(table) - set(defaults)
    if unknown:
        raise SettingsError(f"{path}: unknown questions in [weights]: {sorted(unknown)}")
    weights = {q: dict(w) for q, w in defaults.items()}
    for question, entries in table.items():
        bad = sorted(set(entries) - set(defaults[question]))
        if bad:
            raise SettingsError(f"{path}: unknown checks in [weights.{question}]: {bad} (known: "
                             f"{', '.join(defaults[question])})")
        for name, value in entries.items():
            if not _number(value) or value < 0:
                raise SettingsError(f"{path}: [weights.{question}] {name} must be a number >= 0, "
                                 f"got {value!r}")
            weights[question][name] = float(value)
        if not any(weights[question].values()):
            raise SettingsError(f"{path}: [weights.{question}] gives every check weight 0")
    return weights


def _method_rules(raw: dict, path, questions: tuple, default: float) -> dict:
    """``[method_rules]`` question -> cost fraction in [0, 1]; SettingsError otherwise."""
    table = raw.get("method_rules", {})
    unknown = set(table) - set(questions)
    if unknown:
        raise SettingsError(f"{path}: unknown questions in [method_rules]: {sorted(unknown)}")
    rules = {q: default for q in questions}
    for question, value in table.items():
        if not _number(value) or not 0 <= value <= 1:
            raise SettingsError(f"{path}: [method_rules] {question} must be a fraction from 0 to 1, "
                             f"got {value!r}")
        rules[question] = float(value)
    return rules

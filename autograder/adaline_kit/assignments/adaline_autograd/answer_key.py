"""The answer key: what the reference solution produced for the declared settings.

``adaline-kit build`` runs the master notebook's reference solution and records, for every
question that trains a model, its per-epoch losses on the lecture's data, its final weight and
bias and its training and test accuracies (``build/reference_run.py``). The file travels in the
autograder zip beside ``grading.toml``; the hidden checks compare with it. Shape (JSON, checked
against ``answer_key.schema.json`` when read)::

    {"assignment": {grading.toml [assignment]},
     "scoring": {"points": {...}, "weights": {...}, "method_rules": {...}} (grading.toml's, as
                 built: the notebook and the autograder zip declare these),
     "questions": {"q1": {"costs": [f, ...] (one per epoch), "weight": [f, ...] (flattened),
                          "bias": [f], "accuracies": {"training": %, "test": %}}, ...}}
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

from adaline_kit import settings as settings_module

ANSWER_KEY_FILE = Path(__file__).with_name("answer_key.json")
SCHEMA_FILE = Path(__file__).with_name("answer_key.schema.json")


class AnswerKeyError(settings_module.SettingsError):
    """The answer key is missing, unreadable or recorded for other settings (one line)."""


@dataclasses.dataclass(frozen=True)
class AnswerKey:
    assignment: dict
    questions: dict
    scoring: dict = dataclasses.field(default_factory=dict)  # settings.Settings.scoring()

    @property
    def first(self) -> dict:
        return next(iter(self.questions.values()))

    @property
    def costs(self) -> list[float]:
        """The per-epoch losses on the lecture's data (the first question's; all agree)."""
        return list(self.first["costs"])

    @property
    def accuracies(self) -> dict:
        """``{"training": percent, "test": percent}`` of the trained model."""
        return dict(self.first["accuracies"])

    def as_json(self) -> str:
        return json.dumps({"assignment": self.assignment, "scoring": self.scoring,
                           "questions": self.questions}, indent=1) + "\n"

    def summary(self) -> str:
        """Two lines for the build's output: the expected curve and accuracies."""
        costs = self.costs
        shown = " ".join(f"{c:.5f}" for c in costs)
        acc = self.accuracies
        return (f"expected losses ({len(costs)} epochs): {shown}\n"
                f"expected accuracy: training {acc['training']:.2f} %, test {acc['test']:.2f} %")


def load(path: Path | str = ANSWER_KEY_FILE, assignment=None,
         scoring: dict | None = None) -> AnswerKey:
    """The recorded answer key; raise :class:`AnswerKeyError` when it is missing or was recorded
    for settings other than ``assignment`` (default: grading.toml's) or, when ``scoring`` is
    given (``settings.Settings.scoring()``), for other points, weights or method rules."""
    if assignment is None:
        assignment = settings_module.load().assignment
    key = _read(str(path))
    changed = _changes("[assignment]", key.assignment, assignment.as_dict())
    if scoring is not None:
        for table in ("points", "method_rules"):
            changed += _changes(f"[{table}]", key.scoring.get(table, {}), scoring[table])
        built, now = key.scoring.get("weights", {}), scoring["weights"]
        for question in sorted(set(built) | set(now)):
            changed += _changes(f"[weights.{question}]", built.get(question, {}),
                                now.get(question, {}))
    if changed:
        raise AnswerKeyError(f"{path}: recorded for other settings (changed in grading.toml "
                             f"since the last build: {'; '.join(changed)}): "
                             "run adaline-kit build")
    return key


def _changes(table: str, built: dict, now: dict) -> list[str]:
    """``"[table] key: built -> now"`` for each key whose value differs, sorted by key."""
    def shown(value) -> str:
        return "(none)" if value is None else (f"{value:g}" if isinstance(value, float)
                                                else json.dumps(value))

    return [f"{table} {k}: {shown(built.get(k))} -> {shown(now.get(k))}"
            for k in sorted(set(built) | set(now)) if built.get(k) != now.get(k)]


@functools.lru_cache(maxsize=4)
def _read(path: str) -> AnswerKey:
    import jsonschema

    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        jsonschema.validate(raw, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
        return AnswerKey(raw["assignment"], raw["questions"], raw["scoring"])
    except FileNotFoundError:
        raise AnswerKeyError(f"{path}: missing: run adaline-kit build") from None
    except jsonschema.ValidationError as error:
        place = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise AnswerKeyError(f"{path}: {place}: {error.message} (answer_key.schema.json): "
                             "run adaline-kit build") from None
    except ValueError as error:
        raise AnswerKeyError(f"{path}: not JSON ({error}): run adaline-kit build") from None


def write(key: AnswerKey, path: Path | str = ANSWER_KEY_FILE) -> bool:
    """Write ``key`` to ``path``; True if the file changed."""
    path = Path(path)
    text = key.as_json()
    old = path.read_text(encoding="utf-8") if path.exists() else None
    if text != old:
        path.write_text(text, encoding="utf-8")
        _read.cache_clear()
    return text != old

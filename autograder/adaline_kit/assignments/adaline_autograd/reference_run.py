"""Run the master notebook's reference solution at build time and record the answer key.

Assignment-specific (it knows the probes, the split and the float64 reference); the notebook
runner itself is :mod:`.notebook_run`.

:func:`record` executes the completed notebook (solution markers removed, placeholders filled) in
a fresh Jupyter kernel, then asks it, through the grader's own probes, to train every question's
model on the lecture's data with the declared settings. The results become the
:class:`~.answer_key.AnswerKey`, but only after :func:`cross_check` found them equal to
the kit's independent float64 reference (``reference.py``) within the hidden checks' tolerances:
a wrong reference solution never becomes the answer key.
"""

from __future__ import annotations

import json

import nbformat

from . import reference
from .answer_key import AnswerKey
from adaline_kit.settings import SettingsError

from . import Settings as Assignment
from adaline_kit.build import paths
from adaline_kit.build.notebook_run import NotebookRunError, execute

RESULT_MARK = "ADALINE-KIT-ANSWER-KEY "
# Plain data only; runs in the reference solution's kernel after the notebook's own cells.
_PROBE_CELL = """\
import json as _kit_json
from adaline_kit.assignments.adaline_autograd import probes as _kit_probes
_kit_args = _kit_json.loads({args!r})
_kit_out = {{"split": {{"X_train": X_train.tolist(), "y_train": y_train.tolist(),
                       "X_test": X_test.tolist(), "y_test": y_test.tolist()}},
            "questions": {{}}}}
for _kit_q in {questions!r}:
    _kit_out["questions"][_kit_q] = _kit_probes.run(_kit_q + "_train", globals(), _kit_args)
print({mark!r} + _kit_json.dumps(_kit_out))
"""


class ReferenceError(SettingsError):
    """The reference solution disagrees with the independent reference (one line)."""


def provisional_key(assignment: Assignment, data) -> AnswerKey:
    """The independent float64 reference's results as an answer key (to fill the notebook's
    ``{expected[...]}`` before the reference solution has run)."""
    from .checks.common import lecture_spec

    spec = lecture_spec(data)
    costs, w, b = spec.reference()
    accuracies = {label: reference.accuracy(reference.net_inputs(x, w, b), y)
                  for label, x, y in spec.evaluate}
    return AnswerKey(assignment.as_dict(), {"reference": {
        "costs": costs, "weight": w.reshape(-1).tolist(), "bias": b.tolist(),
        "accuracies": accuracies}})


def trained_questions(questions) -> list[str]:
    """The questions whose probes train a model (``qN_train``), in declaration order."""
    from .probes import PROBES

    return [q for q in questions if f"{q}_train" in PROBES]


def record(completed: nbformat.NotebookNode, assignment: Assignment, data,
           questions, scoring: dict) -> tuple[AnswerKey, nbformat.NotebookNode]:
    """Execute ``completed`` and return (the cross-checked answer key, the executed notebook).

    ``data``: the kit's LectureData for ``assignment``; ``questions``: the declared questions;
    ``scoring``: grading.toml's points, weights and method rules (``Settings.scoring()``),
    recorded so that grading refuses once they change without a build.
    """
    from .checks.common import lecture_spec

    spec = lecture_spec(data)
    wanted = trained_questions(questions)
    cell = _PROBE_CELL.format(args=json.dumps(spec.probe_args()), questions=wanted,
                              mark=RESULT_MARK)
    try:
        executed, output = execute(completed, cell)
    except NotebookRunError as error:
        raise ReferenceError(f"{paths.MASTER_NOTEBOOK.name}: the reference solution raised an "
                             f"error: {error}") from None
    line = next((ln for ln in output.splitlines() if ln.startswith(RESULT_MARK)), None)
    if line is None:
        raise ReferenceError(f"{paths.MASTER_NOTEBOOK.name}: the reference solution's results "
                             "could not be read back from its kernel")
    result = json.loads(line[len(RESULT_MARK):])
    check_split(result["split"], data)
    recorded = {}
    for question, run in result["questions"].items():
        recorded[question] = {
            "costs": [float(c) for c in run["costs"]],
            "weight": list(run["weight"]["values"]),
            "bias": list(run["bias"]["values"]),
            # compute_accuracy's rule on the model's outputs, as the hidden checks apply it
            "accuracies": {label: reference.accuracy(run["net_inputs"][i]["values"], y)
                           for i, (label, _, y) in enumerate(spec.evaluate)},
        }
    key = AnswerKey(assignment.as_dict(), recorded, scoring)
    cross_check(key, spec)
    return key, executed


def check_split(split: dict, data) -> None:
    """The notebook's own X_train, ... must be the split grading.toml declares (data.py)."""
    ours = data.as_lists()
    for name in ("X_train", "y_train", "X_test", "y_test"):
        if split[name] != ours[name]:
            size = f"{len(split[name])} rows vs {len(ours[name])}"
            raise ReferenceError(
                f"{paths.MASTER_NOTEBOOK.name}: the notebook's {name} is not the split "
                f"grading.toml [assignment] declares ({size}); build the data from the "
                "{assignment[...]} placeholders")


def cross_check(key: AnswerKey, spec) -> None:
    """Refuse an answer key that differs from the float64 reference beyond the checks'
    tolerances, naming the question, the epoch and the size of the difference."""
    from .checks.common import CURVE_ATOL, CURVE_RTOL, VALUE_RTOL

    expected, w, b = spec.reference()
    for question, run in key.questions.items():
        costs = run["costs"]
        where = f"{paths.MASTER_NOTEBOOK.name}: the reference solution's {question}"
        if len(costs) != len(expected):
            raise ReferenceError(f"{where} returned {len(costs)} losses for "
                                 f"{len(expected)} epochs")
        for epoch, (ours, ref) in enumerate(zip(costs, expected), start=1):
            tolerance = CURVE_ATOL + CURVE_RTOL * abs(ref)
            if not abs(ours - ref) <= tolerance:
                raise ReferenceError(
                    f"{where} disagrees with the independent float64 reference at epoch "
                    f"{epoch}: loss {ours:.6f} vs {ref:.6f} (difference {ours - ref:+.2g}, "
                    f"tolerance {tolerance:.1g})")
        for label, got, ref in (("weight", run["weight"], w), ("bias", run["bias"], b)):
            error = reference.relative_error(got, ref) if len(got) == ref.size else float("inf")
            if error > VALUE_RTOL:
                raise ReferenceError(f"{where}'s final {label} disagrees with the independent "
                                     f"float64 reference (relative error {error:.2g}, "
                                     f"tolerance {VALUE_RTOL:g})")
        for label, x, y in spec.evaluate:
            ref_accuracy = reference.accuracy(reference.net_inputs(x, w, b), y)
            ours = run["accuracies"].get(label)
            if ours is None or abs(ours - ref_accuracy) > 0.01:
                raise ReferenceError(f"{where}'s {label} accuracy {ours} % disagrees with the "
                                     f"independent float64 reference ({ref_accuracy:.2f} %)")

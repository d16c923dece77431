"""The seam between the generic kit and the assignment it grades.

The kit (sandbox, grade, build, validate, export, similarity, the Gradescope and otter entry
points) knows no assignment: whatever it needs of one, it takes from the *assignment package*
returned by :func:`current`. grading.toml ``[assignment] package = "..."`` names that package
(a Python package, by convention under ``adaline_kit/assignments/``); left out, it is the only
package found there.

An assignment package provides, in its ``__init__`` (imported also by the sandbox's zygote before
any student code runs, so it must stay light: no torch, no hidden checks at import time):

``NAME``
    its folder and notebook name: master ``solutions/NAME/NAME.ipynb``, student notebook and
    public tests ``assignments/NAME/``, bundles ``dist/NAME/``.
``TITLE``
    its title (the default gradebook column of ``export-grades``).
``DATA_FILE``, ``DATA_SOURCE``
    the one data file as the notebook reads it (a path relative to the notebook's folder, also
    its place in every bundle and grading folder) and its copy in the repository.
``CORPUS``
    the folder of the validation corpus (``adaline-kit validate``; one subfolder per group).
``QUESTIONS``, ``CHECK_WEIGHTS``, ``METHOD_RULE_COST``
    the questions its hidden checks grade (grading.toml ``[points]`` must declare exactly these),
    each question's checks with their default weights (``[weights.<question>]``), the default
    cost of breaking a method rule (``[method_rules]``).
``Settings``, ``SETTING_FORMS``, ``check_settings(settings, path)``
    the frozen dataclass of ``[assignment]``'s other keys (with ``as_dict()``), each key's
    ``(valid, expected form, conversion)``, and a check of the values together (raises
    :class:`~adaline_kit.settings.SettingsError`).
``STUBS``
    question -> the definitions students write, ``((class or None, function or None), ...)``
    (the similarity report compares those).
``load_data(data_file, settings=None)``
    the data its checks take, from the data file.
``grade_questions(probe, cells, settings, rng, data, questions=None)``
    the hidden checks: question -> :class:`~adaline_kit.outcomes.QuestionResult`; ``probe(name,
    args) -> dict`` runs one of its probes in the student process.
``withhold_unproven(results, settings)``, ``in_process_probe(namespace, runtime_spy)``,
``diagnoses()``, ``hidden_check_files()``
    results of a submission flagged for tampering; a probe over a namespace in this process
    (plain ``otter run``); the diagnosis catalogue (``CATALOGUE``, ``BY_KEY``); the hidden
    checks' source files (feedback must not quote them).
``load_answer_key(settings=None, scoring=None)``, ``provisional_answer_key(settings, data)``,
``record_answer_key(completed, settings, data, questions, scoring)``, ``write_answer_key(key)``
    the recorded answer key (with ``summary()``; refused in one line when recorded for other
    settings or, if ``scoring`` is given, other scoring declarations), one from the independent
    reference, build's run of the completed master notebook (returns the key and the executed
    notebook; ``scoring``, grading.toml's ``Settings.scoring()``, is recorded with it), and
    writing the key that ships with the grader.
``assignment_placeholders(settings)``, ``expected_placeholders(key)``
    the values of the notebooks' ``{assignment[KEY]}`` and ``{expected[KEY]}`` placeholders.

(Function names must not be those of the package's own modules: importing a module ``x`` of the
package sets the package's attribute ``x``.) And a module ``probes`` with ``run(name, namespace, args) -> dict`` and ``ProbeError``: the
student process imports it before confinement and runs the probes the checks ask for.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

from .settings import SETTINGS_FILE, SettingsError

ASSIGNMENTS = f"{__package__}.assignments"
REQUIRED = ("NAME", "TITLE", "DATA_FILE", "DATA_SOURCE", "CORPUS", "QUESTIONS", "CHECK_WEIGHTS",
            "METHOD_RULE_COST", "Settings", "SETTING_FORMS", "check_settings", "STUBS",
            "load_data", "grade_questions", "withhold_unproven", "in_process_probe", "diagnoses",
            "hidden_check_files", "load_answer_key", "provisional_answer_key", "record_answer_key",
            "write_answer_key", "assignment_placeholders", "expected_placeholders")


def installed() -> list[str]:
    """The packages under ``adaline_kit/assignments/``, by full name."""
    folder = Path(__file__).with_name("assignments")
    return sorted(f"{ASSIGNMENTS}.{module.name}" for module in pkgutil.iter_modules([str(folder)])
                  if module.ispkg)


@functools.lru_cache(maxsize=8)
def load(name: str | None = None, where: Path | str = SETTINGS_FILE) -> ModuleType:
    """Import the assignment package ``name`` (default: the only installed one) and check that
    it provides the interface; raise :class:`SettingsError` (one line naming ``where``)."""
    if name is None:
        found = installed()
        if len(found) != 1:
            raise SettingsError(f"{where}: [assignment] package is missing: name the assignment "
                                f"package (one of: {', '.join(found) or 'none installed'})")
        name = found[0]
    try:
        package = importlib.import_module(name)
    except ImportError as error:
        raise SettingsError(f"{where}: [assignment] package = {name!r}: cannot import it "
                            f"({error})") from None
    missing = [attribute for attribute in REQUIRED if not hasattr(package, attribute)]
    if missing:
        raise SettingsError(f"{where}: [assignment] package = {name!r} lacks "
                            f"{', '.join(missing)} (see adaline_kit.assignment)")
    return package


def current() -> ModuleType:
    """The assignment package grading.toml names."""
    from .settings import read_package_name

    return load(read_package_name(SETTINGS_FILE), SETTINGS_FILE)


def check_built() -> None:
    """Raise a one-line :class:`SettingsError` ("... run adaline-kit build") unless the answer
    key build recorded is for grading.toml's current ``[assignment]``, ``[points]``,
    ``[weights]`` and ``[method_rules]``: what the built notebook and autograder zip declare."""
    from .settings import load as load_settings

    settings = load_settings()
    current().load_answer_key(settings.assignment, scoring=settings.scoring())


def probes() -> ModuleType:
    """The current assignment's ``probes`` module (student side; imported before confinement)."""
    return importlib.import_module(f"{current().__name__}.probes")

"""The ``validate`` verb: grade the corpus of known submissions and check what the grader says.

The corpus (the assignment package's ``CORPUS`` folder) holds one folder per group
(``correct``, ``wrong``, ``faults``, ...) of submissions, each stating what the grader must say
about it (written by the corpus's ``casebook.py``): a notebook's metadata under ``adaline_kit_case``, or
a sidecar ``<file>.expect.json`` beside any file:

``expect``     question -> "full" | "zero" | "loses" | {"max": points} (| {"min": points})
``diagnosis``  question -> a diagnosis key (or a list of keys) the question must receive
``feedback``   question -> substrings its feedback must contain

:func:`validate` grades every case, either with the fast grader (one shared warm zygote, a pool
of threads, :func:`adaline_kit.grade.runner.grade_submission`: the hardened sandbox that
``adaline-kit grade`` uses) or through an autograder zip exactly as Gradescope runs it
(:func:`adaline_kit.grade.emulation.run_like_gradescope`), and judges each case:

* a question expected to lose points must lose them (else the mistake was missed);
* a question expected at full marks must keep them (else a false failure);
* every expected diagnosis must be received, and every received diagnosis must be shown to the
  student in words (its catalogue message appears in the question's feedback);
* no feedback may contain a line of the hidden checks' code (:func:`hidden_code_lines`);
* the grader itself must not fail (report status ``error``).

In the Gradescope mode the diagnoses are read back from the feedback text (results.json carries
no keys), which checks the same thing from the student's side.

The public checks (the student bundle's ``tests/q*.py``) are also run on every ``correct`` and
``wrong`` case (:mod:`.public`): a correct case that fails one is a problem; the public catch
rate (wrong cases whose public checks fail on every question expected to lose) and the public
false-failure rate are printed beside the hidden ones.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import tempfile
import threading
import time
import tokenize
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable

from ..grade.submission import SUBMISSION_SUFFIXES

METADATA_KEY = "adaline_kit_case"
SIDECAR_SUFFIX = ".expect.json"
# A line of hidden code shorter than this is too generic to count as a leak ("else:", ")").
MIN_HIDDEN_LINE = 24


class CorpusError(Exception):
    """The corpus cannot be used as it is (missing file, unreadable expectations); one line."""


# --- the corpus --------------------------------------------------------------------------------

@dataclasses.dataclass
class CorpusCase:
    group: str
    name: str           # the file name inside the group folder
    path: Path
    expect: dict
    diagnosis: dict
    feedback: dict
    description: str = ""

    @property
    def label(self) -> str:
        return f"{self.group}/{self.name}"

    def expected_diagnoses(self, question: str) -> list[str]:
        wanted = self.diagnosis.get(question) or []
        return [wanted] if isinstance(wanted, str) else list(wanted)


def default_corpus() -> Path:
    """The assignment package's validation corpus."""
    from ..assignment import current

    return Path(current().CORPUS)


def _read_expectations(path: Path, label: str) -> dict:
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    source = sidecar if sidecar.exists() else path
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise CorpusError(f"corpus case {label}: cannot read its expectations from "
                          f"{source.name} ({reason})") from None
    meta = raw if source is sidecar else (raw.get("metadata") or {}).get(METADATA_KEY) \
        if isinstance(raw, dict) else None
    if not isinstance(meta, dict):
        raise CorpusError(f"corpus case {label}: {source.name} has no '{METADATA_KEY}' "
                          "expectations (regenerate the corpus with its casebook.py)")
    return meta


def _checked(meta: dict, label: str, questions: Iterable[str], catalogue: set) -> dict:
    questions = set(questions)
    expect = meta.get("expect")
    if not isinstance(expect, dict) or not expect:
        raise CorpusError(f"corpus case {label}: 'expect' must map questions to expectations")
    for question, value in expect.items():
        if question not in questions:
            raise CorpusError(f"corpus case {label}: unknown question {question!r} in 'expect'")
        valid = value in ("full", "zero", "loses") or (
            isinstance(value, dict) and set(value) <= {"max", "min"} and value
            and all(isinstance(v, (int, float)) for v in value.values()))
        if not valid:
            raise CorpusError(f"corpus case {label}: expectation {value!r} for {question} is "
                              "not full, zero, loses or {\"max\": points}")
    for field in ("diagnosis", "feedback"):
        entries = meta.get(field) or {}
        if not isinstance(entries, dict) or set(entries) - questions:
            raise CorpusError(f"corpus case {label}: '{field}' must map questions "
                              f"({', '.join(sorted(questions))}) to values")
    for question, keys in (meta.get("diagnosis") or {}).items():
        for key in [keys] if isinstance(keys, str) else keys:
            if key not in catalogue:
                raise CorpusError(f"corpus case {label}: diagnosis {key!r} for {question} is "
                                  "not in the diagnosis catalogue")
    return meta


def discover(corpus: Path, groups: Iterable[str] | None = None) -> list[CorpusCase]:
    """Every case of the corpus (or of ``groups``), sorted by group and name.

    A case is a file with a sidecar ``<file>.expect.json``, or a notebook whose metadata holds
    the expectations. CorpusError (one line) for a missing folder or group, a sidecar without
    its file, or a notebook or zip whose expectations cannot be read.
    """
    from ..assignment import current
    from ..settings import questions

    diagnoses = current().diagnoses()
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise CorpusError(f"no corpus folder at {corpus} (pass --corpus DIR)")
    folders = sorted(p for p in corpus.iterdir() if p.is_dir()
                     and not p.name.startswith((".", "_")))
    if groups:
        wanted = list(dict.fromkeys(groups))
        missing = [g for g in wanted if not (corpus / g).is_dir()]
        if missing:
            raise CorpusError(f"no group {missing[0]!r} in the corpus {corpus}")
        folders = [corpus / g for g in wanted]
    catalogue = set(diagnoses.BY_KEY)
    cases = []
    for folder in folders:
        names = sorted(p.name for p in folder.iterdir())
        sidecars = {n[:-len(SIDECAR_SUFFIX)] for n in names if n.endswith(SIDECAR_SUFFIX)}
        for name in sorted(sidecars | {n for n in names if n.endswith(SUBMISSION_SUFFIXES)}):
            label = f"{folder.name}/{name}"
            path = folder / name
            if not path.is_file():
                raise CorpusError(f"corpus case {label}: the file is missing (its expectations "
                                  f"are in {name}{SIDECAR_SUFFIX})")
            if not os.access(path, os.R_OK):
                raise CorpusError(f"corpus case {label}: the file is not readable")
            meta = _checked(_read_expectations(path, label), label, questions(), catalogue)
            cases.append(CorpusCase(folder.name, name, path, dict(meta["expect"]),
                                    dict(meta.get("diagnosis") or {}),
                                    dict(meta.get("feedback") or {}),
                                    str(meta.get("description") or "")))
    if not cases:
        raise CorpusError(f"the corpus {corpus} holds no cases")
    return cases


# --- what the student sees ---------------------------------------------------------------------

def _code_line_numbers(text: str) -> dict[int, int]:
    """Line number -> column where the code of that line ends (its comment starts, or -1), for
    the lines holding a name or keyword outside strings and comments (a line of message text
    or of numbers is not code)."""
    lines: dict[int, int] = {}
    comments: dict[int, int] = {}
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.NAME:
            lines.setdefault(token.start[0], 0)
        elif token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.start[1]
    return {number: comments.get(number, -1) for number in lines}


def _given_lines() -> set[str]:
    """Stripped code lines of the master and student notebooks (code the students are given)."""
    import nbformat

    from ..build import paths

    given = set()
    for notebook_path in (paths.MASTER_NOTEBOOK, paths.STUDENT_NOTEBOOK):
        try:
            notebook = nbformat.read(notebook_path, as_version=4)
        except (OSError, ValueError):
            continue
        for cell in notebook.cells:
            if cell.cell_type == "code":
                given.update(line.strip() for line in cell.source.splitlines())
    return given


def hidden_code_lines(package_dir: Path | None = None) -> set[str]:
    """Distinctive lines of the hidden checks' code (the assignment package's
    ``hidden_check_files()``, or ``package_dir/checks/*.py``).

    A line counts when it holds code outside strings and comments (message text alone is meant
    to be shown), is at least ``MIN_HIDDEN_LINE`` characters long without its comment, and is
    not also a line of the notebook the students are given.
    """
    if package_dir is None:
        from ..assignment import current

        files = current().hidden_check_files()
    else:
        files = sorted((Path(package_dir) / "checks").glob("*.py"))
    hidden = set()
    for path in files:
        text = path.read_text(encoding="utf-8")
        source_lines = text.splitlines()
        for number, comment_at in _code_line_numbers(text).items():
            line = source_lines[number - 1]
            line = (line[:comment_at] if comment_at >= 0 else line).strip()
            if len(line) >= MIN_HIDDEN_LINE:
                hidden.add(line)
    return hidden - _given_lines()


def leaked_lines(text: str, hidden: Iterable[str]) -> list[str]:
    return sorted(line for line in hidden if line in text)


@dataclasses.dataclass(frozen=True)
class _Pattern:
    key: str
    regex: re.Pattern


def _diagnosis_patterns() -> list[_Pattern]:
    from ..assignment import current

    diagnoses = current().diagnoses()
    patterns = []
    for entry in diagnoses.CATALOGUE:
        parts = re.split(r"\{[^{}]*\}", entry.message)
        patterns.append(_Pattern(entry.key, re.compile(".*?".join(re.escape(p) for p in parts))))
    return patterns


def diagnoses_in_text(text: str) -> list[str]:
    """The catalogue keys whose student-facing message appears in ``text``, catalogue order."""
    return [p.key for p in _diagnosis_patterns() if p.regex.search(text)]


# --- grading -----------------------------------------------------------------------------------

@dataclasses.dataclass
class QuestionOutcome:
    score: float
    max_score: float
    diagnoses: list[str]
    feedback: str


@dataclasses.dataclass
class Received:
    """What the grader said about one case. ``error``: the grading itself failed."""

    status: str
    questions: dict[str, QuestionOutcome]
    output: str = ""
    seed: int | None = None
    seconds: float = 0.0
    error: str = ""


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _from_report(report, seconds: float) -> Received:
    from ..grade.feedback import question_feedback

    questions = {q: QuestionOutcome(r.score, r.max_score, _unique(r.diagnoses),
                                    question_feedback(r))
                 for q, r in report.questions.items()}
    error = report.message if report.status == "error" else ""
    return Received(report.status, questions, report.message, report.seed, seconds, error)


def _from_results(results: dict, seconds: float) -> Received:
    questions = {}
    for test in results.get("tests", []):
        output = test.get("output", "")
        questions[test["name"]] = QuestionOutcome(float(test["score"]), float(test["max_score"]),
                                                  diagnoses_in_text(output), output)
    extra = results.get("extra_data") or {}
    status = extra.get("status", "graded")
    output = results.get("output", "")
    return Received(status, questions, output, extra.get("probe_seed"), seconds,
                    output if status == "error" else "")


class _SharedZygote:
    """One warm zygote for every worker thread; started again (once) if it dies."""

    def __init__(self):
        from ..grade.sandbox import Zygote

        self._factory = Zygote
        self._lock = threading.Lock()
        self.zygote = Zygote()
        self.generation = 0

    def grade(self, path: Path, settings, data, data_file: Path, seed: int | None):
        from ..grade.runner import grade_submission

        for attempt in range(2):
            zygote, generation = self.zygote, self.generation
            report = grade_submission(path, zygote, settings, data, data_file, seed)
            if report.status != "error" or zygote.process.poll() is None or attempt:
                return report
            with self._lock:  # the sandbox died under this submission: once more, anew
                if generation == self.generation:
                    zygote.close()
                    self.zygote = self._factory()
                    self.generation += 1
        return report

    def close(self) -> None:
        self.zygote.close()


Progress = Callable[[CorpusCase, Received], None]


def grade_fast(cases: list[CorpusCase], jobs: int, seed: int | None = None,
               on_result: Progress | None = None) -> dict[str, Received]:
    """Grade ``cases`` with ``jobs`` threads sharing one warm zygote (the hardened sandbox of
    ``adaline-kit grade``; no result files or plots are written)."""
    from .. import settings as settings_module
    from ..assignment import current
    from ..build import paths

    settings = settings_module.load()
    data_file = paths.DATA_FILE
    data = current().load_data(data_file)
    shared = _SharedZygote()

    def grade_one(case: CorpusCase) -> Received:
        started = time.monotonic()
        report = shared.grade(case.path, settings, data, data_file, seed)
        return _from_report(report, time.monotonic() - started)

    try:
        return _run_pool(cases, jobs, grade_one, on_result)
    finally:
        shared.close()


def grade_gradescope(cases: list[CorpusCase], jobs: int, autograder: Path | None,
                     on_result: Progress | None = None,
                     on_build: Callable[[Path], None] | None = None) -> dict[str, Received]:
    """Grade each case with the autograder zip as Gradescope runs it (built into a temporary
    folder when ``autograder`` is None)."""
    from ..grade.emulation import gradescope_python, run_like_gradescope

    with tempfile.TemporaryDirectory(prefix="adaline-kit-validate-") as tmp:
        tmp = Path(tmp)
        if autograder is None:
            from ..build import autograder_zip

            autograder = autograder_zip.build(tmp / "autograder.zip")
        if on_build is not None:
            on_build(autograder)
        python = gradescope_python()

        def grade_one(case: CorpusCase) -> Received:
            started = time.monotonic()
            try:
                results = run_like_gradescope(autograder, case.path, python)
            except Exception as error:  # noqa: BLE001 - no results.json: the autograder failed
                detail = str(error).strip().splitlines()
                return Received("error", {}, "", None, time.monotonic() - started,
                                f"{type(error).__name__}: {detail[0] if detail else ''}")
            return _from_results(results, time.monotonic() - started)

        return _run_pool(cases, jobs, grade_one, on_result)


PUBLIC_GROUPS = ("correct", "wrong")


def run_public(cases: list[CorpusCase], jobs: int) -> dict[str, dict]:
    """Case label -> question -> whether its public checks pass, for the cases of
    ``PUBLIC_GROUPS`` (see :mod:`.public`)."""
    from ..build import paths
    from .public import public_results_many

    chosen = [c for c in cases if c.group in PUBLIC_GROUPS]
    if not chosen:
        return {}
    found = public_results_many([c.path for c in chosen], paths.STUDENT_NOTEBOOK.parent / "tests",
                                paths.DATA_FILE, jobs)
    return {c.label: found.get(str(c.path), {}) for c in chosen}


def judge_public(case: CorpusCase, public: dict | None) -> list[str]:
    """A correct case must pass every public check."""
    if public is None or case.group != "correct":
        return []
    failing = [q for q, e in case.expect.items() if e == "full" and not public.get(q)]
    return [f"{q}: the public checks fail on a correct submission" for q in failing]


def _run_pool(cases, jobs, grade_one, on_result) -> dict[str, Received]:
    received: dict[str, Received] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(cases)))) as pool:
        futures = {pool.submit(grade_one, case): case for case in cases}
        for future in as_completed(futures):
            case = futures[future]
            received[case.label] = future.result()
            if on_result is not None:
                on_result(case, received[case.label])
    return received


# --- judging -------------------------------------------------------------------------------------

def meets(expectation, score: float, max_score: float) -> bool:
    if expectation == "full":
        return score >= max_score
    if expectation == "zero":
        return score == 0
    if expectation == "loses":
        return score < max_score
    return score <= expectation.get("max", max_score) and score >= expectation.get("min", 0)


def _expected_text(expectation) -> str:
    if isinstance(expectation, str):
        return expectation
    return " ".join(f"{k} {v:g}" for k, v in expectation.items())


def judge(case: CorpusCase, received: Received, hidden: Iterable[str]) -> list[str]:
    """The problems with what the grader said about ``case`` (empty: as expected)."""
    problems = []
    if received.error:
        problems.append(f"the grader failed: {received.error.strip().splitlines()[0]}")
    for question, expectation in case.expect.items():
        outcome = received.questions.get(question)
        if outcome is None:
            problems.append(f"{question}: no result")
            continue
        score = f"{outcome.score:g}/{outcome.max_score:g}"
        if not meets(expectation, outcome.score, outcome.max_score):
            if expectation == "full":
                problems.append(f"{question}: a correct answer lost points ({score})")
            elif expectation == "loses":
                problems.append(f"{question}: the mistake was missed (full marks, {score})")
            else:
                problems.append(f"{question}: expected {_expected_text(expectation)}, "
                                f"got {score}")
    for question, outcome in received.questions.items():
        for key in case.expected_diagnoses(question):
            if key not in outcome.diagnoses:
                got = ", ".join(outcome.diagnoses) or "none"
                problems.append(f"{question}: diagnosis {key} missing (got {got})")
        shown = set(diagnoses_in_text(outcome.feedback))
        for key in outcome.diagnoses:
            if key not in shown:
                problems.append(f"{question}: diagnosis {key} is not explained in the feedback")
        for text in case.feedback.get(question) or []:
            if text not in outcome.feedback:
                problems.append(f"{question}: the feedback does not say {text!r}")
    leaks = leaked_lines("\n".join([received.output]
                                   + [o.feedback for o in received.questions.values()]), hidden)
    if leaks:
        problems.append(f"the feedback shows {len(leaks)} line(s) of the hidden checks' code, "
                        f"e.g. {leaks[0]!r}")
    return problems


@dataclasses.dataclass
class CaseResult:
    case: CorpusCase
    received: Received
    problems: list[str]
    public: dict | None = None  # question -> public checks pass (None: not run)

    @property
    def lost(self) -> dict[str, bool]:
        return {q: o.score < o.max_score for q, o in self.received.questions.items()}


@dataclasses.dataclass
class Validation:
    results: list[CaseResult]
    seconds: float
    mode: str

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if r.problems]

    def _group(self, group: str) -> list[CaseResult]:
        return [r for r in self.results if r.case.group == group]

    @property
    def caught(self) -> tuple[int, int]:
        """(wrong cases that lost points on every question expected to lose, wrong cases)."""
        wrong = self._group("wrong")
        caught = sum(1 for r in wrong
                     if all(r.lost.get(q, False) for q, e in r.case.expect.items()
                            if e != "full") and not r.received.error)
        return caught, len(wrong)

    @property
    def false_failures(self) -> tuple[int, int]:
        """(correct cases that lost points on a question expected full, correct cases)."""
        correct = self._group("correct")
        failed = sum(1 for r in correct
                     if r.received.error or any(r.lost.get(q, True)
                                                for q, e in r.case.expect.items()
                                                if e == "full"))
        return failed, len(correct)

    @property
    def public_caught(self) -> tuple[int, int]:
        """(wrong cases whose public checks fail on every question expected to lose, wrong
        cases whose public checks ran)."""
        wrong = [r for r in self._group("wrong") if r.public is not None]
        caught = sum(1 for r in wrong if all(r.public.get(q) is False
                                             for q, e in r.case.expect.items() if e != "full"))
        return caught, len(wrong)

    @property
    def public_false_failures(self) -> tuple[int, int]:
        correct = [r for r in self._group("correct") if r.public is not None]
        failed = sum(1 for r in correct if judge_public(r.case, r.public))
        return failed, len(correct)

    def public_line(self) -> str:
        caught, wrong = self.public_caught
        failed, correct = self.public_false_failures
        if not wrong and not correct:
            return "public checks not run"
        catch = f"{100 * caught / wrong:.1f}%" if wrong else "n/a"
        false = f"{100 * failed / correct:.1f}%" if correct else "n/a"
        return (f"public checks: catch rate {catch} of {wrong} wrong submissions, "
                f"false-failure rate {false} of {correct} correct submissions")

    def rates_line(self) -> str:
        caught, wrong = self.caught
        failed, correct = self.false_failures
        catch = f"{100 * caught / wrong:.1f}%" if wrong else "n/a"
        false = f"{100 * failed / correct:.1f}%" if correct else "n/a"
        return (f"catch rate {catch} of {wrong} wrong submissions, "
                f"false-failure rate {false} of {correct} correct submissions")


    def as_json(self) -> dict:
        """Everything the run found, for ``--report`` (plain JSON)."""
        caught, wrong = self.caught
        failed, correct = self.false_failures
        return {
            "mode": self.mode,
            "seconds": round(self.seconds, 1),
            "catch": {"caught": caught, "wrong": wrong},
            "false_failures": {"failed": failed, "correct": correct},
            "summary": self.rates_line(),
            "public_summary": self.public_line(),
            "cases": [{
                "case": r.case.label, "group": r.case.group,
                "description": r.case.description, "expect": r.case.expect,
                "diagnosis": r.case.diagnosis, "status": r.received.status,
                "seed": r.received.seed, "seconds": round(r.received.seconds, 2),
                "questions": {q: dataclasses.asdict(o) for q, o in r.received.questions.items()},
                "output": r.received.output, "problems": r.problems, "public": r.public,
            } for r in self.results],
        }


def validate(cases: list[CorpusCase], jobs: int, gradescope: bool = False,
             autograder: Path | None = None, seed: int | None = None,
             on_result: Progress | None = None,
             on_build: Callable[[Path], None] | None = None, public: bool = True) -> Validation:
    """Grade ``cases`` and judge each one (see the module docstring); ``public``: also run the
    public checks on the correct and wrong cases."""
    started = time.monotonic()
    hidden = hidden_code_lines()
    if gradescope:
        received = grade_gradescope(cases, jobs, autograder, on_result, on_build)
    else:
        received = grade_fast(cases, jobs, seed, on_result)
    publics = run_public(cases, jobs) if public else {}
    results = [CaseResult(case, received[case.label],
                          judge(case, received[case.label], hidden)
                          + judge_public(case, publics.get(case.label)),
                          publics.get(case.label))
               for case in cases]
    return Validation(results, time.monotonic() - started,
                      "gradescope" if gradescope else "fast")


__all__ = ["CorpusCase", "CorpusError", "Validation", "run_public", "judge_public", "default_corpus", "diagnoses_in_text",
           "discover", "hidden_code_lines", "judge", "leaked_lines", "meets", "validate"]

"""What ``adaline-kit grade`` writes besides the gradebook.

Per submission (``OUT/<key>/``): ``results.json`` (Gradescope's format, validated),
``feedback.md`` (the feedback page, plots linked), ``feedback.html`` (the same page with the plots
embedded: one self-contained file to hand back) and ``loss_curve_qN.png`` (the student's training
loss per epoch against the reference's, for each question that trained a model).

For the class: ``feedback.zip`` (one ``feedback.html`` per submission, named after the student
and the submission), ``summary.png`` (score histogram, full-marks rate per question, most common
diagnoses) and a one-line printed summary.

Everything shown to students is built from the grader's messages (never a check's code), and
everything that came from the student's code is escaped. Plots use matplotlib's object API with
the Agg canvas (no pyplot state), behind a lock, so worker threads can draw safely.
"""

from __future__ import annotations

import base64
import collections
import html
import json
import math
import os
import re
import statistics
import threading
import unicodedata
import uuid
import zipfile
from pathlib import Path
from typing import Sequence

from ..settings import questions as declared_questions
from . import gradescope_results
from .feedback import question_feedback
from .stats import submissions_per_diagnosis

_PLOT_LOCK = threading.Lock()
PLOT_DPI = 80


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=PLOT_DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, format="png")


# --- one submission ------------------------------------------------------------------------------

def _finite_series(values) -> list[float] | None:
    if not isinstance(values, (list, tuple)):
        return None
    series = []
    for value in values[:100000]:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        series.append(number if math.isfinite(number) else math.nan)
    return series


class _CurvePlot:
    """One figure, drawn again for every plot: building axes and ticks anew would cost as much
    as the drawing itself (the plots are a visible share of a submission's grading time)."""

    def __init__(self):
        self.figure = _figure(5.0, 3.2)
        self.figure.subplots_adjust(left=0.15, right=0.97, top=0.9, bottom=0.15)
        self.axes = self.figure.add_subplot()
        self.reference, = self.axes.plot([], [], color="0.6", linewidth=4, alpha=0.6,
                                         label="reference")
        self.student, = self.axes.plot([], [], color="tab:blue", marker="o", markersize=3,
                                       label="your code")
        self.missing = self.axes.text(0.5, 0.5, "no loss curve from your code", ha="center",
                                      va="center", color="tab:red", transform=self.axes.transAxes)
        self.axes.set_xlabel("epoch")
        self.axes.set_ylabel("training loss (MSE)")
        self.axes.legend(loc="best", fontsize="small")
        self.axes.grid(alpha=0.3)
        from matplotlib.ticker import MaxNLocator

        self.axes.xaxis.set_major_locator(MaxNLocator(integer=True))

    def draw(self, question: str, student: list[float], reference: list[float], path: Path):
        self.reference.set_data(range(1, len(reference) + 1), reference)
        self.student.set_data(range(1, len(student) + 1), student)
        self.missing.set_visible(not student)
        values = [v for v in student + reference if not math.isnan(v)]
        log = bool(values) and min(values) > 0 and max(values) / min(values) > 100
        self.axes.set_yscale("log" if log else "linear")
        self.axes.relim()
        self.axes.autoscale_view()
        self.axes.set_title(f"{question}: loss per epoch")
        self.figure.savefig(path, format="png")


_curve_plot: _CurvePlot | None = None


def loss_curve_png(question: str, curve: dict, path: Path) -> bool:
    """Plot the student's and the reference's loss per epoch; False if there is nothing to plot."""
    global _curve_plot
    if not isinstance(curve, dict):
        return False
    student = _finite_series(curve.get("student")) or []
    reference = _finite_series(curve.get("reference")) or []
    if not any(not math.isnan(v) for v in student + reference):
        return False
    with _PLOT_LOCK:
        if _curve_plot is None:
            _curve_plot = _CurvePlot()
        _curve_plot.draw(question, student, reference, path)
    return True


def _fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def student_status(status: str) -> str:
    """The status a student's feedback shows: a flag is for course staff only."""
    return "graded" if status == "flagged" else status


def _title(job, report) -> str:
    return f"Feedback: {job.student or job.key}"


def feedback_markdown(job, report, plots: dict[str, str]) -> str:
    lines = [f"# {_title(job, report)}", "",
             f"- Submission: `{job.key}`",
             f"- Score: **{report.total:g} / {report.max_total:g}**",
             f"- Status: {student_status(report.status)}", ""]
    if report.message:
        fence = _fence(report.message)
        lines += [fence + "text", report.message, fence, ""]
    for name, question in report.questions.items():
        lines += [f"## {name}: {question.score:g} / {question.max_score:g}", ""]
        text = question_feedback(question)
        fence = _fence(text)
        lines += [fence + "text", text, fence, ""]
        if name in plots:
            lines += [f"![{name}: your training loss against the reference]({plots[name]})", ""]
    return "\n".join(lines)


_HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
pre { background: #f5f5f5; padding: .75rem; white-space: pre-wrap; border-radius: 4px; }
.score { font-size: 1.25rem; } img { max-width: 100%; }
"""


def feedback_html(job, report, plot_files: dict[str, Path]) -> str:
    """The feedback page as one HTML file, plots embedded; every text escaped."""
    escape = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(_title(job, report))}</title>",
             f"<style>{_HTML_STYLE}</style></head><body>",
             f"<h1>{escape(_title(job, report))}</h1>",
             f"<p>Submission <code>{escape(job.key)}</code></p>",
             f'<p class="score">Score: <strong>{report.total:g} / {report.max_total:g}</strong>'
             f" ({escape(student_status(report.status))})</p>"]
    if report.message:
        parts.append(f"<pre>{escape(report.message)}</pre>")
    for name, question in report.questions.items():
        parts.append(f"<h2>{escape(name)}: {question.score:g} / {question.max_score:g}</h2>")
        parts.append(f"<pre>{escape(question_feedback(question))}</pre>")
        if name in plot_files:
            data = base64.b64encode(plot_files[name].read_bytes()).decode()
            parts.append(f'<img alt="{escape(name)}: your training loss against the reference" '
                         f'src="data:image/png;base64,{data}">')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_submission_files(folder: Path, job, report, settings, plots: bool = True) -> None:
    """results.json (validated), the plots and the feedback pages of one submission."""
    results = gradescope_results.build(report, settings)
    gradescope_results.validate(results)
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    plot_files: dict[str, Path] = {}
    for name, question in report.questions.items() if plots else ():
        if question.curve:
            path = folder / f"loss_curve_{name}.png"
            if loss_curve_png(name, question.curve, path):
                plot_files[name] = path
    (folder / "feedback.md").write_text(
        feedback_markdown(job, report, {q: p.name for q, p in plot_files.items()}))
    (folder / "feedback.html").write_text(feedback_html(job, report, plot_files))


# --- the class -----------------------------------------------------------------------------------

def file_name_part(text: str, limit: int = 60) -> str:
    """``text`` for a file name: letters of every script kept (NFC), everything else but digits,
    ``.`` and ``-`` turned into ``_``; ``Łukasz Kaiser`` -> ``Łukasz_Kaiser``."""
    text = unicodedata.normalize("NFC", text)
    return re.sub(r"[^\w.-]+", "_", text).strip("._-")[:limit]


def _file_label(record: dict) -> str:
    people = record.get("submitters") or []
    name = people[0].get("name", "") if people and isinstance(people[0], dict) else ""
    name = file_name_part(name)
    return f"{name}__{record['key']}" if name else record["key"]


def _with_overrides(page: str, record: dict) -> str:
    """The feedback page with the course staff's overrides shown under the score."""
    from .overrides import feedback_section

    if not record.get("overrides"):
        return page
    marker = '<p class="score">'
    start = page.find(marker)
    end = page.find("</p>", start) + len("</p>") if start >= 0 else -1
    if end < len("</p>"):
        return page.replace("</body>", feedback_section(record) + "</body>", 1)
    return page[:end] + "\n" + feedback_section(record) + page[end:]


def write_feedback_zip(out: Path, records: Sequence[dict]) -> Path:
    """``feedback.zip``: ``<Student_Name>__<submission>.html`` per submission (plots inside);
    a record's ``overrides`` (see :mod:`.overrides`) are shown on its page."""
    target = out / "feedback.zip"
    temporary = out / f".feedback.zip.{uuid.uuid4().hex[:8]}.tmp"
    try:
        used: set[str] = set()
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for record in records:
                page = out / record["key"] / "feedback.html"
                if not page.is_file():
                    continue
                label = _file_label(record)
                while label.lower() in used:
                    label += "_"
                used.add(label.lower())
                archive.writestr(f"{label}.html",
                                 _with_overrides(page.read_text(encoding="utf-8"), record))
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target



class ClassSummary:
    """Statistics over the records of one run: totals, full-marks rates, common diagnoses."""

    def __init__(self, records: Sequence[dict]):
        self.records = list(records)
        self.count = len(self.records)
        self.totals = [float(r.get("total", 0)) for r in self.records]
        self.max_total = max((float(r.get("max_total", 0)) for r in self.records), default=0.0)
        self.statuses = collections.Counter(r.get("status", "?") for r in self.records)
        self.pass_rates: dict[str, float] = {}
        for question in declared_questions():
            results = [r.get("questions", {}).get(question) for r in self.records]
            passed = sum(1 for q in results if q and q["score"] >= q["max_score"] > 0)
            self.pass_rates[question] = passed / self.count if self.count else 0.0
        self.diagnoses = submissions_per_diagnosis(self.records)  # submissions, not questions
        self.confinement = collections.Counter(  # submissions whose code ran
            r["confinement"] for r in self.records if r.get("confinement"))

    @property
    def unconfined(self) -> int:
        return sum(n for c, n in self.confinement.items() if c.startswith("unconfined"))

    def confinement_line(self) -> str:
        """``confined: 41/41 (user nobody + landlock ABI 7; caps: ...)``, or how many were not."""
        ran = sum(self.confinement.values())
        if not ran:
            return "confined: no submission ran"
        kinds = ", ".join(f"{c}" if len(self.confinement) == 1 else f"{n} {c}"
                          for c, n in self.confinement.most_common())
        return f"confined: {ran - self.unconfined}/{ran} ({kinds})"

    def confinement_warning(self) -> str | None:
        if not self.unconfined:
            return None
        return (f"WARNING: {self.unconfined} submission(s) ran unconfined, as the grader's own "
                "user without Landlock: their code could read and change your files (see the "
                "confinement column of grades.csv).")

    @property
    def mean_total(self) -> float:
        return statistics.fmean(self.totals) if self.totals else 0.0

    def line(self) -> str:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items()))
        rates = ", ".join(f"{q} {rate:.0%}" for q, rate in self.pass_rates.items())
        top = ", ".join(f"{d} ({n})" for d, n in self.diagnoses.most_common(5)) or "none"
        return (f"{self.count} submissions ({statuses}): mean total {self.mean_total:.2f} / "
                f"{self.max_total:g}; full marks {rates}; top diagnoses: {top}; "
                f"{self.confinement_line()}")

    def write_png(self, path: Path) -> Path:
        from matplotlib.ticker import MaxNLocator

        with _PLOT_LOCK:
            figure = _figure(15.0, 4.2)
            histogram, rates, causes = figure.subplots(1, 3)
            top = max(self.max_total, max(self.totals, default=0.0), 1.0)
            bins = [i * 0.5 for i in range(int(math.ceil(top * 2)) + 2)]
            histogram.hist(self.totals, bins=bins, color="tab:blue", edgecolor="white")
            histogram.set_title(f"Total score ({self.count} submissions, "
                                f"mean {self.mean_total:.2f})")
            histogram.set_xlabel(f"total / {self.max_total:g}")
            histogram.set_ylabel("submissions")
            histogram.yaxis.set_major_locator(MaxNLocator(integer=True))
            names = list(self.pass_rates)
            values = [100 * self.pass_rates[q] for q in names]
            bars = rates.bar(names, values, color="tab:green")
            rates.bar_label(bars, labels=[f"{v:.0f}%" for v in values])
            rates.set_ylim(0, 110)
            rates.set_title("Full marks per question")
            rates.set_ylabel("% of submissions")
            common = self.diagnoses.most_common(8)
            if common:
                labels = [d for d, _ in common][::-1]
                causes.barh(labels, [n for _, n in common][::-1], color="tab:orange")
                causes.set_xlabel("submissions")
                causes.xaxis.set_major_locator(MaxNLocator(integer=True))
            else:
                causes.text(0.5, 0.5, "no diagnoses", ha="center", va="center",
                            transform=causes.transAxes)
                causes.set_xticks([])
                causes.set_yticks([])
            causes.set_title("Most common diagnoses")
            temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                _save(figure, temporary)
                os.replace(temporary, path)
            finally:
                temporary.unlink(missing_ok=True)
        return path

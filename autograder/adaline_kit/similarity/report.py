"""``similarity.csv`` (every pair) and ``similarity.html`` (the top pairs, code side by side)."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Sequence

from ..grade.gradebook import safe_text, write_text
from .compare import MARGIN, Pair
from .stubs import describe, stubs

PAIR_COLUMNS = ("rank", "score", "similarity", "class_share", "submission_a", "student_a",
                "submission_b", "student_b")
HTML_PAIRS = 50


def csv_columns() -> tuple[str, ...]:
    """similarity.csv's header: the pair, then one similarity column per question."""
    return (*PAIR_COLUMNS, *(f"similarity_{q}" for q in stubs()))


EXPLANATION = (
    "This report only informs: it changes no score. It compares what each student wrote in the "
    "stubs ({stubs}), with the given code removed, comments and formatting ignored and local "
    "names normalised. Independent correct "
    "solutions of a ten-line function are often alike, so likeness alone proves nothing: "
    "<em>class share</em> is the fraction of the other submissions at least as alike "
    f"(within {MARGIN:g}) to one of the pair, and the <em>score</em> ranks likeness that the rest "
    "of the class does not share above likeness that it does. Read the code before concluding "
    "anything.")


def _fraction(value: float) -> str:
    return f"{value:.3f}"


def render_csv(pairs: Sequence[Pair]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(), lineterminator="\n")
    writer.writeheader()
    for rank, pair in enumerate(pairs, 1):
        row = {"rank": rank, "score": _fraction(pair.score),
               "similarity": _fraction(pair.similarity),
               "class_share": _fraction(pair.class_share),
               "submission_a": safe_text(pair.a.key), "student_a": safe_text(pair.a.label),
               "submission_b": safe_text(pair.b.key), "student_b": safe_text(pair.b.label)}
        for q in stubs():
            row[f"similarity_{q}"] = (_fraction(pair.per_question[q])
                                      if q in pair.per_question else "")
        writer.writerow(row)
    return buffer.getvalue()


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table.code { width: 100%; table-layout: fixed; border-collapse: collapse; }
table.code td { vertical-align: top; width: 50%; padding: 0 .5rem; }
pre { background: #f5f5f5; padding: .5rem; white-space: pre-wrap; font-size: .85rem; }
.pair { border-top: 1px solid #ccc; margin-top: 1.5rem; padding-top: .5rem; }
"""


def _who(student) -> str:
    return html.escape(f"{student.label} ({student.key})" if student.label else student.key)


def render_html(pairs: Sequence[Pair], count: int) -> str:
    escape = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>Similarity of the stub code</title>", f"<style>{_STYLE}</style></head><body>",
             "<h1>Similarity of the stub code</h1>",
             f"<p>{EXPLANATION.format(stubs=escape(describe()))}</p>",
             f"<p>{count} submissions with readable code, {len(pairs)} pairs; the top "
             f"{min(HTML_PAIRS, len(pairs))} are shown (all are in similarity.csv).</p>"]
    for rank, pair in enumerate(pairs[:HTML_PAIRS], 1):
        parts.append(f'<div class="pair"><h2>{rank}. {_who(pair.a)} &harr; {_who(pair.b)}</h2>')
        parts.append(f"<p>score <strong>{pair.score:.2f}</strong>, similarity "
                     f"{pair.similarity:.2f}, class share {pair.class_share:.2f}</p>")
        for q in stubs():
            if q not in pair.per_question:
                continue
            parts.append(f"<h3>{escape(q)}: similarity {pair.per_question[q]:.2f}, "
                         f"{pair.shares[q]:.0%} of the others as alike</h3>")
            left = escape("\n".join(pair.a.code[q].lines) or "(no code)")
            right = escape("\n".join(pair.b.code[q].lines) or "(no code)")
            parts.append(f'<table class="code"><tr><td><pre>{left}</pre></td>'
                         f"<td><pre>{right}</pre></td></tr></table>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(out: Path, pairs: Sequence[Pair], count: int) -> tuple[Path, Path]:
    csv_path = write_text(Path(out) / "similarity.csv", render_csv(pairs))
    html_path = write_text(Path(out) / "similarity.html", render_html(pairs, count))
    return csv_path, html_path

"""Rank pairs of submissions by how alike their stub code is, rarer likeness first.

For each question, the similarity of two submissions is :class:`difflib.SequenceMatcher`'s ratio
of their normalised token sequences (0 to 1; a question where neither wrote code is left out,
one where only one did counts 0). Independent solutions of a ten-line function are often alike,
so each pair's likeness is set against the class: a question's ``class_share`` is the fraction of
the other submissions that are at least as alike (within ``MARGIN``) to one of the two. The
pair's ``score`` weighs each question's similarity by ``1 - class_share`` and by the amount of
code: a pair alike where most of the class is alike scores low; a pair alike where nobody else is
scores high.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
from typing import Sequence

from .stubs import StubCode, stubs

MARGIN = 0.05


@dataclasses.dataclass
class Student:
    key: str
    label: str
    code: dict[str, StubCode]


@dataclasses.dataclass
class Pair:
    a: Student
    b: Student
    score: float
    similarity: float
    class_share: float
    per_question: dict[str, float]  # question -> similarity (absent: neither wrote code)
    shares: dict[str, float]


def _ratio(x: list[str], y: list[str]) -> float:
    if not x and not y:
        return 0.0
    return difflib.SequenceMatcher(None, x, y, autojunk=False).ratio()


def rank(students: Sequence[Student]) -> list[Pair]:
    """Every pair of ``students``, best score first (ties: higher similarity first)."""
    import numpy as np

    students = list(students)
    n = len(students)
    sims, wrote = {}, {}
    questions = list(stubs())
    for q in questions:
        matrix = np.zeros((n, n))
        for i, j in itertools.combinations(range(n), 2):
            matrix[i, j] = matrix[j, i] = _ratio(students[i].code[q].tokens,
                                                 students[j].code[q].tokens)
        sims[q] = matrix
        wrote[q] = np.array([bool(s.code[q].tokens) for s in students])
    pairs = []
    for i, j in itertools.combinations(range(n), 2):
        a, b = students[i], students[j]
        per_question, shares = {}, {}
        weighted = scored = shared = weights = 0.0
        for q in questions:
            x, y = a.code[q].tokens, b.code[q].tokens
            if not x and not y:
                continue
            value = float(sims[q][i, j])
            others = wrote[q].copy()
            others[[i, j]] = False
            alike = np.maximum(sims[q][i], sims[q][j])[others] >= value - MARGIN
            share = float(alike.mean()) if alike.size else 0.0
            weight = (len(x) + len(y)) / 2
            per_question[q], shares[q] = value, share
            weighted += weight * value
            scored += weight * value * (1 - share)
            shared += weight * share
            weights += weight
        if not weights:
            continue
        pairs.append(Pair(a, b, scored / weights, weighted / weights, shared / weights,
                          per_question, shares))
    pairs.sort(key=lambda p: (-p.score, -p.similarity, p.a.key, p.b.key))
    return pairs

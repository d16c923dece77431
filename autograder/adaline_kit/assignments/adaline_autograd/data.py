"""The lecture's Iris split, rebuilt exactly as the lecture notebook builds it.

Recipe (lecture; numbers from ``grading.toml`` ``[assignment]``, defaults in brackets): rows
``data_rows`` [50-149] of ``iris.data`` (versicolor -> 0, others -> 1), the ``features`` columns
[1, 2] as float32; ``torch.manual_seed(seed [123]); idx = torch.randperm(rows)``;
``X, y = X[idx], y[idx]``; train = ``X[idx[:train_size]]`` [70], test = ``X[idx[train_size:]]``
(the permutation is applied twice, as in the lecture); with ``standardise``, both scaled with
the training mean and unbiased std.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import torch

from adaline_kit.settings import SettingsError

from . import Settings as Assignment

DEFAULT_DATA = Path(__file__).resolve().parents[4] / "data" / "iris.data"


@dataclasses.dataclass(frozen=True, eq=False)
class LectureData:
    """The lecture's split. ``X_*``: float32 (n, 2); ``y_*``: int32 (n,) of 0/1.

    Train has ``train_size`` rows, test the rest. ``eq=False``: instances hash by identity, so they can key caches.
    """

    X_train: torch.Tensor
    X_test: torch.Tensor
    y_train: torch.Tensor
    y_test: torch.Tensor

    def as_lists(self) -> dict:
        """Plain lists for probe arguments: ``{"X_train": [[f, f], ...], "y_train": [0, 1, ...]}``
        and the same for ``X_test`` and ``y_test``.

        float32 values become Python floats exactly, so a probe rebuilds the same tensors.
        """
        return {name: getattr(self, name).tolist()
                for name in ("X_train", "X_test", "y_train", "y_test")}


def load_iris_rows(path: Path | str) -> list[tuple[list[float], str]]:
    """All non-empty rows of ``iris.data`` as ``([4 floats], class name)``, in file order."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            *features, label = line.split(",")
            rows.append(([float(v) for v in features], label.strip()))
    return rows


def _resolve(path: Path | str | None) -> Path:
    if path is not None:
        return Path(path)
    if DEFAULT_DATA.exists():
        return DEFAULT_DATA
    raise FileNotFoundError("no path to iris.data given and the default data/iris.data is missing")


def prepare_lecture_split(path: Path | str | None = None,
                          assignment: Assignment | None = None) -> LectureData:
    """The lecture's train/test split from ``path`` (default: ``DEFAULT_DATA``) for
    ``assignment`` (default: ``grading.toml``'s ``[assignment]``)."""
    if assignment is None:
        from adaline_kit.settings import load
        assignment = load().assignment
    return _prepare(str(_resolve(path).resolve()), assignment)


@functools.lru_cache(maxsize=4)
def _prepare(path: str, assignment: Assignment) -> LectureData:
    first, end = assignment.data_rows
    all_rows = load_iris_rows(path)
    rows = all_rows[first:end]
    if len(rows) != end - first:
        raise SettingsError(f"{path}: data_rows {first}-{end - 1} asks for rows the file does not "
                         f"have ({len(all_rows)} rows)")
    width = min(len(r[0]) for r in rows)
    if max(assignment.features) >= width:
        raise SettingsError(f"{path}: features {list(assignment.features)} asks for a column the "
                         f"file does not have ({width} feature columns)")
    X = torch.tensor([[r[0][c] for c in assignment.features] for r in rows], dtype=torch.float)
    y = torch.tensor([0 if r[1] == "Iris-versicolor" else 1 for r in rows], dtype=torch.int)

    # A private generator seeded like torch.manual_seed(123) draws the same permutation
    # without touching the process-wide RNG.
    generator = torch.Generator().manual_seed(assignment.seed)
    shuffle_idx = torch.randperm(y.size(0), dtype=torch.long, generator=generator)
    X, y = X[shuffle_idx], y[shuffle_idx]
    size = assignment.train_size
    X_train, X_test = X[shuffle_idx[:size]], X[shuffle_idx[size:]]
    y_train, y_test = y[shuffle_idx[:size]], y[shuffle_idx[size:]]

    if assignment.standardise:
        mu, sigma = X_train.mean(dim=0), X_train.std(dim=0)
        X_train = (X_train - mu) / sigma
        X_test = (X_test - mu) / sigma
    return LectureData(X_train, X_test, y_train, y_test)

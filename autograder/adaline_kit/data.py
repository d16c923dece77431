"""The lecture's Iris split, rebuilt exactly as the lecture notebook builds it.

Recipe (lecture): rows 50-149 of ``iris.data`` (versicolor -> 0, virginica -> 1), features in
columns 1 and 2 as float32; ``torch.manual_seed(123); idx = torch.randperm(100)``;
``X, y = X[idx], y[idx]``; train = ``X[idx[:70]]``, test = ``X[idx[70:]]`` (the permutation is
applied twice, as in the lecture); both standardised with the training mean and unbiased std.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import torch

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "data" / "iris.data"
FEATURE_COLUMNS = (1, 2)
SEED = 123
TRAIN_SIZE = 70


@dataclasses.dataclass(frozen=True, eq=False)
class LectureData:
    """The lecture's split. ``X_*``: float32 (n, 2); ``y_*``: int32 (n,) of 0/1.

    Train has 70 rows, test 30. ``eq=False``: instances hash by identity, so they can key caches.
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


def prepare_lecture_split(path: Path | str | None = None) -> LectureData:
    """The lecture's standardised train/test split from ``path`` (default: ``DEFAULT_DATA``)."""
    return _prepare(str(_resolve(path).resolve()))


@functools.lru_cache(maxsize=4)
def _prepare(path: str) -> LectureData:
    rows = load_iris_rows(path)[50:150]
    if len(rows) != 100:
        raise ValueError(f"{path}: expected at least 150 rows, got {len(rows) + 50}")
    X = torch.tensor([[r[0][c] for c in FEATURE_COLUMNS] for r in rows], dtype=torch.float)
    y = torch.tensor([0 if r[1] == "Iris-versicolor" else 1 for r in rows], dtype=torch.int)

    # A private generator seeded like torch.manual_seed(123) draws the same permutation
    # without touching the process-wide RNG.
    generator = torch.Generator().manual_seed(SEED)
    shuffle_idx = torch.randperm(y.size(0), dtype=torch.long, generator=generator)
    X, y = X[shuffle_idx], y[shuffle_idx]
    X_train, X_test = X[shuffle_idx[:TRAIN_SIZE]], X[shuffle_idx[TRAIN_SIZE:]]
    y_train, y_test = y[shuffle_idx[:TRAIN_SIZE]], y[shuffle_idx[TRAIN_SIZE:]]

    mu, sigma = X_train.mean(dim=0), X_train.std(dim=0)
    X_train = (X_train - mu) / sigma
    X_test = (X_test - mu) / sigma
    return LectureData(X_train, X_test, y_train, y_test)

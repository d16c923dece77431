"""Where the kit's sources live in the repository and where the build writes its bundles.

The assignment's own places follow its ``NAME`` and ``DATA_SOURCE`` (see
:mod:`adaline_kit.assignment`); they are read when first used, so a broken grading.toml is
reported by the command that needs them, as one line.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
OTTER_CONFIG = REPO / "otter_config.json"
PACKAGE = Path(__file__).resolve().parents[1]
GRADESCOPE_FILES = Path(__file__).with_name("gradescope")


def _assignment_paths() -> dict[str, object]:
    from ..assignment import current

    package = current()
    name = package.NAME
    student_dir = REPO / "assignments" / name
    return {
        "ASSIGNMENT": name,                       # folder and notebook name
        "DATA_FILE": Path(package.DATA_SOURCE),   # the data file's copy in the repository
        "DATA_NAME": package.DATA_FILE,           # ... as the notebook reads it, beside it
        "MASTER_NOTEBOOK": REPO / "solutions" / name / f"{name}.ipynb",
        "STUDENT_DIR": student_dir,
        "STUDENT_NOTEBOOK": student_dir / f"{name}.ipynb",
        "PUBLIC_TESTS": student_dir / "tests",
    }


def __getattr__(name: str):
    """``ASSIGNMENT``, ``DATA_FILE``, ``DATA_NAME``, ``MASTER_NOTEBOOK``, ``STUDENT_DIR``, ``STUDENT_NOTEBOOK``,
    ``PUBLIC_TESTS``: the current assignment's places."""
    places = _assignment_paths()
    if name in places:
        return places[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dist_dir(root: Path | None = None) -> Path:
    return (root or REPO / "dist") / _assignment_paths()["ASSIGNMENT"]


def shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (for one-line messages)."""
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)

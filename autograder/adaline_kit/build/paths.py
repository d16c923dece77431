"""Where the kit's sources live in the repository and where the build writes its bundles."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ASSIGNMENT = "adaline_autograd"
DATA_FILE = REPO / "data" / "iris.data"
MASTER_NOTEBOOK = REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
STUDENT_DIR = REPO / "assignments" / ASSIGNMENT
STUDENT_NOTEBOOK = STUDENT_DIR / f"{ASSIGNMENT}.ipynb"
PUBLIC_TESTS = STUDENT_DIR / "tests"
OTTER_CONFIG = REPO / "otter_config.json"
PACKAGE = Path(__file__).resolve().parents[1]
GRADESCOPE_FILES = Path(__file__).with_name("gradescope")


def dist_dir(root: Path | None = None) -> Path:
    return (root or REPO / "dist") / ASSIGNMENT


def shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (for one-line messages)."""
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)

"""Deterministic zip writing: the same inputs always give byte-identical zips.

Identical bytes let graders tell whether an autograder changed (see ``adaline-kit grade``'s
resume logic) and keep rebuilds quiet in version control.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

FIXED_TIME = (2024, 1, 1, 0, 0, 0)


def write_zip(target: Path, members: dict[str, bytes | Path], executable: set[str] = frozenset()):
    """Write ``members`` (archive name -> bytes or file path) to ``target``, sorted by name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            content = members[name]
            data = content.read_bytes() if isinstance(content, Path) else content
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if name in executable else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, data)
    return target


def package_files(package_dir: Path, prefix: str, exclude=()) -> dict[str, Path]:
    """Every source and data file of a Python package, without caches and without the folders
    ``exclude`` (paths inside ``package_dir``)."""
    skipped = [Path(folder).resolve() for folder in exclude]
    return {f"{prefix}/{path.relative_to(package_dir.parent).as_posix()}": path
            for path in sorted(package_dir.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
            and not any(path.resolve().is_relative_to(folder) for folder in skipped)}

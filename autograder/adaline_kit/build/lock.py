"""``requirements.lock``: every package the Gradescope image installs, pinned with hashes.

The lock is made by pip-tools (``pip-compile --generate-hashes``) from ``pyproject.toml``'s
dependencies, on Linux x86_64 with Python 3.11 (the image's platform), and starts with a stamp:
the sha256 of those dependencies. ``setup.sh`` installs exactly the lock (``--require-hashes
--no-deps``), torch's CPU build included, so an image built next month is the one tested today.

``python -m adaline_kit.build.lock check`` (run by ``make``) fails with one line when the lock
no longer matches ``pyproject.toml``: a changed dependency list, a dependency not pinned or
pinned outside its specifier, a pin without a hash, or torch not at the kit's version.
``python -m adaline_kit.build.lock compile`` writes it anew (needs pip-tools and an index).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

from . import paths

LOCK_FILE = paths.REPO / "requirements.lock"
PYPROJECT = paths.REPO / "pyproject.toml"
STAMP = "# pyproject.toml dependencies sha256: "
TORCH_VERSION = "2.13.0"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependencies(pyproject: Path = PYPROJECT) -> list[str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    with open(pyproject, "rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def stamp(requirements: list[str]) -> str:
    text = "\n".join(sorted(" ".join(r.split()) for r in requirements))
    return hashlib.sha256(text.encode()).hexdigest()


def pins(text: str) -> dict[str, tuple[str, int]]:
    """Package (normalised name) -> (pinned version, number of hashes) in lock ``text``."""
    found: dict[str, tuple[str, int]] = {}
    current = None
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            current = _normal(match.group(1))
            found[current] = (match.group(2), 0)
        if current and "--hash=sha256:" in line:
            version, count = found[current]
            found[current] = (version, count + line.count("--hash=sha256:"))
    return found


def problems(lock_text: str, requirements: list[str]) -> list[str]:
    """Why ``lock_text`` does not match ``requirements`` (empty if it does)."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    found = []
    first = next((l for l in lock_text.splitlines() if l.startswith(STAMP)), "")
    if first[len(STAMP):].strip() != stamp(requirements):
        found.append("the dependencies in pyproject.toml changed since the lock was made")
    pinned = pins(lock_text)
    for line in requirements:
        requirement = Requirement(line)
        entry = pinned.get(_normal(requirement.name))
        if entry is None:
            found.append(f"{requirement.name} is not in the lock")
        elif not requirement.specifier.contains(Version(entry[0]), prereleases=True):
            found.append(f"{requirement.name}=={entry[0]} in the lock is outside "
                         f"{requirement.specifier} in pyproject.toml")
    for name, (version, hashes) in sorted(pinned.items()):
        if hashes == 0:
            found.append(f"{name}=={version} has no hash")
    torch = pinned.get("torch", ("", 0))[0]
    if Version(torch or "0").base_version != TORCH_VERSION:
        found.append(f"torch must be pinned at {TORCH_VERSION} (the lock has {torch or 'none'})")
    elif "+cpu" not in torch:
        found.append(f"torch must be the CPU build ({TORCH_VERSION}+cpu), not {torch}")
    return found


def compile_lock() -> Path:
    """Run pip-compile and stamp the result into LOCK_FILE."""
    command = [sys.executable, "-m", "piptools", "compile", "--generate-hashes", "--allow-unsafe",
               "--strip-extras", "--no-emit-index-url", "--no-emit-find-links",
               "--no-emit-trusted-host", "--quiet", "--output-file", LOCK_FILE.name,
               PYPROJECT.name]
    subprocess.run(command, cwd=paths.REPO, check=True)
    text = LOCK_FILE.read_text()
    header = (f"{STAMP}{stamp(dependencies())}\n"
              "# For Linux x86_64, Python 3.11 (Gradescope's image); torch's CPU build comes from "
              "PyTorch's CPU-only index.\n")
    LOCK_FILE.write_text(header + text)
    return LOCK_FILE


def main(argv: list[str]) -> int:
    if argv == ["compile"]:
        print(f"wrote {compile_lock()}")
        return 0
    if argv != ["check"]:
        print("usage: python -m adaline_kit.build.lock check|compile", file=sys.stderr)
        return 2
    if not LOCK_FILE.is_file():
        print(f"{LOCK_FILE.name} is missing: run `make lock`", file=sys.stderr)
        return 1
    found = problems(LOCK_FILE.read_text(), dependencies())
    if found:
        print(f"{LOCK_FILE.name} does not match pyproject.toml: {found[0]}"
              f"{f' (and {len(found) - 1} more)' if len(found) > 1 else ''}; run `make lock`",
              file=sys.stderr)
        return 1
    print(f"{LOCK_FILE.name} matches pyproject.toml ({len(pins(LOCK_FILE.read_text()))} pins, "
          "all hashed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The Gradescope image, tried: ``setup.sh`` from the built zip runs in a throwaway root with its
network steps replaced by local stand-ins, then ``run_autograder`` grades from what it installed.

Stand-ins (on PATH, logged): ``apt-get`` installs nothing (wget and certificates are not needed
offline); ``wget`` delivers a Miniforge stand-in whose ``conda create`` makes a venv of a copy of
this machine's Python 3.11 inside the throwaway root (readable by every user, as Miniforge's
/opt install is; the lock needs 3.11.5 or later, as Miniforge's current 3.11 is); pip reads
no index, only a folder holding the wheels of ``requirements.lock``; ``useradd`` adds no user to
this machine (student code then runs as ``nobody``). Everything after the downloads is the real
script: the lock installed with ``--require-hashes --no-deps``, the chmod of the source folder.
The lock itself is checked against ``pyproject.toml`` as ``make`` checks it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from adaline_kit.build import lock
from adaline_kit.grade.emulation import run_like_gradescope
from adaline_kit.settings import load

SETTINGS = load()

APT_GET = """#!/bin/sh
echo "apt-get $* (stand-in: nothing installed)" >> "$STANDIN_LOG"
"""
USERADD = """#!/bin/sh
echo "useradd $* (stand-in: no user added)" >> "$STANDIN_LOG"
"""
WGET = """#!/bin/sh
# wget -nv URL -O TARGET: deliver the Miniforge stand-in instead of downloading.
echo "wget $* (stand-in)" >> "$STANDIN_LOG"
while [ $# -gt 0 ]; do
  if [ "$1" = "-O" ]; then target="$2"; shift; fi
  shift
done
cp "$STANDIN_DIR/miniforge.sh" "$target"
"""
MINIFORGE = """#!/bin/bash
# Miniforge3-Linux-x86_64.sh -b -p PREFIX stand-in: a conda whose `create -n NAME ...` makes a
# venv of the base Python copied into the throwaway root.
set -eu
while [ $# -gt 0 ]; do
  if [ "$1" = "-p" ]; then prefix="$2"; shift; fi
  shift
done
mkdir -p "$prefix/bin" "$prefix/envs"
cat > "$prefix/bin/conda" <<CONDA
#!/bin/bash
set -eu
echo "conda \\$* (stand-in)" >> "$STANDIN_LOG"
while [ \\$# -gt 0 ]; do
  if [ "\\$1" = "-n" ]; then name="\\$2"; shift; fi
  shift
done
__PYTHON__ -m venv "$prefix/envs/\\$name"
CONDA
chmod +x "$prefix/bin/conda"
"""


def _tree_pss(root: psutil.Process) -> int:
    total = 0
    for process in [root] + root.children(recursive=True):
        try:
            total += process.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


class PeakMemory:
    """The largest PSS sum over this process's children, sampled while the block runs."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._me = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            total = sum(_tree_pss(child) for child in self._me.children())
            self.peak = max(self.peak, total)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_the_lock_matches_pyproject_and_a_changed_dependency_fails_the_check():
    text = lock.LOCK_FILE.read_text()
    requirements = lock.dependencies()
    assert lock.problems(text, requirements) == []
    pinned = lock.pins(text)
    assert pinned["torch"][0] == "2.13.0+cpu" and pinned["torch"][1] >= 1
    assert all(hashes for _, hashes in pinned.values())
    assert len(pinned) > len(requirements)  # the dependencies' dependencies are pinned too
    # Known-wrong inputs: each must be caught.
    changed = [r for r in requirements if not r.startswith("rich")] + ["rich>=99"]
    assert any("changed since" in p for p in lock.problems(text, changed))
    assert any("rich==" in p and "outside" in p for p in lock.problems(text, changed))
    unhashed = text.replace("--hash=sha256:", "--hash=md5:")
    assert any("has no hash" in p for p in lock.problems(unhashed, requirements))
    cuda = text.replace("torch==2.13.0+cpu", "torch==2.13.0")
    assert any("CPU build" in p for p in lock.problems(cuda, requirements))
    result = subprocess.run([sys.executable, "-m", "adaline_kit.build.lock", "check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    """The files of requirements.lock, fetched through this machine's configured indexes."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--require-hashes", "-r", str(lock.LOCK_FILE), "-d", str(folder)],
                   check=True, timeout=1800)
    return folder


def readable_python(target: Path) -> Path:
    """This interpreter's installation (without its site-packages) copied to ``target``."""
    base = Path(sys.base_prefix)
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for folder in ("bin", "lib"):
        (target / folder).mkdir(parents=True)
    shutil.copy2(base / "bin" / name, target / "bin" / name)
    for library in (base / "lib").glob("libpython*"):
        shutil.copy2(library, target / "lib" / library.name)
    shutil.copytree(base / "lib" / name, target / "lib" / name, symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "test", "__pycache__"))
    return target / "bin" / name


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the image's Python is 3.11")
def test_setup_sh_installs_the_lock_and_run_autograder_grades_from_it(
        autograder_zip, wheelhouse, reference_notebook, stub_notebook):
    root = Path(tempfile.mkdtemp(prefix="adaline-kit-image-"))
    try:
        os.chmod(root, 0o755)  # the student user must reach the interpreter, as under /opt
        standins = root / "standins"
        standins.mkdir()
        base_python = readable_python(root / "python-base")
        for name, text in (("apt-get", APT_GET), ("useradd", USERADD), ("wget", WGET),
                           ("miniforge.sh", MINIFORGE.replace("__PYTHON__", str(base_python)))):
            (standins / name).write_text(text)
            (standins / name).chmod(0o755)
        source = root / "autograder" / "source"
        source.mkdir(parents=True)
        with zipfile.ZipFile(autograder_zip) as archive:
            archive.extractall(source)
        prefix = root / "opt" / "adaline-kit"
        log = root / "standins.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
        env.update(PATH=f"{standins}:{env['PATH']}", AUTOGRADER_DIR=str(root / "autograder"),
                   ADALINE_KIT_PREFIX=str(prefix), STANDIN_DIR=str(standins),
                   STANDIN_LOG=str(log), PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1",
                   PIP_FIND_LINKS=str(wheelhouse), PIP_DISABLE_PIP_VERSION_CHECK="1")
        started = time.monotonic()
        completed = subprocess.run(["bash", str(source / "setup.sh")], env=env,
                                   capture_output=True, text=True, timeout=1800)
        seconds = time.monotonic() - started
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
        stood_in = log.read_text()
        assert "wget -nv https://github.com/conda-forge/miniforge" in stood_in
        assert "conda create -y -n adaline-kit python=3.11 pip" in stood_in
        assert "useradd --system" in stood_in

        python = prefix / "envs" / "adaline-kit" / "bin" / "python"
        installed = subprocess.run(
            [str(python), "-m", "pip", "list", "--format=freeze"], env=env,
            capture_output=True, text=True, check=True).stdout
        versions = {lock._normal(name): version for name, version in
                    (line.split("==", 1) for line in installed.split() if "==" in line)}
        pinned = lock.pins(lock.LOCK_FILE.read_text())
        missing = {name: version for name, (version, _) in pinned.items()
                   if versions.get(name) != version}
        assert missing == {}, missing
        assert not (os.stat(source).st_mode & 0o077), "setup.sh leaves the source readable"
        size = sum(p.lstat().st_size for p in prefix.rglob("*") if p.is_file())

        with PeakMemory() as memory:
            reference = run_like_gradescope(autograder_zip, reference_notebook, python)
        stubs = run_like_gradescope(autograder_zip, stub_notebook, python)
        assert {t["name"]: t["score"] for t in reference["tests"]} == SETTINGS.points
        assert stubs["score"] == 0 and len(stubs["tests"]) == len(SETTINGS.points)
        print(f"\nsetup.sh: {seconds:.0f} s from local wheels, {size / 2**20:.0f} MiB installed; "
              f"grading the reference: peak {memory.peak / 2**20:.0f} MiB PSS (all processes)")
    finally:
        shutil.rmtree(root, ignore_errors=True)

"""Run an autograder zip the way Gradescope does, on this machine.

Gradescope unzips the autograder into ``/autograder/source``, puts the student's files in
``/autograder/submission``, runs ``/autograder/source/run_autograder`` and reads
``/autograder/results/results.json``. :func:`run_like_gradescope` builds that layout under a
temporary folder (``AUTOGRADER_DIR`` points the script there) and runs the zip's own script.

``gradescope_python`` makes an interpreter like the one ``setup.sh`` installs on Gradescope: it
sees this environment's third-party packages but not the kit itself, so the grading code comes
from the zip's ``lib/`` alone, as it does on Gradescope.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path


def gradescope_python(folder: Path) -> Path:
    """A venv in ``folder`` that imports this environment's packages, without the kit."""
    python = folder / "bin" / "python"
    if python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    site_packages = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    # A plain path line: the folder is added, but the .pth files inside it (among them the
    # kit's own editable install) are not processed.
    (site_packages / "kit-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run_like_gradescope(autograder_zip: Path, submission: Path, python: Path,
                        workdir: Path | None = None, timeout: float = 600) -> dict:
    """Grade ``submission`` (a file, or a folder of files) with the zip; return results.json.

    Raises RuntimeError when no results.json appears (what Gradescope reports as "The
    autograder failed to execute correctly").
    """
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="adaline-kit-gradescope-")) if own else Path(workdir)
    try:
        autograder = root / "autograder"
        shutil.rmtree(autograder, ignore_errors=True)
        for part in ("source", "submission", "results"):
            (autograder / part).mkdir(parents=True)
        os.chmod(root, 0o755)
        os.chmod(autograder, 0o755)
        with zipfile.ZipFile(autograder_zip) as archive:
            archive.extractall(autograder / "source")
        os.chmod(autograder / "source" / "run_autograder", 0o755)
        if submission.is_dir():
            shutil.copytree(submission, autograder / "submission", dirs_exist_ok=True)
        else:
            shutil.copy(submission, autograder / "submission" / submission.name)
        env = dict(os.environ, AUTOGRADER_DIR=str(autograder), ADALINE_KIT_PYTHON=str(python))
        env.pop("PYTHONPATH", None)
        completed = subprocess.run(["bash", str(autograder / "source" / "run_autograder")],
                                   cwd=autograder, env=env, capture_output=True, text=True,
                                   timeout=timeout)
        results = autograder / "results" / "results.json"
        if not results.is_file():
            raise RuntimeError("no results.json was written:\n" + completed.stderr[-3000:])
        return json.loads(results.read_text())
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)

"""Run an autograder zip the way Gradescope does, on this machine.

Gradescope unzips the autograder into ``/autograder/source``, puts the student's files in
``/autograder/submission``, runs ``/autograder/source/run_autograder`` and reads
``/autograder/results/results.json``. :func:`run_like_gradescope` builds that layout under a
temporary folder (``AUTOGRADER_DIR`` points the script there) and runs the zip's own script.

:func:`gradescope_python` gives an interpreter laid out like the one ``setup.sh`` installs under
``/opt`` on Gradescope: a self-contained prefix (``bin/pythonX.Y``, the standard library and
``lib/pythonX.Y/site-packages``) that the student user can read, with this environment's
third-party packages but not the kit itself, so the grading code comes from the zip's ``lib/``
alone. It is built once (files hard-linked where possible) into ``.venv-gradescope/`` of the
checkout, or into a private folder under the system's temporary folder when the student user
could not reach the checkout, and rebuilt only when Python or the installed packages change.
``python -m adaline_kit.grade.emulation`` builds it and prints its path (``make`` does).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import pwd
import shutil
import site
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

INTERPRETER_FOLDER = ".venv-gradescope"
STAMP_FILE = "adaline-kit-interpreter.json"
LAYOUT_VERSION = 1
KIT_DISTRIBUTION = "adaline-kit"
SKIPPED_IN_STDLIB = ("site-packages", "test")  # the test suite is 100+ MiB Gradescope lacks too


# --- the interpreter ------------------------------------------------------------------------

def gradescope_python(folder: Path | None = None) -> Path:
    """The interpreter in ``folder`` (default: :func:`default_folder`), built if missing or
    stale; returns ``folder/bin/python3``. RuntimeError if the built copy can import the kit."""
    folder = Path(folder) if folder is not None else default_folder()
    folder.parent.mkdir(parents=True, exist_ok=True)
    wanted = _fingerprint()
    with _locked(folder.parent / f"{folder.name}.lock"):
        if _built_from(folder) != wanted:
            _build(folder, wanted)
    return folder / "bin" / "python3"


def default_folder() -> Path:
    """``.venv-gradescope/`` in this checkout if the student user can reach it, else a folder
    of its own under the system's temporary folder."""
    from ..build import paths

    if (paths.REPO / "pyproject.toml").is_file() and reachable_by_others(paths.REPO):
        return paths.REPO / INTERPRETER_FOLDER
    environment = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return _private_folder(Path(tempfile.gettempdir()) / f"adaline-kit-{os.geteuid()}") / \
        f"gradescope-python-{environment}"


def reachable_by_others(path: Path) -> bool:
    """True if a user who is neither owner nor in the group can traverse down to ``path``.
    Grading as an ordinary user runs student code as that same user: then always True."""
    if os.geteuid() != 0:
        return True
    path = Path(path).resolve()
    return all(os.stat(folder).st_mode & stat.S_IXOTH for folder in [path, *path.parents])


def unreadable_python_warning(user: str | None) -> str | None:
    """One warning line when ``user`` (who runs student code; None: the grader's own user)
    cannot reach this interpreter's standard library, else None. Student processes then import
    only what the zygote preloaded (the standard library, torch, numpy, pandas, matplotlib)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    if user is None or reachable_by_others(stdlib):
        return None
    return (f"Warning: student code runs as user {user}, who cannot read this Python's files "
            f"({stdlib}): imports of packages the grader has not preloaded, and running Python "
            "in a subprocess, may fail there; grade with a Python installed where every user "
            "can read it (for example under /usr or /opt).")


def _private_folder(folder: Path) -> Path:
    """``folder`` created if need be; RuntimeError unless it is ours and nobody else may write
    into it (another user could otherwise plant the interpreter the grader runs)."""
    folder.mkdir(mode=0o755, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise RuntimeError(f"{folder} is not a private folder of this user; remove it")
    return folder


@contextlib.contextmanager
def _locked(lock_file: Path):
    with open(lock_file, "a") as handle:  # one builder at a time (make and tests may overlap)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _version() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def _site_folders() -> list[Path]:
    """This environment's site-packages folders (a venv's own, or the installation's)."""
    folders = [Path(p).resolve() for p in site.getsitepackages()]
    return [p for p in dict.fromkeys(folders) if p.is_dir()]


def _kit_entries() -> set[str]:
    """Top-level names in site-packages that belong to the kit's own installation."""
    names = {"adaline_kit"}
    # Looked up in site-packages only: a checkout on PYTHONPATH may carry an egg-info of its own
    # that does not list the editable install's .pth and finder files.
    for folder in _site_folders():
        names |= {entry.name for entry in folder.iterdir()
                  if "adaline_kit" in entry.name.replace("-", "_")}  # .pth, finder, dist-info
    try:
        files = importlib.metadata.distribution(KIT_DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        return names
    return names | {f.parts[0] for f in files if f.parts and f.parts[0] != ".."}


def _base_binary() -> Path:
    candidate = Path(sys.base_prefix) / "bin" / _version()
    return candidate.resolve() if candidate.is_file() else Path(sys._base_executable).resolve()


def _fingerprint() -> dict:
    """What the copy is made of: Python's build and the installed distributions."""
    kit = _kit_entries()
    distributions = sorted(entry.name for folder in _site_folders() for entry in folder.iterdir()
                           if entry.name.endswith((".dist-info", ".egg-info"))
                           and entry.name not in kit)
    return {"layout": LAYOUT_VERSION, "python": sys.version, "binary": str(_base_binary()),
            "stdlib": sysconfig.get_path("stdlib"), "site": [str(p) for p in _site_folders()],
            "distributions": distributions}


def _built_from(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return None


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link a file others may read (fast, no space); copy it (readable) otherwise."""
    if os.stat(source).st_mode & stat.S_IROTH:
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    shutil.copy2(source, target)
    os.chmod(target, os.stat(target).st_mode | 0o444)


def _copy_tree(source: Path, target: Path, skip: set[str]) -> None:
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True,
                    copy_function=_link_or_copy,
                    ignore=lambda folder, names: [n for n in names if Path(folder) == source
                                                  and n in skip])


def _build(folder: Path, fingerprint: dict) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f"{folder.name}.building-", dir=folder.parent))
    try:
        _lay_out(staging)
        (staging / STAMP_FILE).write_text(json.dumps(fingerprint, indent=1))
        _check(staging / "bin" / "python3")
        old = folder.with_name(f"{folder.name}.old-{os.getpid()}")
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _lay_out(prefix: Path) -> None:
    """``prefix/bin/pythonX.Y``, its shared library, the standard library and site-packages."""
    version = _version()
    (prefix / "bin").mkdir()
    (prefix / "lib").mkdir()
    binary = prefix / "bin" / version
    shutil.copy2(_base_binary(), binary)
    for alias in ("python3", "python"):
        (prefix / "bin" / alias).symlink_to(version)
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        library_dir = sysconfig.get_config_var("LIBDIR")
        library = Path(library_dir) / sysconfig.get_config_var("INSTSONAME")
        if library.is_file():
            shutil.copy2(library, prefix / "lib" / library.name)
            relocate_runpath(binary, library_dir, "$ORIGIN/../lib")
    _copy_tree(Path(sysconfig.get_path("stdlib")), prefix / "lib" / version,
               set(SKIPPED_IN_STDLIB))
    kit = _kit_entries()
    for folder in _site_folders():
        _copy_tree(folder, _own_site_folder(binary), kit)
    for root, folders, files in os.walk(prefix):
        for name in folders:
            os.chmod(os.path.join(root, name), 0o755)
    os.chmod(prefix, 0o755)


def _clean_environment() -> dict:
    return {key: value for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")}


def _own_site_folder(python: Path) -> Path:
    """Where the copied interpreter looks for packages (``lib/pythonX.Y/site-packages``, or
    what a distribution's patched ``site`` module says)."""
    completed = subprocess.run([str(python), "-S", "-c",
                                "import site; print(site.getsitepackages()[0])"],
                               env=_clean_environment(), check=True, capture_output=True,
                               text=True)
    return Path(completed.stdout.strip())


def _check(python: Path) -> None:
    """The copy starts, imports modules no warm-up preloads and the packages from its own
    site-packages, and cannot import the kit."""
    env = _clean_environment()
    probe = ("import importlib.util, logging.config, xml.etree.ElementTree, email.mime.text\n"
             "import numpy, nbformat\n"
             "import sys\nsys.exit(importlib.util.find_spec('adaline_kit') is not None)")
    completed = subprocess.run([str(python), "-c", probe], env=env, cwd=python.parent,
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"the Gradescope-like interpreter {python} is unusable "
                           f"(or imports the kit): {completed.stderr.strip()[-500:]}")


def relocate_runpath(binary: Path, old: str, new: str) -> bool:
    """Rewrite the ``old`` entry of an ELF executable's RUNPATH/RPATH to ``new`` in place (what
    ``patchelf`` does when the new text is not longer). False if there is nothing to change."""
    data = bytearray(binary.read_bytes())
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:  # 64-bit little-endian only
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    headers = [struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize) for i in range(phnum)]
    loads = [h for h in headers if h[0] == 1]  # PT_LOAD: (type, flags, offset, vaddr, ...)
    dynamic = [h for h in headers if h[0] == 2]  # PT_DYNAMIC
    if not dynamic:
        return False
    entries, offset = {}, dynamic[0][2]
    while True:
        tag, value = struct.unpack_from("<qQ", data, offset)
        if tag == 0:
            break
        entries.setdefault(tag, value)
        offset += 16
    if 5 not in entries:  # DT_STRTAB
        return False
    segment = next((h for h in loads if h[3] <= entries[5] < h[3] + h[5]), None)
    if segment is None:
        return False
    strtab = entries[5] - segment[3] + segment[2]
    changed = False
    for tag in (15, 29):  # DT_RPATH, DT_RUNPATH
        if tag not in entries:
            continue
        start = strtab + entries[tag]
        end = data.index(b"\0", start)
        paths = data[start:end].decode().split(":")
        updated = ":".join(new if path.rstrip("/") == old.rstrip("/") else path for path in paths)
        if updated != ":".join(paths) and len(updated) <= end - start:
            data[start:end] = updated.encode().ljust(end - start, b"\0")
            changed = True
    if changed:
        binary.write_bytes(bytes(data))
    return changed


# --- one submission, graded like Gradescope ---------------------------------------------------

def run_like_gradescope(autograder_zip: Path, submission: Path, python: Path,
                        workdir: Path | None = None, timeout: float = 600,
                        user: int | None = None) -> dict:
    """Grade ``submission`` (a file, or a folder of files) with the zip; return results.json.

    ``python``: the interpreter ``run_autograder`` uses (see :func:`gradescope_python`).
    ``user``: a uid to run ``run_autograder`` as, with that user's primary group, instead of
    this process's user (root on Gradescope): the way ``adaline-kit grade`` runs on an
    instructor's laptop, where student code runs as that same ordinary user.
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
        as_user = {}
        if user is not None:
            group = pwd.getpwuid(user).pw_gid
            for folder, _, files in os.walk(autograder):
                for path in [folder, *(os.path.join(folder, name) for name in files)]:
                    os.chown(path, user, group)
            as_user = {"user": user, "group": group, "extra_groups": []}
            env["HOME"] = str(autograder)
        completed = subprocess.run(["bash", str(autograder / "source" / "run_autograder")],
                                   cwd=autograder, env=env, capture_output=True, text=True,
                                   timeout=timeout, **as_user)
        results = autograder / "results" / "results.json"
        if not results.is_file():
            raise RuntimeError("no results.json was written:\n" + completed.stderr[-3000:])
        return json.loads(results.read_text())
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)

if __name__ == "__main__":
    print(gradescope_python())

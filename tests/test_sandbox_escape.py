"""The sandbox holds when ``adaline-kit grade`` runs as root and as an ordinary user.

One class (the whole adversarial corpus, the sandbox attacks of the corpus's ``cases_escape.py``
among them, and a victim, the reference solution) is graded with the real CLI three times: as root (student code runs as
``nobody``), and twice as an ordinary user (``unshare -U`` maps this user to uid 1000 without
any privilege; student code then runs as that same user, kept in by Landlock alone), the second
time as a resumed run. The grader's environment carries a secret and an extra PYTHONPATH folder.
Each attack reports what it achieved; none may reach the zygote, the secret, the folder, other
students' results, more processes, memory or disk than the caps allow, or a point.
(``tests/test_hardening.py`` grades the same cases through the Gradescope emulation.)
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adaline_kit.assignments.adaline_autograd import CORPUS
from adaline_kit.sandbox import landlock
from adaline_kit.settings import load

if str(CORPUS) not in sys.path:
    sys.path.insert(0, str(CORPUS))

import cases_adversarial  # noqa: E402
import cases_escape  # noqa: E402
from test_hardening import _meets  # noqa: E402

SETTINGS = load()
KIT = Path(sys.executable).with_name("adaline-kit")
SECRET = "s3cret-value-that-must-not-leak"
ATTACKS = [case.name for case in cases_escape.CASES]
EVERY_ATTACK = cases_adversarial.CASES + cases_escape.CASES  # the whole adversarial group
ALLOWED_VARIABLES = {"HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ", "PATH",
                     "MPLBACKEND", "MPLCONFIGDIR", "OMP_NUM_THREADS", "PYTHONDONTWRITEBYTECODE",
                     "PYTHONNOUSERSITE", "PYTHONPATH", "TMPDIR", "LD_LIBRARY_PATH",
                     "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "PYTHONHASHSEED"}

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="grading as root needs root")
needs_landlock = pytest.mark.skipif(landlock.abi_version() < 1, reason="needs Landlock")


def _unshare_works() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-U", "--map-user=1000", "--map-group=1000", "true"],
        capture_output=True).returncode == 0


def _grade(inputs: Path, out: Path, env: dict, ordinary: bool, *extra: str):
    command = [str(KIT), "grade", str(inputs), "-o", str(out), "--jobs", "2", *extra]
    if ordinary:
        command = ["unshare", "-U", "--map-user=1000", "--map-group=1000"] + command
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, reference_notebook):
    """{setting: (out folder, completed process)} for "root", "user" and "user-resumed"."""
    (Path("/tmp") / cases_escape.ESCAPE_MARKER).unlink(missing_ok=True)
    root = tmp_path_factory.mktemp("escape")
    os.chmod(root, 0o755)
    inputs = root / "class"
    inputs.mkdir()
    for case in EVERY_ATTACK:
        shutil.copy(case.path, inputs / case.path.name)
    shutil.copy(reference_notebook, inputs / "victim.ipynb")
    private = root / "private-pythonpath"
    private.mkdir()
    (private / "instructor_notes.txt").write_text("exam answers")
    env = dict(os.environ, ADALINE_KIT_TEST_SECRET_TOKEN=SECRET,
               PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"),
                                                        str(private)])))
    runs = {}
    if os.getuid() == 0:
        runs["root"] = (root / "root", _grade(inputs, root / "root", env, False))
    if _unshare_works() and landlock.abi_version() >= 1:
        out = root / "user"
        runs["user"] = (out, _grade(inputs, out, env, True))
        victim_record = (out / "victim" / "record.json").read_text()
        runs["user-resumed"] = (out, _grade(inputs, out, env, True))
        runs["victim-before-resume"] = victim_record
    return runs


def _settings(graded):
    return [name for name in ("root", "user", "user-resumed") if name in graded]


def _record(out: Path, name: str) -> dict:
    return json.loads((out / name / "record.json").read_text())


def _report(out: Path, name: str) -> str:
    return (out / name / "results.json").read_text()


def _found(out: Path, name: str) -> dict:
    text = json.loads(_report(out, name))
    outputs = "\n".join(t["output"] for t in text["tests"])
    pattern = cases_escape.REPORTS[name]["q1"]
    match = re.search(pattern, outputs)
    assert match, f"{name}: the attack's report is missing from its feedback:\n{outputs[:2000]}"
    return match.groupdict()


def test_every_run_finished(graded):
    assert _settings(graded), "neither root nor an ordinary user could run the grader here"
    for setting in _settings(graded):
        out, completed = graded[setting]
        assert completed.returncode == 0, completed.stderr[-2000:]


def test_no_attack_gains_a_point_and_the_victim_keeps_full_marks(graded):
    for setting in _settings(graded):
        out, _ = graded[setting]
        for name in ATTACKS:
            assert _record(out, name)["total"] == 0, (setting, name)
        assert _record(out, "victim")["total"] == SETTINGS.max_total, setting


def test_every_attack_keeps_to_its_honest_score_as_root_and_as_an_ordinary_user(graded):
    """The whole adversarial corpus (its Gradescope-path twin is in test_hardening)."""
    for setting in _settings(graded):
        out, _ = graded[setting]
        for case in EVERY_ATTACK:
            record = _record(out, case.path.stem)
            for question, expected in case.expect.items():
                got = record["questions"][question]
                assert _meets(got["score"], got["max_score"], expected), (
                    setting, case.name, question, got, expected)


def test_the_zygote_cannot_be_reached_or_signalled(graded):
    marker = Path("/tmp") / cases_escape.ESCAPE_MARKER
    for setting in _settings(graded):
        found = _found(graded[setting][0], "zygote_escape")
        assert int(found["candidates"]) > 0  # it did look
        # It may reach sockets of other programs on this machine (Landlock does not restrict
        # connecting to named Unix sockets), but none ran its code.
        assert found["ran"] == "0", (setting, found)
        assert found["signal"] != "allowed", (setting, found)
    assert not marker.exists()


def test_the_zygote_has_no_socket_with_a_name():
    """The zygote's only sockets are the unnamed pair from the grader: nothing to connect to."""
    from adaline_kit.grade.sandbox import Zygote

    with Zygote() as zygote:
        inodes = set()
        for fd in os.listdir(f"/proc/{zygote.process.pid}/fd"):
            target = os.readlink(f"/proc/{zygote.process.pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
        with open("/proc/net/unix") as table:
            rows = [line.split() for line in table.read().splitlines()[1:]]
    ours = [row for row in rows if row[6] in inodes]
    assert inodes and len(ours) == len(inodes)  # found them all in the table
    assert all(len(row) == 7 for row in ours), ours  # no path column: unnamed


def test_the_environment_is_allow_listed(graded):
    for setting in _settings(graded):
        out, _ = graded[setting]
        names = set(_found(out, "environment_leak")["names"].split(","))
        assert names <= ALLOWED_VARIABLES, (setting, names - ALLOWED_VARIABLES)
        for path in out.rglob("*"):
            if path.is_file() and path.suffix in (".json", ".md", ".html", ".csv"):
                assert SECRET not in path.read_text(errors="replace"), path


def test_pythonpath_folders_are_unreadable(graded):
    for setting in _settings(graded):
        assert _found(graded[setting][0], "pythonpath_read")["readable"] == "0", setting


def test_process_count_is_capped(graded):
    """RLIMIT_NPROC stops the 65th process of the student user, else (``unshare -U`` maps this
    user to the real root, which the kernel exempts) the watchdog ends them all."""
    for setting in _settings(graded):
        out, _ = graded[setting]
        if f"more than the {SETTINGS.limits.max_processes} allowed" in _report(out, "process_hog"):
            continue  # the watchdog ended them (where RLIMIT_NPROC does not apply: below)
        started = int(_found(out, "process_hog")["started"])
        # RLIMIT_NPROC counts the student user's processes: with two submissions graded at
        # once under one user, the other's may take part of it or leave it some of theirs.
        assert started <= 2 * SETTINGS.limits.max_processes and started < 150, (setting, started)


def test_memory_and_disk_of_the_whole_submission_are_capped(graded):
    for setting in _settings(graded):
        out, _ = graded[setting]
        memory = _record(out, "memory_hog")["message"]
        assert f"more than the {SETTINGS.limits.memory_mib} MiB allowed" in memory, memory
        disk = _record(out, "disk_hog")["message"]
        assert f"more than the {SETTINGS.limits.disk_mib} MiB allowed" in disk, disk


def test_tampering_is_flagged_and_earns_nothing(graded):
    for setting in _settings(graded):
        record = _record(graded[setting][0], "forged_probes")
        assert record["status"] == "flagged" and record["total"] == 0, record
        assert any("gc.get_objects" in flag for flag in record["flags"]), record["flags"]
        victim = _record(graded[setting][0], "victim")
        assert victim["status"] == "graded" and not victim["flags"], victim


def test_confinement_is_recorded(graded):
    if "root" in graded:
        assert _record(graded["root"][0], "victim")["confinement"].startswith("user ")
    if "user" in graded:
        confinement = _record(graded["user"][0], "victim")["confinement"]
        assert confinement.startswith("landlock ABI"), confinement


def test_a_resumed_run_keeps_the_victims_results(graded):
    if "user-resumed" not in graded:
        pytest.skip("unshare -U or Landlock not available")
    out, completed = graded["user-resumed"]
    assert "Graded 0, skipped" in completed.stdout, completed.stdout
    assert (out / "victim" / "record.json").read_text() == graded["victim-before-resume"]
    with open(out / "grades.csv", newline="", encoding="utf-8-sig") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    assert float(rows["victim"]["total"]) == SETTINGS.max_total


@needs_landlock
def test_grading_unconfined_is_refused_unless_asked_for(tmp_path, reference_notebook):
    if not _unshare_works():
        pytest.skip("unshare -U not available")
    env = dict(os.environ, ADALINE_KIT_LANDLOCK="off")
    refused = _grade(reference_notebook, tmp_path / "refused", env, True)
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to grade" in lines[0] and "unconfined" in lines[0]
    assert not (tmp_path / "refused" / "grades.csv").exists()
    allowed = _grade(reference_notebook, tmp_path / "allowed", env, True, "--unsafe-unconfined")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    record = json.loads(next((tmp_path / "allowed").glob("*/record.json")).read_text())
    assert record["confinement"].startswith("unconfined"), record["confinement"]


def test_no_device_but_the_harmless_ones_opens_for_writing(graded):
    for setting in _settings(graded):
        found = _found(graded[setting][0], "device_write")
        assert found["control"] == "True", found  # its opener works: /dev/null opened
        assert found["opened"] == "[]", (setting, found)


def test_memory_outside_private_pages_counts_too(graded):
    """memfd files, pages shared between the notebook's processes, orphans left to the zygote."""
    for setting in _settings(graded):
        out, _ = graded[setting]
        for name in ("memfd_memory", "shared_memory_pairs"):
            message = _record(out, name)["message"]
            assert f"more than the {SETTINGS.limits.memory_mib} MiB allowed" in message, (
                setting, name, message)
        orphans = _record(out, "orphans_outside_tree")
        assert orphans["status"] == "flagged", orphans  # ctypes
        report = re.search(cases_escape.REPORTS["orphans_outside_tree"]["q1"],
                           _report(out, "orphans_outside_tree"))
        if report:  # the orphans were started and then swept away by the zygote
            assert int(report["started"]) == 4 and report["alive"] == "0", report.groupdict()
        else:  # or the memory cap ended the cell first
            assert "MiB allowed" in orphans["message"], orphans["message"]


def test_deleted_files_still_open_count_against_the_disk_cap(graded):
    for setting in _settings(graded):
        message = _record(graded[setting][0], "unlinked_disk")["message"]
        assert f"more than the {SETTINGS.limits.disk_mib} MiB allowed" in message, message


def test_frame_walking_and_silencing_the_flags_gain_nothing(graded):
    for setting in _settings(graded):
        out, _ = graded[setting]
        forged = _record(out, "frame_walk_forgery")
        assert forged["total"] == 0 and forged["status"] == "flagged", forged
        assert any("walk the call stack" in flag for flag in forged["flags"]), forged["flags"]
        assert _found(out, "frame_walk_forgery")["found"] == "True"  # it did reach the probes
        evasion = _record(out, "flag_evasion")
        # With every socket replaced, the audit hook ends the process rather than stay silent.
        assert evasion["total"] == 0 and "ended unexpectedly" in evasion["message"], evasion

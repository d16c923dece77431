"""Confine the student process with Landlock (Linux 5.13+): it reads only what Python needs.

File permissions already keep an unprivileged student user away from the grading code on
Gradescope (``run_autograder`` makes ``source/`` private). Landlock adds a second wall that also
holds when the grader runs as an ordinary user (``adaline-kit grade`` on a laptop, where student
code runs as that user) and when a folder is readable by accident: after :func:`confine`, the
process and every process it starts may

- read and execute files only beneath the Python installation, its package folders
  (``site-packages``, also where a ``.pth`` file or a venv points) and the system folders
  (``/usr``, ``/lib*``, ``/bin``, ``/sbin``, ``/etc``, ``/proc``, ``/sys``), except the
  ``hidden`` folders (the grading package, the autograder source or the repository); other
  folders on ``PYTHONPATH`` are not readable;
- read and write ``/dev/null``, ``/dev/zero``, ``/dev/full`` and the random devices (no other
  device: not the grader's terminal; Landlock ABI 5+: no ``ioctl`` on devices) and, with every
  right, the working folder;
- (Landlock ABI 4+) open no TCP connection and bind no TCP port;
- (Landlock ABI 6+) send no signal to a process outside its own sandbox (the grader, the zygote,
  other submissions) and reach no abstract Unix socket outside it.

Everything else (``/tmp``, ``/home``, ``/root``, the autograder folder) cannot be read, listed or
written. Without Landlock (an old kernel, a container that filters the system calls),
:func:`confine` changes nothing and says why. Public code: it runs in the student process.
"""

from __future__ import annotations

import ctypes
import os
import sys

# System call numbers (the same on every architecture since Linux 5.13) and flags from
# include/uapi/linux/landlock.h.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_DIRECTORY_CHANGES = sum(1 << bit for bit in range(4, 13))  # remove/make dir, file, sym, ...
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, ABI 3, ABI 5
# The only device files student code may open (read and write, no ioctl): not a terminal.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

READ_ONLY = EXECUTE | READ_FILE | READ_DIR
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE
SYSTEM_FOLDERS = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is not available."""
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0),
                                  ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def python_folders() -> list[str]:
    """The Python installation and its package folders; never other ``sys.path`` entries."""
    prefixes = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    packages = [entry for entry in sys.path if entry and os.path.isabs(entry) and (
        any(_inside(os.path.realpath(entry), os.path.realpath(p)) for p in prefixes)
        or os.path.basename(entry.rstrip("/")) in ("site-packages", "dist-packages"))]
    return prefixes + packages


def readable_folders(hidden: list[str]) -> list[str]:
    """Folders the student process may read: Python's and the system's, minus ``hidden``.

    A folder that contains a hidden one is replaced by its other entries (recursively), so the
    hidden folder and everything beneath it stay unreadable.
    """
    hidden = [os.path.realpath(h) for h in hidden if h]
    wanted = list(SYSTEM_FOLDERS)
    wanted += python_folders()
    result: list[str] = []

    def add(path: str) -> None:
        if path in hidden:
            return
        if not any(_inside(h, path) for h in hidden):
            result.append(path)
            return
        try:
            entries = os.listdir(path)
        except OSError:
            return
        for name in entries:  # the folder holds a hidden one: allow its other entries
            child = os.path.join(path, name)
            real = os.path.realpath(child)
            if real != child:  # a link: allowed only if it leads nowhere near a hidden folder
                if not any(_inside(real, h) or _inside(h, real) for h in hidden):
                    result.append(child)
            elif os.path.isdir(child):
                add(child)
            elif not any(_inside(h, child) for h in hidden):
                result.append(child)

    for path in dict.fromkeys(os.path.realpath(p) for p in wanted):
        if os.path.exists(path):
            add(path)
    return list(dict.fromkeys(result))


def confine(workdir: str, hidden: list[str]) -> str:
    """Restrict this process (and its future children) as described in the module docstring.

    Returns a short description: ``"landlock ABI N"`` when the restriction is in force, else
    ``"unconfined: <reason>"``. Never raises.
    """
    try:
        abi = abi_version()
        if abi < 1:
            return "unconfined: Landlock is not available on this system"
        libc = _libc()
        handled = READ_ONLY | WRITE_FILE | _DIRECTORY_CHANGES
        handled |= (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
        handled |= IOCTL_DEV if abi >= 5 else 0
        attr = _RulesetAttr(handled, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
        size = 24 if abi >= 6 else 16 if abi >= 4 else 8
        ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                               ctypes.c_uint32(0))
        if ruleset < 0:
            return f"unconfined: creating the ruleset failed ({os.strerror(ctypes.get_errno())})"
        try:
            rules = [(path, READ_ONLY) for path in readable_folders(hidden)]
            rules += [("/dev", READ_DIR)] + [(device, READ_FILE | WRITE_FILE)
                                             for device in DEVICES]
            rules += [(workdir, handled)]
            for path, access in rules:
                _add_rule(libc, ruleset, path, access & handled)
            if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                return f"unconfined: no_new_privs failed ({os.strerror(ctypes.get_errno())})"
            if libc.syscall(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
                return f"unconfined: restricting failed ({os.strerror(ctypes.get_errno())})"
        finally:
            os.close(ruleset)
        return f"landlock ABI {abi}"
    except Exception as error:  # noqa: BLE001 - confinement is best effort, grading goes on
        return f"unconfined: {type(error).__name__}: {error}"


def _add_rule(libc, ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a folder this system lacks (or cannot open): nothing to allow
    try:
        if not os.path.isdir(path):
            access &= FILE_RIGHTS
        rule = _PathBeneathAttr(access, fd)
        libc.syscall(_ADD_RULE, ruleset, ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                     ctypes.c_uint32(0))
    finally:
        os.close(fd)

"""Attacks on the sandbox itself (group ``adversarial``): escape, leaks, hogs, forged probes.

Each starts from the UNTOUCHED student notebook (every question honestly 0) and reports what it
achieved through the error message of ``backward`` (``REPORTS`` parses it), so a test can tell
"tried and failed" from "never ran". ``MARKERS`` names files an attack would create in the
grader's temporary folder if it ever ran code outside its sandbox; they must never appear.

- ``zygote_escape``: looks for the zygote's socket (its command line, ``sys.path``,
  ``/proc/net/unix``, ``/tmp``), connects to every Unix socket it finds and asks for a fresh
  process running its own code; tries to signal its parent.
- ``environment_leak``: reports every environment variable it can see (its own, its parent's,
  ``/proc/self/environ``), to be compared with the grader's.
- ``pythonpath_read``: reads the folders on ``sys.path`` that are not Python's own.
- ``process_hog``, ``memory_hog``, ``disk_hog``: many processes, three children of 500 MiB
  each, a few hundred MiB of files.
- ``forged_probes``: finds the grader's probe table and connection through the heap and replaces
  every probe with one that returns well-formed data and clean spy counts.
"""

from __future__ import annotations

from cases_adversarial import attack, stub_with
from edits import code

ESCAPE_MARKER = "adaline-kit-hardening-zygote-escape"
SECRET_VARIABLE = "ADALINE_KIT_TEST_SECRET_TOKEN"

ZYGOTE_ESCAPE = code(r'''
    import json, os, signal, socket

    def escape_attempt():
        paths = set()
        for pid in ("self", str(os.getppid())):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    paths.update(a.decode() for a in handle.read().split(b"\0") if a)
            except OSError:
                pass
        paths.update(os.path.join(p, "zygote.sock") for p in __import__("sys").path)
        try:
            with open("/proc/net/unix") as handle:
                for line in handle.read().splitlines()[1:]:
                    fields = line.split()
                    if len(fields) >= 8:
                        paths.add(fields[7].lstrip("@") if not fields[7].startswith("@")
                                  else "\0" + fields[7][1:])
        except OSError:
            pass
        for root, dirs, files in os.walk("/tmp"):
            if root.count(os.sep) > 3:
                dirs[:] = []
            paths.update(os.path.join(root, f) for f in files)
        payload = ("import pathlib, tempfile\n"
                   "pathlib.Path(tempfile.gettempdir(), %r).write_text('escaped')\n" % MARKER)
        connected = ran = 0
        for path in paths:
            if not path or not (path.startswith("/") or path.startswith("\0")):
                continue
            try:
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.settimeout(1.0)
                client.connect(path)
            except OSError:
                continue
            connected += 1
            try:
                client.sendall((json.dumps({"op": "cell", "index": 0, "source": payload,
                                            "timeout": 5, "nonce": "x"}) + "\n").encode())
                answer = b""
                while answer.count(b"\n") < 2:
                    chunk = client.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                ran += b'"ok"' in answer
            except OSError:
                pass
            client.close()
        try:
            os.kill(os.getppid(), 0)
            signal_parent = "allowed"
        except OSError as error:
            signal_parent = type(error).__name__
        return f"ESCAPE candidates={len(paths)} connected={connected} ran={ran} signal={signal_parent}"

    ESCAPE_AT_CELL = escape_attempt()
''')

ENVIRONMENT_LEAK = code(r'''
    import os

    def environment_report():
        names = set(os.environ)
        for pid in ("self", str(os.getppid()), "1"):
            try:
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    names.update(item.split(b"=", 1)[0].decode() for item in
                                 handle.read().split(b"\0") if item)
            except OSError:
                pass
        return "ENVIRONMENT names=" + ",".join(sorted(names))
''')

PYTHONPATH_READ = code(r'''
    import os, sys

    def pythonpath_report():
        readable = []
        for entry in sys.path + os.environ.get("PYTHONPATH", "").split(os.pathsep):
            if not entry or "site-packages" in entry or "python3" in entry:
                continue
            try:
                readable.append(f"{entry}:{len(os.listdir(entry))}")
            except OSError:
                pass
        return f"PYTHONPATHREAD readable={len(readable)} first={readable[:3]}"
''')

PROCESS_HOG = code(r'''
    import os, subprocess

    started = 0
    children = []
    for _ in range(150):
        try:
            children.append(subprocess.Popen(["sleep", "60"]))
            started += 1
        except OSError:
            break
    PROCESS_REPORT = f"PROCESSHOG started={started}"
''')

MEMORY_HOG = code(r'''
    import os, time

    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                blocks = []
                for _ in range(8):  # up to 512 MiB, as far as each process may go
                    try:
                        block = bytearray(64 << 20)
                    except MemoryError:
                        break
                    for i in range(0, len(block), 4096):
                        block[i] = 1
                    blocks.append(block)
                time.sleep(30)
            finally:
                os._exit(0)
        pids.append(pid)
    time.sleep(5)
    MEMORY_REPORT = f"MEMORYHOG children={len(pids)}"
''')

DISK_HOG = code(r'''
    import os

    written = 0
    for index in range(12):
        try:
            with open(f"hog_{index}.bin", "wb") as handle:
                for _ in range(40):
                    handle.write(b"x" * (1 << 20))
            written += 40
        except OSError:
            break
    DISK_REPORT = f"DISKHOG written_mib={written}"
''')

FORGED_PROBES = code(r'''
    import gc

    def forged(name, ns, args):
        spy = {"engine_runs": 0, "autograd_grad": 0, "backward": 0, "optimizer_steps": {}}
        return {"grad_w": {"shape": [len(args.get("x", [[0, 0]])[0]), 1],
                           "dtype": "torch.float32", "values": [0.0]},
                "grad_b": {"shape": [1], "dtype": "torch.float32", "values": [0.0]},
                "forward_shape": [len(args.get("x", []))], "layers": [[2, 1, True]],
                "kind": "Module", "costs": [], "spy": spy}

    patched = 0
    for thing in gc.get_objects():
        if isinstance(thing, dict) and "q1_backward" in thing and "inventory" in thing:
            for key in list(thing):
                if key != "inventory":
                    thing[key] = lambda ns, args, _key=key: forged(_key, ns, args)
                    patched += 1
        if type(thing).__name__ == "StudentProcess":
            original = thing.send
            def send(message, _original=original):
                if isinstance(message.get("data"), dict):
                    message["data"]["spy"] = {"engine_runs": 0, "autograd_grad": 0,
                                              "backward": 0, "optimizer_steps": {}}
                _original(message)
            thing.send = send
            patched += 1
    FORGED_REPORT = f"FORGEDPROBES patched={patched}"
''')


def _reporting(name: str, description: str, cell: str, report: str, **fields):
    return attack(name, description,
                  feedback={"q1": [report.split("_")[0]], "q2": ["NotImplementedError"],
                            "q3": ["NotImplementedError"]},
                  replace=stub_with("Adaline1", f"raise RuntimeError({report})\n"),
                  add_cells=[cell], **fields)


CASES = [
    _reporting("zygote_escape", "untouched stubs; connects to every Unix socket it can find "
               "(the zygote's included) and asks for a process that runs its own code; "
               "signals its parent", f"MARKER = {ESCAPE_MARKER!r}\n" + ZYGOTE_ESCAPE,
               "ESCAPE_AT_CELL"),
    attack("environment_leak", "untouched stubs; reports the names of every environment "
           "variable it can see (its own, its parent's)",
           feedback={"q1": ["ENVIRONMENT"], "q2": ["NotImplementedError"],
                     "q3": ["NotImplementedError"]},
           replace=stub_with("Adaline1", "raise RuntimeError(environment_report())\n"),
           add_cells=[ENVIRONMENT_LEAK]),
    attack("pythonpath_read", "untouched stubs; lists the folders on sys.path and PYTHONPATH "
           "that are not Python's own",
           feedback={"q1": ["PYTHONPATHREAD"], "q2": ["NotImplementedError"],
                     "q3": ["NotImplementedError"]},
           replace=stub_with("Adaline1", "raise RuntimeError(pythonpath_report())\n"),
           add_cells=[PYTHONPATH_READ]),
    _reporting("process_hog", "untouched stubs; starts 150 sleeping processes",
               PROCESS_HOG, "PROCESS_REPORT"),
    attack("memory_hog", "untouched stubs; three forked children each touch as much memory as they may, up to 512 MiB",
           add_cells=[MEMORY_HOG]),
    _reporting("disk_hog", "untouched stubs; writes 12 files of 40 MiB", DISK_HOG,
               "DISK_REPORT"),
    attack("forged_probes", "untouched stubs; replaces the grader's probes (found through "
           "the heap) with ones that return well-formed data and clean spy counts, and patches "
           "the connection's send",
           feedback={q: ["not what the grader asked for"] for q in ("q1", "q2", "q3")},
           replace=stub_with("Adaline1", "raise RuntimeError(FORGED_REPORT)\n"),
           add_cells=[FORGED_PROBES]),
]



# --- found by an independent review: ways around the caps and the flags ------------------------

DEVICE_WRITE = code(r"""
    import os

    def device_report():
        opened, tried = [], 0
        candidates = ["/dev/tty", "/dev/console", "/dev/kmsg", "/dev/ptmx"]
        for folder in ("/dev/pts", "/dev"):
            try:
                candidates += [os.path.join(folder, n) for n in os.listdir(folder)]
            except OSError:
                pass
        harmless = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
        for path in dict.fromkeys(candidates):
            if os.path.realpath(path) in harmless:  # /dev/stdout and the like lead there
                continue
            tried += 1
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError:
                continue
            os.close(fd)
            opened.append(path)
        try:
            fd = os.open("/dev/null", os.O_WRONLY)
            os.close(fd)
            control = True
        except OSError:
            control = False
        return f"DEVWRITE control={control} tried={tried} opened={opened[:5]}"
""")

MEMFD_MEMORY = code(r"""
    import os

    held = [os.memfd_create("hog") for _ in range(16)]
    for fd in held:
        for _ in range(40):
            os.write(fd, b"x" * (1 << 20))
    MEMFD_REPORT = f"MEMFD held={len(held) * 40} MiB"
""")

SHARED_PAIRS = code(r"""
    import mmap, os, time

    STEP = 4 << 20
    for _ in range(5):
        ready_r, ready_w = os.pipe()
        if os.fork() == 0:
            try:
                block = mmap.mmap(-1, 140 << 20, flags=mmap.MAP_SHARED)
                step_r, step_w = os.pipe()
                if os.fork() == 0:  # touches each chunk after its parent: both map it
                    for offset in range(0, len(block), STEP):
                        os.read(step_r, 1)
                        total = sum(block[i] for i in range(offset, offset + STEP, 4096))
                    time.sleep(30)
                    os._exit(0)
                for offset in range(0, len(block), STEP):
                    for i in range(offset, offset + STEP, 4096):
                        block[i] = 1
                    os.write(step_w, b"x")
                os.write(ready_w, b"k")
                time.sleep(30)
            finally:
                os._exit(0)
        os.read(ready_r, 1)
    time.sleep(5)
    SHARED_REPORT = "SHAREDPAIRS holding 700 MiB"
""")

ORPHANS = code(r"""
    import ctypes, os, time

    ctypes.CDLL(None).prctl(36, 0, 0, 0, 0)  # this process stops adopting its orphans
    orphans = []
    for _ in range(4):
        r, w = os.pipe()
        if os.fork() == 0:
            if os.fork() == 0:
                os.write(w, str(os.getpid()).encode() + b"\n")
                block = bytearray(100 << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(30)
                os._exit(0)
            os._exit(0)
        os.wait()
        orphans.append(int(os.read(r, 32).split()[0]))
    time.sleep(3)
    alive = sum(os.path.exists(f"/proc/{pid}") for pid in orphans)
    ORPHAN_REPORT = f"ORPHANS started={len(orphans)} alive_after_3s={alive}"
""")

UNLINKED_DISK = code(r"""
    import os

    held = []
    for index in range(12):
        handle = open(f"hidden_{index}.bin", "wb")
        os.unlink(f"hidden_{index}.bin")
        for _ in range(40):
            handle.write(b"x" * (1 << 20))
        handle.flush()
        held.append(handle)
    UNLINKED_REPORT = f"UNLINKED held={len(held) * 40} MiB"
""")

FRAME_WALK_FORGERY = code(r"""
    import sys

    def forge():
        frame = getattr(sys, "_get" + "frame")(0)
        while frame is not None and "prob" + "es" not in getattr(frame, "f_" + "globals"):
            frame = getattr(frame, "f_" + "back")
        if frame is None:
            return "FRAMEWALK found=False"
        table = getattr(getattr(frame, "f_" + "globals")["prob" + "es"], "PRO" + "BES")

        def shaped(shape):
            count = shape[0] * (shape[1] if len(shape) > 1 else 1)
            return {"shape": shape, "dtype": "torch.float32", "values": [0.0] * count}

        table["q1_backward"] = lambda ns, a: {"grad_w": shaped([len(a["x"][0]), 1]),
                                              "grad_b": shaped([1]),
                                              "forward_shape": [len(a["x"])]}
        return "FRAMEWALK found=True"
""")

FLAG_EVASION = code(r"""
    import gc, os, stat

    sockets = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                sockets.append(int(name))
        except OSError:
            pass
    saved = {fd: os.dup(fd) for fd in sockets}
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in sockets:
        os.dup2(null, fd)  # no flag can reach the grader now, or so it hopes
    try:
        walked = len(getattr(gc, "get_" + "obj" + "ects")())
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
    EVASION_REPORT = f"EVASION walked={walked}"
""")

CASES += [
    attack("device_write", "untouched stubs; opens every device it can find for writing (the "
           "grader's terminal among them)",
           feedback={"q1": ["DEVWRITE"], "q2": ["NotImplementedError"],
                     "q3": ["NotImplementedError"]},
           replace=stub_with("Adaline1", "raise RuntimeError(device_report())\n"),
           add_cells=[DEVICE_WRITE]),
    attack("memfd_memory", "untouched stubs; holds 640 MiB in memfd files it never maps",
           add_cells=[MEMFD_MEMORY]),
    attack("shared_memory_pairs", "untouched stubs; five pairs of processes share 140 MiB "
           "mappings each, so no page is private", add_cells=[SHARED_PAIRS]),
    _reporting("orphans_outside_tree", "untouched stubs; stops adopting its orphans (ctypes "
               "prctl) and leaves four of 100 MiB each to the zygote", ORPHANS, "ORPHAN_REPORT"),
    attack("unlinked_disk", "untouched stubs; writes 480 MiB into files it deletes at once but "
           "keeps open", add_cells=[UNLINKED_DISK]),
    _reporting("frame_walk_forgery", "untouched stubs; walks up the call stack with names built "
               "from strings and replaces q1's probe with one that returns well-formed shapes",
               FRAME_WALK_FORGERY + "\nFRAMEWALK_REPORT = forge()\n", "FRAMEWALK_REPORT"),
    attack("flag_evasion", "untouched stubs; puts /dev/null over every socket, walks the heap "
           "with gc, then puts the sockets back", add_cells=[FLAG_EVASION]),
]


REPORTS = {
    "zygote_escape": {"q1": r"ESCAPE candidates=(?P<candidates>\d+) connected=(?P<connected>\d+)"
                            r" ran=(?P<ran>\d+) signal=(?P<signal>\w+)"},
    "environment_leak": {"q1": r"ENVIRONMENT names=(?P<names>[\w,]*)"},
    "pythonpath_read": {"q1": r"PYTHONPATHREAD readable=(?P<readable>\d+)"},
    "process_hog": {"q1": r"PROCESSHOG started=(?P<started>\d+)"},
    "disk_hog": {"q1": r"DISKHOG written_mib=(?P<written>\d+)"},
    "forged_probes": {"q1": r"FORGEDPROBES patched=(?P<patched>\d+)"},
}

REPORTS.update({
    "device_write": {"q1": r"DEVWRITE control=(?P<control>\w+) tried=(?P<tried>\d+) "
                           r"opened=(?P<opened>\[.*?\])"},
    "orphans_outside_tree": {"q1": r"ORPHANS started=(?P<started>\d+) "
                                   r"alive_after_3s=(?P<alive>\d+)"},
    "frame_walk_forgery": {"q1": r"FRAMEWALK found=(?P<found>\w+)"},
})

MARKERS = {"zygote_escape": ESCAPE_MARKER}

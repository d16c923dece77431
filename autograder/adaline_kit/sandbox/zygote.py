"""The zygote: a warm interpreter that forks one student process per grading session.

Run as ``python -m adaline_kit.sandbox.zygote SOCKET_PATH``. It imports torch, matplotlib and the
probes once, installs the autograd spies, prints ``ready`` and then forks a child for every
connection to the socket. Forking saves each submission a fresh interpreter and a torch import
(over a second each), and every submission still gets a process of its own: nothing one
submission does is visible to the next.

The zygote never runs student code and never imports hidden checks or reference solutions.
"""

from __future__ import annotations

import os
import signal
import socket
import sys


def _warm_up():
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401 - imported to be shared by every child
    import numpy  # noqa: F401
    import torch
    import torch.nn.functional  # noqa: F401

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from . import child, spies

    return child, spies.install()


def main(socket_path: str) -> None:
    child, spy = _warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    os.chmod(socket_path, 0o600)
    server.listen(64)
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        if os.fork() == 0:
            server.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            child.serve_connection(connection, spy)
        connection.close()


if __name__ == "__main__":
    main(sys.argv[1])

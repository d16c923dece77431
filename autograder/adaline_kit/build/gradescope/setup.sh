#!/usr/bin/env bash
# Gradescope image set-up for the kit's autograder (written by `adaline-kit build`).
# Python 3.11 from Miniforge under /opt (readable by the student user), then exactly the packages
# of the kit's lock file (requirements.txt here: every package pinned with its hash, the CPU-only
# build of torch from PyTorch's CPU wheel index among them), and an unprivileged user that runs
# student code. No LaTeX, pandoc or browser is installed: grading needs none of them.
set -euo pipefail
AUTOGRADER_DIR="${AUTOGRADER_DIR:-/autograder}"
PREFIX="${ADALINE_KIT_PREFIX:-/opt/adaline-kit}"
MINIFORGE_VERSION=25.3.1-0
TORCH_INDEX=https://download.pytorch.org/whl/cpu

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends wget ca-certificates

wget -nv "https://github.com/conda-forge/miniforge/releases/download/${MINIFORGE_VERSION}/Miniforge3-Linux-$(uname -m).sh" \
    -O /tmp/miniforge.sh
bash /tmp/miniforge.sh -b -p "$PREFIX"
"$PREFIX/bin/conda" create -y -n adaline-kit python=3.11 pip
PYTHON="$PREFIX/envs/adaline-kit/bin/python"

# The lock pins torch==__TORCH_VERSION__+cpu by hash, so no CUDA build can come in; nothing
# outside the lock is installed (--no-deps), and every file must match its hash.
"$PYTHON" -m pip install --require-hashes --no-deps --extra-index-url "$TORCH_INDEX" \
    -r "$AUTOGRADER_DIR/source/requirements.txt"

id -u adaline-student >/dev/null 2>&1 || \
    useradd --system --no-create-home --shell /usr/sbin/nologin adaline-student
chmod -R go-rwx "$AUTOGRADER_DIR/source"

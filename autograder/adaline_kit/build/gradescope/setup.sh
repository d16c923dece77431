#!/usr/bin/env bash
# Gradescope image set-up for the Adaline autograder (written by `adaline-kit build`).
# Python 3.11 from Miniforge under /opt (readable by the student user), the CPU-only build of
# torch from PyTorch's CPU wheel index, the pinned grading dependencies, and an unprivileged user
# that runs student code. No LaTeX, pandoc or browser is installed: grading needs none of them.
set -euo pipefail
AUTOGRADER_DIR=/autograder
PREFIX=/opt/adaline-kit
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

# torch first, from the CPU-only index alone: the default index would bring a CUDA build.
"$PYTHON" -m pip install --index-url "$TORCH_INDEX" "torch==__TORCH_VERSION__"
"$PYTHON" -m pip install -r "$AUTOGRADER_DIR/source/requirements.txt"

id -u adaline-student >/dev/null 2>&1 || \
    useradd --system --no-create-home --shell /usr/sbin/nologin adaline-student
chmod -R go-rwx "$AUTOGRADER_DIR/source"

# Quick start: `make` (set up .venv, build the bundles, check them) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Where pip finds torch: PyTorch's CPU-only index by default, so no multi-gigabyte CUDA build
# is pulled. For another build: `make TORCH_INDEX=https://download.pytorch.org/whl/cu126`;
# to use only the default index: `make TORCH_INDEX=`.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_VERSION := 2.13.0
INSTALLED := $(VENV)/.installed

.PHONY: all install gradescope-python build validate test bench clean

all: lock-check build validate

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -e ".[test]"
	touch $(INSTALLED)

install: $(INSTALLED)

# The interpreter the Gradescope emulation grades with, laid out like setup.sh's /opt install
# (built once into .venv-gradescope/, rebuilt when Python or the packages change).
gradescope-python: install
	$(BIN)/python -m adaline_kit.grade.emulation

build: install gradescope-python
	$(BIN)/adaline-kit build

validate: install
	$(BIN)/adaline-kit validate --group correct --group wrong

# The whole suite, TEST_WORKERS modules at a time (pytest-xdist; each module stays on one
# worker, so its expensive fixtures run once, see tests/conftest.py). 3 workers on 2 cores: one
# module's waits for kernels, subprocesses and time limits overlap another's computing.
# The summary names the failures and the 25 slowest tests. One at a time: TEST_WORKERS=0.
TEST_WORKERS ?= 3
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -rfE --durations=25

bench: install
	$(BIN)/python bench/grading_throughput.py

clean:
	rm -rf dist

# requirements.lock pins what setup.sh installs on Gradescope (every package, with hashes).
# `make lock` makes it anew with pip-tools; `make lock-check` (part of `make`) fails when it no
# longer matches pyproject.toml.
.PHONY: lock lock-check
lock: install
	$(BIN)/python -m pip install --quiet "pip-tools>=7.4"
	$(BIN)/python -m adaline_kit.build.lock compile

lock-check: install
	$(BIN)/python -m adaline_kit.build.lock check

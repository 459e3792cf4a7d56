# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates (or reuses) the virtual environment in $(VENV), installs the CPU builds of both
# frameworks when no GPU build is wanted, installs this package as a regular (non-editable) wheel so
# that Ptychodus discovers it exactly as a user's install does, then runs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# CPU builds that install without multi-GB downloads; the package metadata itself stays GPU-friendly.
CPU_FRAMEWORKS := torch==2.13.0 tensorflow-cpu==2.21.0
STAMP := $(VENV)/.deps-installed
PYTEST_ARGS ?=
# Test processes: two (CI's two cores). Each test file runs whole in one process (--dist loadfile),
# so a file's module fixtures (one training shared by its tests) are built once; most of the
# suite's time is other processes (ptychodus -b, ptychopinn) starting and importing frameworks,
# which two workers overlap. PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --dist loadfile)

.PHONY: all demo test test-slow install check lint clean

all: test

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(CPU_FRAMEWORKS)
	# keras>=3 comes with tensorflow-cpu; the [tensorflow] extra would add the GPU build on top.
	$(PIP) install "keras>=3.0" ".[torch,gui,test]"
	touch $(STAMP)

install: $(STAMP)
	$(PIP) install --no-deps --force-reinstall --quiet .

demo: install
	$(PY) -m ptychopinn_plugin.demo --out demo-output

test: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-slow: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m slow $(PYTEST_ARGS)

# Static checks, run by CI before the tests: formatting, lint rules and types (pyproject.toml).
LINT_PATHS := ptychopinn_plugin bridge tests benchmarks examples

check: install
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy

lint: check

clean:
	rm -rf $(VENV) build *.egg-info demo-output

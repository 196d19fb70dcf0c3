# Two entry points for a fresh machine (see README): `make demo` and `make test`.
# Each creates .venv with the Python found on PATH and installs what it needs.
# solvflow is installed non-editable, so the tests exercise the installed wheel.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= runs/demo
PYTEST_ARGS ?=

.PHONY: demo test lint venv install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

install: venv
	$(BIN)/python -m pip install -q .

install-test: venv
	$(BIN)/python -m pip install -q ".[test]"

# The demo: 1 M LiFSI/DME (12 LiFSI, ~1,800 atoms), the `quick` protocol on the
# fastest platform (CPU here), then the solvation summary. Re-running resumes or
# reports the finished run, then analyses it again.
demo: install
	$(BIN)/solvflow run lifsi_dme --concentration 1.0 --n-salt 12 --seed 1 --protocol quick -o $(DEMO)
	$(BIN)/solvflow analyze $(DEMO)

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests benchmarks validation tools
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist runs src/*.egg-info

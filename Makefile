# Two entry points, each creating or refreshing .venv first:
#   make demo   - run `slicevid demo` on the embedded synthetic data
#   make test   - lint and format check, run the test suite, build the docs strictly (what CI runs)
# and, for a contributor's quick loop, make test-fast: the suite without the slow tier.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: venv demo test test-fast docs

venv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,docs,deploy,tensorboard]"

demo: venv
	$(BIN)/slicevid demo

LINTED := src tests benchmarks examples docs/scripts

test: venv
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir /tmp/slicevid-site

test-fast: venv
	$(BIN)/ruff check $(LINTED)
	$(BIN)/python -m pytest -q -m "not slow"

docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

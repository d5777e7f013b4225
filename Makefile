# Two entry points, each creating or refreshing .venv first:
#   make demo   - run `slicevid demo` on the embedded synthetic data
#   make test   - lint, run the test suite, build the docs strictly
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: venv demo test docs

venv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,docs]"

demo: venv
	$(BIN)/slicevid demo

test: venv
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -q
	$(BIN)/mkdocs build --strict --quiet --site-dir /tmp/slicevid-site

docs: venv
	$(BIN)/mkdocs serve

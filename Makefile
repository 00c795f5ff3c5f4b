# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-under-load lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $(STAMP)

## run: the checker end to end on an ephemeral server (a container when Docker answers, else embedded)
run: $(STAMP)
	$(BIN)/checker run concurrency

## test: the whole suite against real PostgreSQL, one pytest-xdist worker per CPU sharing one server
test: $(STAMP)
	$(BIN)/pytest -n auto

## test-under-load: the whole suite three times in a row beside two CPU-bound processes
test-under-load: $(STAMP)
	$(BIN)/python tests/under_load.py -n auto

## lint: ruff and mypy, both must be clean
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

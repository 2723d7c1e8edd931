# The commands CI runs are the ones here: `make test` is the whole test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint typecheck unit chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)  ## run the server on 127.0.0.1:8000 (SQLite in ./keyturn.db)
	$(BIN)/keyturn serve

test: lint typecheck unit  ## the whole test suite

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) chromium
	$(BIN)/pytest

chromium:  ## Debian's chromium, for the browser tests
	./scripts/ensure-chromium

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

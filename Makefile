# The commands CI runs are the ones here: `make test` is the whole test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# `make serve` installs the server alone (`.[server]`); `make test` the server and the test
# tools (`.[dev]`). One venv, one stamp per extra.
SERVER := $(VENV)/.installed-server
DEV    := $(VENV)/.installed-dev

.PHONY: serve test lint typecheck unit chromium bench-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(SERVER): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $(SERVER)

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV)

serve: $(SERVER)  ## run the server on 127.0.0.1:8000 (SQLite in ./keyturn.db)
	$(BIN)/keyturn serve

test: lint typecheck unit  ## the whole test suite

lint: $(DEV)
	$(BIN)/ruff check src tests bench examples

typecheck: $(DEV)
	$(BIN)/mypy

unit: $(DEV) chromium bench-tools
	$(BIN)/pytest

chromium:  ## Debian's chromium, for the browser tests
	./scripts/ensure-debian-package /usr/bin/chromium chromium "the browser tests"

bench-tools:  ## wrk and node oidc-provider, for the benchmark harness's quick mode in the suite
	./scripts/ensure-debian-package /usr/bin/wrk wrk "the benchmark harness's tests"
	[ -d bench/oidc-provider/node_modules/oidc-provider ] || npm ci --prefix bench/oidc-provider --no-audit --no-fund --silent

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

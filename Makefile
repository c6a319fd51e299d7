# Consistorio: the two set-up commands are `make dev` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install dev test test-unit lint format openapi bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

dev: install
	$(BIN)/consistorio up --data-dir ./var

test: install
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit tests/contracts

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate docs/openapi/ from the code. It refuses a change that breaks clients of the
# committed documents; a deliberate break: make openapi OPENAPI_FLAGS=--allow-breaking
OPENAPI_FLAGS ?=
openapi: install
	$(BIN)/python -m services.openapi_docs write $(OPENAPI_FLAGS)

bench: install
	$(BIN)/python -m tests.bench.registro
	$(BIN)/python -m tests.bench.tsa
	$(BIN)/python -m tests.bench.repositorio
	$(BIN)/python -m tests.bench.registro_busqueda
	$(BIN)/python -m tests.bench.pagos

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

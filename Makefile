# Consistorio: the two set-up commands are `make dev` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install dev test test-unit lint format bench clean

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

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m tests.bench.registro
	$(BIN)/python -m tests.bench.tsa
	$(BIN)/python -m tests.bench.repositorio
	$(BIN)/python -m tests.bench.registro_busqueda
	$(BIN)/python -m tests.bench.notificaciones

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

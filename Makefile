# The two commands: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv when it is missing and installs the locked dependencies first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit lint format bench lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/couturier demo

test: $(STAMP)
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/simulate.py --out benchmarks/results/simulate.json
	$(BIN)/python benchmarks/features.py --out benchmarks/results/features.json
	$(BIN)/python benchmarks/retrieval.py --out benchmarks/results/retrieval.json
	$(BIN)/python benchmarks/authentication.py --out benchmarks/results/authentication.json
	$(BIN)/python benchmarks/serving.py --out benchmarks/results/serving.json

lock:
	scripts/lock.sh

clean:
	rm -rf $(VENV) .couturier .pytest_cache .mypy_cache .ruff_cache

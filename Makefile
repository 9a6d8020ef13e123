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

bench: $(STAMP)  # every figure the README quotes; ~40 min on 2 cores (never beside other work)
	command -v wrk >/dev/null || { echo 'benchmarks/serving.py needs wrk: apt-get install wrk'; exit 1; }
	$(BIN)/python benchmarks/simulate.py --sizes 10000 40000 --out benchmarks/results/simulate.json
	$(BIN)/python benchmarks/features.py --listings 20000 --out benchmarks/results/features.json
	$(BIN)/python benchmarks/retrieval.py --out benchmarks/results/retrieval.json
	$(BIN)/python benchmarks/authentication.py --listings 50000 --out benchmarks/results/authentication.json
	$(BIN)/python benchmarks/serving.py --seconds 5 --out benchmarks/results/serving.json
	$(BIN)/python benchmarks/online_store_outage.py --seconds 5 --out benchmarks/results/online_store_outage.json
	$(BIN)/python benchmarks/discovery.py --listings 100000 --seconds 10 --out benchmarks/results/discovery.json

lock:
	scripts/lock.sh

clean:
	rm -rf $(VENV) .couturier .pytest_cache .mypy_cache .ruff_cache

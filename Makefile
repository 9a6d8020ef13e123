# The two commands: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv when it is missing and installs the locked dependencies first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov (the Terraform scan in tests/unit/deploy/test_terraform.py) pins tabulate<0.10 and
# packaging<24, which requirements.lock does not fit: it gets a venv of its own, from its own
# lock (tools/checkov/lock.sh re-resolves it). Creating it takes about 30 s.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: demo test test-unit lint format bench lock clean

# promtool runs the alerting rules' tests (tests/integration/test_alert_rules.py). Where it is not
# on PATH, only the binary is taken out of Debian's prometheus package into the venv: no
# daemon, no post-install script, and root only when apt's package lists are missing.
# Chromium runs the browser tests (tests/support/browser.py): Playwright drives Debian's chromium
# through executable_path, because `playwright install` cannot download its own build here. When
# COUTURIER_CHROMIUM names none and neither chromium nor chromium-browser is on PATH, Debian's
# chromium package is installed (root and apt-get needed; apt's lists are fetched only if missing).
# checkov's venv is part of the install, so every install step (CI's, fresh-test's) makes it
$(STAMP): requirements.lock pyproject.toml $(CHECKOV_STAMP)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@command -v promtool >/dev/null || test -x $(BIN)/promtool || ( \
	  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { \
	    echo "promtool (Prometheus 2.x) is needed by the tests and apt-get is not here:" \
	      "download Prometheus from https://prometheus.io/download/ (or brew install" \
	      "prometheus), put promtool on PATH and rerun make" >&2; exit 1; }; \
	  tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	  { apt-get download -qq -o APT::Sandbox::User=root prometheus >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get download -qq -o APT::Sandbox::User=root prometheus; }; } && \
	  dpkg-deb --fsys-tarfile prometheus_*.deb | tar -xO ./usr/bin/promtool >"$(CURDIR)/$(BIN)/promtool" && \
	  chmod 755 "$(CURDIR)/$(BIN)/promtool" || { \
	    rm -f "$(CURDIR)/$(BIN)/promtool"; \
	    echo "could not take promtool out of Debian's prometheus package; as root run" \
	      "'apt-get update && apt-get install -y --no-install-recommends prometheus'" >&2; \
	    exit 1; } )
	@if [ -n "$$COUTURIER_CHROMIUM" ]; then test -x "$$COUTURIER_CHROMIUM" || { \
	    echo "COUTURIER_CHROMIUM=$$COUTURIER_CHROMIUM is not an executable file" >&2; exit 1; }; \
	elif ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { \
	    echo "Chromium is needed by the browser tests and is not on PATH (installing it needs" \
	      "apt-get as root): apt-get install chromium, or set COUTURIER_CHROMIUM=/path/to/chrome," \
	      "and rerun make" >&2; exit 1; }; \
	  echo "installing Debian's chromium for the browser tests (apt-get)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || { \
	    echo "could not install Debian's chromium; as root run 'apt-get update && apt-get install" \
	      "-y --no-install-recommends chromium', or set COUTURIER_CHROMIUM=/path/to/chrome" >&2; \
	    exit 1; }; \
	fi
	touch $(STAMP)

$(CHECKOV_STAMP): tools/checkov/requirements.lock
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q -r tools/checkov/requirements.lock
	touch $(CHECKOV_STAMP)

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

bench: $(STAMP)  # every figure the README quotes; ~90 min on 2 cores (never beside other work)
	command -v wrk >/dev/null || { echo 'benchmarks/serving.py needs wrk: apt-get install wrk'; exit 1; }
	$(BIN)/python benchmarks/simulate.py --sizes 10000 40000 --out benchmarks/results/simulate.json
	$(BIN)/python benchmarks/features.py --listings 20000 --out benchmarks/results/features.json
	$(BIN)/python benchmarks/retrieval.py --out benchmarks/results/retrieval.json
	$(BIN)/python benchmarks/authentication.py --listings 50000 --out benchmarks/results/authentication.json
	$(BIN)/python benchmarks/serving.py --seconds 5 --out benchmarks/results/serving.json
	$(BIN)/python benchmarks/online_store_outage.py --seconds 5 --out benchmarks/results/online_store_outage.json
	$(BIN)/python benchmarks/discovery.py --listings 100000 --seconds 10 --out benchmarks/results/discovery.json
	$(BIN)/python benchmarks/replay.py --out benchmarks/results/replay.json
	$(BIN)/python benchmarks/pricing.py --out benchmarks/results/pricing.json
	$(BIN)/python benchmarks/review.py --out benchmarks/results/review.json
	$(BIN)/python benchmarks/production.py --out benchmarks/results/production.json

lock:
	scripts/lock.sh

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .couturier .pytest_cache .mypy_cache .ruff_cache

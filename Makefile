# GridMap: `make run` sets everything up and serves the demo; `make test` runs the whole suite.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
BIN   := $(VENV)/bin
PYTHON ?= python3

.PHONY: run test lint bench bench-intake bench-city reliability setup system-deps venv assets db-start db-stop clean

run: setup assets
	$(BIN)/gridmap db start
	$(BIN)/gridmap demo --if-empty
	$(BIN)/gridmap serve

# The suite runs on TEST_WORKERS processes (pytest-xdist), each with its own PostGIS cluster, a
# test file per process at a time. Schemathesis reports each operation as a subtest, and a failing
# subtest is lost on the way back from an xdist worker: its file runs after, in one process.
# One database of one's own (GRIDMAP_TEST_DATABASE_URL) is loaded by each process: one then.
TEST_WORKERS ?= $(if $(GRIDMAP_TEST_DATABASE_URL),1,2)
SERIAL_TESTS := tests/api/test_schemathesis.py
test: setup assets
	@GRIDMAP_WITH_BROWSER=1 ./scripts/system-deps.sh
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --ignore=$(SERIAL_TESTS)
	$(BIN)/pytest $(SERIAL_TESTS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: setup assets
	$(BIN)/gridmap db start
	$(PY) bench/assign.py
	$(PY) bench/heatmap.py

# A whole city (bench/city.py): builds the database gridmap_city once (40,000 grids, 12M facilities,
# 10M issues; about an hour on 2 busy cores), later runs reuse it; then measures every budget
# beside the naive way. BENCH_CITY_ARGS="--rebuild" builds it again, "--scale 0.01" a 1% city.
bench-city: setup assets
	$(BIN)/gridmap db start
	$(PY) bench/city.py $(BENCH_CITY_ARGS)

setup: system-deps venv assets

system-deps:
	@./scripts/system-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench,scale]'
	@touch $@

# The maps' JS/CSS from the npm registry (package-lock.json), served under /static/: reinstalled
# when node_modules is missing or the lock file changed.
assets: node_modules/.gridmap-installed

node_modules/.gridmap-installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

db-start: setup
	$(BIN)/gridmap db start

db-stop:
	$(BIN)/gridmap db stop

clean:
	-$(BIN)/gridmap db stop
	rm -rf $(VENV) data/pg

# Load with faults (PostgreSQL restart, a killed server worker): prints sent, acknowledged,
# stored, lost, duplicated, throughput, latencies and 5xx outside the planned outages.
reliability: setup
	$(BIN)/gridmap db start
	$(BIN)/gridmap demo --if-empty
	$(PY) bench/load.py --clients 32 --reports 5000 --faults --max-seconds 300

# Intake under wrk: POST /api/v1/issues with a fresh Idempotency-Key per request beside a bare
# FastAPI route, both served with 2 workers; checks every 201 is stored exactly once.
bench-intake: setup
	$(BIN)/gridmap db start
	$(BIN)/gridmap demo --if-empty
	$(PY) bench/intake.py

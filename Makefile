# GridMap: `make run` sets everything up and serves the demo; `make test` runs the whole suite.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
BIN   := $(VENV)/bin
PYTHON ?= python3

.PHONY: run test lint bench setup system-deps venv db-start db-stop clean

run: setup
	$(BIN)/gridmap db start
	$(BIN)/gridmap demo --if-empty
	$(BIN)/gridmap serve

test: setup
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .

bench: setup
	$(BIN)/gridmap db start
	$(PY) bench/assign.py

setup: system-deps venv

system-deps:
	@./scripts/system-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench,scale]'
	@touch $@

db-start: setup
	$(BIN)/gridmap db start

db-stop:
	$(BIN)/gridmap db stop

clean:
	-$(BIN)/gridmap db stop
	rm -rf $(VENV) data/pg

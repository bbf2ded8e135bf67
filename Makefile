# zeromesh: `make run` starts the mesh, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test test-unit test-integration test-conformance bench install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

## Start the broker and the demo worker (Procfile) under honcho; Ctrl-C stops everything.
run: $(STAMP)
	$(BIN)/honcho start -f Procfile

## Every test group. With CI=true nothing may be skipped.
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

test-conformance: $(STAMP)
	$(BIN)/python -m pytest -q tests/conformance

## Benchmarks against same-run baselines (not tests). QUICK=1 for a short run.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

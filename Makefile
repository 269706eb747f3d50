# Stat19: the two-command quick start is `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo
DEMO_PERSONS ?= 20000
DEMO_START ?= 2026-01-05
DEMO_DAYS ?= 21
UI_PORT ?= 3000

.PHONY: install run test ui fixtures bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## Generate demo deliveries, run the whole pipeline, say where the results are.
run: install
	rm -rf $(DEMO)/landing
	$(BIN)/stat19 synth --persons $(DEMO_PERSONS) --start $(DEMO_START) --days $(DEMO_DAYS) --out $(DEMO)/landing --seed 19
	$(BIN)/stat19 run --landing $(DEMO)/landing --home $(DEMO)/home

## The whole test suite (what CI runs), on two pytest-xdist workers.
# --dist loadgroup: a test goes to whichever worker is free, except that the tests sharing an
# expensive module or session fixture (marked xdist_group) stay together, so it is built once.
# `.venv/bin/python -m pytest tests/test_x.py` by hand stays one process.
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

## The Dagster UI on http://127.0.0.1:3000 over the demo landing and home; Ctrl-C stops it.
# exec: dagster dev replaces the shell, so a signal reaches it; SIGINT is reset to its default first,
# because a job started in the background by a script inherits SIGINT ignored (and Python then
# never turns Ctrl-C or `kill -INT` into a clean shutdown). `dagster dev` says at every start that
# `dg dev` supersedes it; dg is not installed.
ui: install
	mkdir -p $(DEMO)/home/dagster
	[ -f $(DEMO)/home/dagster/dagster.yaml ] || $(BIN)/python -c "from stat19.pipeline import dagster_instance; from stat19.paths import Home; from pathlib import Path; dagster_instance(Home(Path('$(DEMO)/home')))"
	DAGSTER_HOME=$(abspath $(DEMO)/home/dagster) STAT19_LANDING=$(abspath $(DEMO)/landing) STAT19_HOME=$(abspath $(DEMO)/home) \
		PYTHONWARNINGS='ignore:Function `dev_command` is superseded' \
		exec $(BIN)/python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
		$(abspath $(BIN))/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

## Regenerate the committed sample landing in data_fixtures/.
fixtures: install
	rm -rf data_fixtures/landing
	$(BIN)/stat19 synth --persons 2000 --start 2026-01-05 --days 10 --out data_fixtures/landing --seed 19 --error-rate 0.01

bench: install
	$(BIN)/python benchmarks/bench_ingest.py

clean:
	rm -rf $(DEMO) .pytest_cache

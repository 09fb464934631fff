# The two commands a newcomer needs:  make demo  and  make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench ci

# Create the virtualenv and install dqueue with its test tools (again whenever setup.cfg changes).
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## demo: set up the SQLite default under ./var, run sample jobs, three Zenodo copies (fake Zenodo), a Merritt deposit (fake Merritt) and a full item sync (fake GitLab) through two workers
demo: $(VENV)/.installed
	$(BIN)/dqueue demo

## test: the whole suite (unit, integration, acceptance) on SQLite and MariaDB, 4 processes (pytest-xdist):
## most acceptance tests wait on real workers, so 4 at once fit on 2 cores (23 min in one process, ~12 in 4)
test: $(VENV)/.installed
	$(BIN)/pytest -q -n 4

lint: $(VENV)/.installed
	$(BIN)/ruff check dqueue tests bench bin/delayed_job bin/dqueue bin/long_jobs
	$(BIN)/mypy
	scripts/check-systemd-unit
	scripts/check-systemd-unit systemd/dqueue-web.service

## bench: the benchmarks of docs/benchmarks.md, against MariaDB on 127.0.0.1
bench: $(VENV)/.installed
	$(BIN)/python -m bench.run_all

ci: lint test

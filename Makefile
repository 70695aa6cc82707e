# learnlog — the two commands a newcomer needs are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint types bench clean

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "learnlog needs Python 3.11 or newer")'
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: install, migrate, load demo data, serve on http://127.0.0.1:8000 (embedded SQLite)
run: $(STAMP)
	$(BIN)/learnlog serve --demo

## test: every test — unit, integration (SQLite, PostgreSQL, Redis), end-to-end over HTTP,
## in TEST_WORKERS processes (each makes its own databases; 4 keep 2 cores busy while
## tests wait on servers and fsyncs; TEST_WORKERS=0 runs in one process)
TEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --cov=learnlog.domain --cov-branch --cov-fail-under=100 --cov-report=term-missing:skip-covered

## check: lint, types and tests
check: lint types test

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

types: $(STAMP)
	$(BIN)/mypy

## bench: the performance suite of SPEC §8; writes benchmarks/RESULTS.md
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Two commands do all the set-up: `make run` and `make test`. Both create and use .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per set of extras, redone whenever pyproject.toml changes.
$(VENV)/.installed-app: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-app

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed-app

# `make run HOST=... PORT=...`, from the command line only: tcsh and others export a $HOST of their own.
ifneq ($(origin HOST),command line)
HOST := 127.0.0.1
endif
ifneq ($(origin PORT),command line)
PORT := 8000
endif

## Serve on http://$(HOST):$(PORT) with ./doorward.db (migrated first). Links in mails point there
## (0.0.0.0 and :: as the local address) unless DOORWARD_PUBLIC_URL is set.
run: $(VENV)/.installed-app
	@case '$(HOST)' in 0.0.0.0) at=127.0.0.1;; ::) at='[::1]';; *:*) at='[$(HOST)]';; *) at='$(HOST)';; esac; \
	DOORWARD_PUBLIC_URL="$${DOORWARD_PUBLIC_URL:-http://$$at:$(PORT)}" exec $(BIN)/doorward serve --host '$(HOST)' --port '$(PORT)'

## Linters, type checks, the layering contract and the whole test suite.
test: lint
	$(BIN)/pytest --cov --cov-report=term

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

## Benchmarks (real servers, wrk): writes benchmarks/results/latest.json, latest.md and chart.png.
bench: $(VENV)/.installed-bench
	@command -v wrk >/dev/null || { echo "make bench needs wrk (Debian: apt-get install wrk)"; exit 1; }
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage

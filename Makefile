# Entry points: `make demo`, `make test`, `make lint`, `make bench`, `make soak`.
# Everything the project needs is installed from here; nothing is assumed to be on the machine
# beyond Python 3.11+ and (for the Redis-backed tests) Debian's apt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint format bench bench-quick soak system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the integration tests use: redis-server (and prometheus for the ops tests).
system-deps:
	@bash scripts/install-system-deps.sh

demo: $(STAMP)
	$(BIN)/claimstream demo

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

test: $(STAMP) system-deps lint
	$(BIN)/pytest

# The figures of docs/benchmarks.md (~10 min, one run; BENCH_ARGS="--rate 3000" to change them);
# bench-quick: every section at a small size, a few minutes, to check the bench still runs.
bench: $(STAMP)
	$(BIN)/python -m claimstream.devtools.bench $(BENCH_ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m claimstream.devtools.bench --quick $(BENCH_ARGS)

# Does a worker's memory stay flat when it cannot keep up? Minutes of overload (SOAK_ARGS=
# "--minutes 10 --rate 15000" to change them); prints RSS and lag, and a verdict.
soak: $(STAMP)
	$(BIN)/python -m claimstream.devtools.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info

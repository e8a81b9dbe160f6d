# The README's commands. Everything installs into .venv (Python) and node_modules (the Kusto checker and
# Azurite, the local Blob Storage the FOCUS upload tests run against);
# `make test` also installs Debian's chromium for the browser tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck pytest bench venv node chromium clean

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node: node_modules/.installed

chromium:
	@{ command -v chromium && command -v redis-server; } >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server >/dev/null; }
	@chromium --version

demo: venv
	$(BIN)/aoai-lens serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

# Two workers (pytest-xdist): CI has two cores, and the suite's servers each take a free port.
pytest: venv node chromium
	$(BIN)/pytest -n 2

test: lint typecheck pytest

bench: venv
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) node_modules .aoai-lens .pytest_cache .mypy_cache .ruff_cache

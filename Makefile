# Two commands matter: `make serve` and `make test`. Each creates .venv from nothing when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
ARGS   ?=

.PHONY: serve test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime install (what `make serve` needs).
$(VENV)/.installed-runtime: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet --disable-pip-version-check -e .
	touch $@

# Runtime + test/lint tooling.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(VENV)/.installed-runtime $@

serve: $(VENV)/.installed-runtime
	$(BIN)/acp-bridge serve $(ARGS)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check acp_bridge tests bench
	$(BIN)/ruff format --check acp_bridge tests bench
	$(BIN)/mypy acp_bridge

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix acp_bridge tests bench
	$(BIN)/ruff format acp_bridge tests bench

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info

# hpmail — `make help` lists the targets. `run` and `test` set themselves up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
PORT ?= 5000
export FLASK_APP := app

.PHONY: help run test test-postgres lint format translations setup clean-instance

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

translations: $(STAMP) ## Compile the French catalogues (.po -> .mo)
	@for po in hpmail/translations/*/LC_MESSAGES/*.po; do \
		$(BIN)/pybabel compile --use-fuzzy -i "$$po" -o "$${po%.po}.mo" >/dev/null || exit 1; done

setup: $(STAMP) translations ## Install, migrate the database and load the demo school the first time
	$(BIN)/flask setup

run: setup ## Start the web server and the worker (and the demo mailbox in demo mode) on http://127.0.0.1:$(PORT)
	@echo "hpmail : http://127.0.0.1:$(PORT)"
	@if [ "$${HPMAIL_DEMO:-1}" = "0" ]; then procs="web worker"; else procs="web worker mailbox"; fi; \
		exec $(BIN)/honcho start -p $(PORT) $$procs

# The suite starts a Python process per pytest worker, per real consumer and per deploy check:
# each would compile hpmail and rewrite every test module again without their cached bytecode
# (about 4 s of CPU per pytest process), so the tests keep it even where the shell says not to.
test test-postgres: export PYTHONDONTWRITEBYTECODE :=

test: $(STAMP) translations ## Run the whole test suite (browser and worker tests included)
	@bash .ci/system-deps
	$(BIN)/pytest

test-postgres: $(STAMP) translations ## Run the whole suite again on PostgreSQL and Redis (started on loopback, stopped after)
	@bash .ci/system-deps
	@services=$$(bash .ci/services start) || exit 1; eval "$$services"; \
		HPMAIL_TEST_BACKEND=postgres $(BIN)/pytest; status=$$?; \
		bash .ci/services stop; exit $$status

lint: $(STAMP) ## ruff check, format check, and the layers of imports (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# airflow-dataops: reproducible environment, tests and the demo.
#
#   make venv       .venv with this package (editable) + test/postgres extras, pinned by constraints.txt
#   make test       the whole test suite (what .ci/run runs)
#   make test-floor the suite minus real-process tests on the oldest supported Airflow (3.1)
#   make demo       seed the demo warehouse and start Airflow (UI on http://127.0.0.1:8080)
#   make demo-run   headless: run the example pipeline once and print the outcome
#   make lock       regenerate constraints.txt after changing pyproject.toml
#   make compose-env  write .env (UID, secrets) for docker compose

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
PYTHON_VERSION ?= 3.11
VENV ?= .venv
# The oldest Airflow we support, pinned by constraints-floor.txt (Airflow 3.1, same providers).
FLOOR_VENV ?= .venv-floor
FLOOR_BIN := $(CURDIR)/$(FLOOR_VENV)/bin
EXTRAS ?= test,postgres
BIN := $(CURDIR)/$(VENV)/bin
PYTEST_ARGS ?=

DEMO_DIR ?= $(CURDIR)/.demo
DEMO_HOME := $(DEMO_DIR)/airflow
DEMO_WAREHOUSE := $(DEMO_DIR)/warehouse.db
DEMO_PIPELINE ?= orders_daily
DEMO_SEED_ARGS ?=
DEMO_PORT ?= 8080

# uv from PATH, else installed once with pip into the user site and run as a module.
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")

# Every Airflow process of the demo sees the same settings (AIRFLOW__DATAOPS__ENVIRONMENT above all).
DEMO_ENV := \
	PATH="$(BIN):$$PATH" \
	AIRFLOW_HOME="$(DEMO_HOME)" \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$(DEMO_HOME)/airflow.db" \
	AIRFLOW__CORE__DAGS_FOLDER="$(CURDIR)/dags" \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__DATAOPS__ENVIRONMENT=development \
	AIRFLOW_CONN_DATAOPS_DEFAULT='{"conn_type": "sqlite", "host": "$(DEMO_WAREHOUSE)"}' \
	AIRFLOW__API__HOST=127.0.0.1 \
	AIRFLOW__API__PORT=$(DEMO_PORT) \
	AIRFLOW__API__BASE_URL=http://127.0.0.1:$(DEMO_PORT)/ \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(DEMO_PORT)/execution/ \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True

.PHONY: help venv venv-floor uv lock lock-check test test-floor demo demo-run demo-seed compose-env clean-demo

help:
	@sed -n '3,9p' Makefile | sed 's/^# *//'

uv:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || { \
		echo "uv not found: installing it with pip"; \
		$(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet --user --break-system-packages uv; }

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt | uv
	@test -x "$(BIN)/python" || $(UV) venv --python $(PYTHON_VERSION) "$(VENV)"
	VIRTUAL_ENV="$(CURDIR)/$(VENV)" $(UV) pip install --python "$(BIN)/python" -c constraints.txt -e ".[$(EXTRAS)]"
	@touch "$@"

$(FLOOR_VENV)/.installed: pyproject.toml constraints-floor.txt | uv
	@test -x "$(FLOOR_BIN)/python" || $(UV) venv --python $(PYTHON_VERSION) "$(FLOOR_VENV)"
	VIRTUAL_ENV="$(CURDIR)/$(FLOOR_VENV)" $(UV) pip install --python "$(FLOOR_BIN)/python" -c constraints-floor.txt -e ".[$(EXTRAS)]"
	@touch "$@"

venv-floor: $(FLOOR_VENV)/.installed

# constraints.txt: the newest versions (what `make venv` installs); constraints-floor.txt: the same
# with Airflow held to the floor release line (.ci/airflow-floor.in).
lock: | uv
	$(UV) pip compile pyproject.toml --all-extras --python-version $(PYTHON_VERSION) -o constraints.txt
	@# Start from constraints.txt: uv keeps the pins it finds in the output file where it can, so the
	@# floor differs from the main lock only where the older Airflow needs it.
	cp constraints.txt constraints-floor.txt
	$(UV) pip compile pyproject.toml .ci/airflow-floor.in --all-extras --python-version $(PYTHON_VERSION) -o constraints-floor.txt

# Fails when a constraints file is not what `make lock` would write now (pyproject.toml changed).
lock-check: | uv
	@tmp="$$(mktemp -d)"; status=0; \
	for lock in constraints.txt constraints-floor.txt; do \
		cp "$$lock" "$$tmp/$$lock"; \
		if [ "$$lock" = constraints.txt ]; then inputs=pyproject.toml; else inputs="pyproject.toml .ci/airflow-floor.in"; fi; \
		$(UV) pip compile --quiet $$inputs --all-extras --python-version $(PYTHON_VERSION) -o "$$tmp/$$lock"; \
		if diff <(grep -E '^[A-Za-z0-9]' "$$lock") <(grep -E '^[A-Za-z0-9]' "$$tmp/$$lock"); then echo "$$lock is current"; \
		else echo "$$lock is out of date with pyproject.toml: run 'make lock' and commit it" >&2; status=1; fi; \
	done; rm -rf "$$tmp"; exit $$status

# python -m pytest puts the repo root on sys.path (tests import tests.support.*).
# PYTEST_STATUS_FILE (optional) receives pytest's own exit code; make itself only says 2.
test: venv
	@status=0; cd "$(CURDIR)" && "$(BIN)/python" -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ -n "$(PYTEST_STATUS_FILE)" ]; then echo "$$status" > "$(PYTEST_STATUS_FILE)"; fi; \
	if [ "$$status" != 0 ]; then echo "pytest exited with $$status" >&2; fi; exit "$$status"

# The floor leg: everything but the tests that start real Airflow processes, a browser or the demo
# (its make targets use .venv): those run on the newest Airflow in `make test`.
test-floor: venv-floor
	@status=0; cd "$(CURDIR)" && "$(FLOOR_BIN)/python" -m pytest -m "not e2e and not browser" --ignore=tests/demo $(PYTEST_ARGS) || status=$$?; \
	if [ -n "$(PYTEST_STATUS_FILE)" ]; then echo "$$status" > "$(PYTEST_STATUS_FILE)"; fi; \
	if [ "$$status" != 0 ]; then echo "pytest (Airflow floor) exited with $$status" >&2; fi; exit "$$status"

demo-seed: venv
	"$(BIN)/python" -m airflow_dataops.demo.seed "$(DEMO_WAREHOUSE)" $(DEMO_SEED_ARGS)

demo: demo-seed
	@mkdir -p "$(DEMO_HOME)"
	@echo "Airflow UI: http://127.0.0.1:$(DEMO_PORT)  (demo mode: no login, everyone is admin). Ctrl-C stops it."
	$(DEMO_ENV) "$(BIN)/airflow" standalone

demo-run: demo-seed
	@mkdir -p "$(DEMO_HOME)"
	$(DEMO_ENV) "$(BIN)/airflow" db migrate >"$(DEMO_DIR)/migrate.log" 2>&1 || { tail -n 40 "$(DEMO_DIR)/migrate.log"; exit 1; }
	@# dag.test() in Airflow 3.3.2 crashes on successful runs of DAGs with Deadline Alerts: none here.
	$(DEMO_ENV) AIRFLOW__DATAOPS__DEADLINE_ALERTS=False "$(BIN)/python" -m airflow_dataops.demo.run "$(DEMO_PIPELINE)"

# .env for docker-compose.yaml: your UID and fresh secrets (kept if it exists).
compose-env:
	@if [ -f .env ]; then echo ".env exists: keeping it"; else \
		{ echo "AIRFLOW_UID=$$(id -u)"; \
		  echo "AIRFLOW_JWT_SECRET=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))')"; \
		  echo "AIRFLOW_API_SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))')"; \
		  echo "AIRFLOW_FERNET_KEY=$$($(PYTHON) -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"; \
		} > .env; chmod 600 .env; echo "wrote .env"; fi

clean-demo:
	rm -rf "$(DEMO_DIR)"

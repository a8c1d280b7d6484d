# AgentOS: `make run` starts everything on embedded defaults; `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export AGNO_TELEMETRY := false
export PATH := $(BIN):$(PATH)

.PHONY: run test bench lint css services stop venv venv-dev migrate seed superuser clean-data

$(VENV)/.base-installed: requirements/base.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/base.txt
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.base-installed requirements/dev.txt
	$(BIN)/python -m pip install -q -r requirements/dev.txt
	@touch $@

venv: $(VENV)/.base-installed
venv-dev: $(VENV)/.dev-installed

services: venv
	@$(BIN)/python -m config.embedded up

migrate: services
	@$(BIN)/python manage.py migrate --noinput -v 0

seed: migrate
	@$(BIN)/python manage.py seed_demo

run: seed
	@echo ""
	@echo "  AgentOS is starting on http://$(HOST):$(PORT)/  (web: daphne, worker: celery, beat: celery beat)"
	@echo "  Stop with Ctrl-C; 'make stop' also stops the embedded PostgreSQL and Redis."
	@echo ""
	@HOST=$(HOST) WEB_PORT=$(PORT) $(BIN)/honcho start -f Procfile

test: venv-dev
	@$(BIN)/python -m config.embedded up
	$(BIN)/python -m pytest

bench: venv-dev
	@$(BIN)/python -m config.embedded up
	@set -e; for b in bench/bench_*.py; do \
		echo "== $$b"; $(BIN)/python -m bench.$$(basename $$b .py); done

lint: venv-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -c pyproject.toml -r accounts agents billing community config integrations knowledge workflows
	$(BIN)/mypy accounts agents billing community config integrations knowledge workflows


css:
	scripts/build_css.sh

stop:
	@test -x $(BIN)/python && $(BIN)/python -m config.embedded down || true

superuser: migrate
	$(BIN)/python manage.py createsuperuser

clean-data: stop
	rm -rf .data

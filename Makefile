# ELT platform — `make help` lists targets. Everything runs on the embedded lakehouse unless
# the ELT_* / AIRFLOW_* variables of .env.example point elsewhere.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV        := $(CURDIR)/.venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed

export ELT_HOME            ?= $(CURDIR)/.local
export AIRFLOW_HOME        ?= $(ELT_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER    ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES  ?= False
export AIRFLOW__CORE__UNIT_TEST_MODE ?= False
export AIRFLOW__LOGGING__LOGGING_LEVEL ?= INFO
export PYTHONPATH          := $(CURDIR):$(CURDIR)/plugins
export PATH                := $(VENV)/bin:$(PATH)
export GX_ANALYTICS_ENABLED := False
export DO_NOT_TRACK        := 1

DAYS ?= 30
EMPLOYEES ?= 300

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements.lock
	@echo "» creating virtualenv $(VENV) (Python: $$($(PYTHON_BOOT) --version))"
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip uv
	@$(VENV)/bin/uv pip install -q --compile-bytecode -p $(PY) -r requirements.txt -c requirements.lock
	@touch $@

.PHONY: venv
venv: $(STAMP) ## create the virtualenv with pinned dependencies (idempotent)

$(AIRFLOW_HOME)/.migrated: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	@echo "» airflow db migrate ($(AIRFLOW_HOME))"
	@airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (tail -30 $(AIRFLOW_HOME)/migrate.log; exit 1)
	@touch $@

.PHONY: airflow-db
airflow-db: $(AIRFLOW_HOME)/.migrated ## create/upgrade the embedded Airflow metadata DB (SQLite)

.PHONY: run
run: venv airflow-db ## the main job: sandbox → extract_alaqan → transform_alaqan for the last $(DAYS) days
	@$(PY) -m elt_platform.cli run --days $(DAYS) --employees $(EMPLOYEES)

.PHONY: test
test: venv airflow-db compose-plugin ## run the whole test suite (unit, dbt, DAG integrity, compose, end-to-end)
	@$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: compose-plugin
compose-plugin: ## install the docker compose v2 plugin (built once from its Go module, then cached)
	@bash docker/install-compose.sh || echo "» compose plugin unavailable: tests/test_compose.py will skip its config check" 

.PHONY: test-fast
test-fast: venv ## unit tests only (no Spark, no end-to-end)
	@$(PY) -m pytest -m "not spark and not integration" $(PYTEST_ARGS)

.PHONY: test-dags
test-dags: venv airflow-db ## DAG integrity gate
	@$(PY) -m pytest tests/dags $(PYTEST_ARGS)

.PHONY: sql
sql: venv ## Spark SQL prompt over the lakehouse (Q='select …' runs one statement)
	@$(PY) -m elt_platform.cli sql $(if $(Q),-e "$(Q)")

.PHONY: load-1c
MODE ?= auto
load-1c: venv ## load or replay one 1C exchange package into bronze.onec_* (PACKAGE=dir|zip [MODE=auto|catalog|stocks])
	@test -n "$(PACKAGE)" || { echo "usage: make load-1c PACKAGE=path/to/package_dir_or.zip [MODE=stocks]" >&2; exit 2; }
	@$(PY) -m elt_platform.cli load-1c "$(PACKAGE)" --mode $(MODE)

.PHONY: counts-1c
counts-1c: venv ## row counts of the 1C tables (bronze/silver/gold)
	@$(PY) -m elt_platform.cli counts-1c

.PHONY: counts
counts: venv ## row counts per table
	@$(PY) -m elt_platform.cli counts

.PHONY: dbt-build
dbt-build: venv ## dbt build everything (ARGS='--select tag:gold' to narrow)
	@$(PY) -m elt_platform.transform.dbt build $(ARGS)

SANDBOX_PORT ?= 8765
.PHONY: sandbox
sandbox: venv ## serve the Alaqan sandbox on 127.0.0.1:$(SANDBOX_PORT) (foreground)
	@$(PY) -m elt_platform.sandbox.alaqan --port $(SANDBOX_PORT) --employees $(EMPLOYEES)

.PHONY: airflow
airflow: venv airflow-db ## Airflow UI + scheduler (standalone) with the sandbox as the Alaqan connection
	@$(PY) -m elt_platform.sandbox.alaqan --port $(SANDBOX_PORT) --employees $(EMPLOYEES) > $(ELT_HOME)/sandbox.log 2>&1 & \
	  echo "» Alaqan sandbox on http://127.0.0.1:$(SANDBOX_PORT) (log: $(ELT_HOME)/sandbox.log)"; \
	  trap "kill $$! 2>/dev/null" EXIT; \
	  AIRFLOW_CONN_ALAQAN_DEFAULT='{"conn_type":"http","host":"http://127.0.0.1:$(SANDBOX_PORT)/api/astanahub/","password":"sandbox-key"}' \
	  airflow standalone

.PHONY: backfill
backfill: venv airflow-db ## backfill days FROM..TO-1 of extract_alaqan (FROM/TO = logical dates; needs `make airflow` running)
	@test -n "$(FROM)" -a -n "$(TO)" || (echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [DAG=extract_alaqan]"; exit 2)
	@airflow dags reserialize > /dev/null
	@airflow dags unpause $(or $(DAG),extract_alaqan) -y > /dev/null && airflow dags unpause transform_alaqan -y > /dev/null
	@airflow backfill create --dag-id $(or $(DAG),extract_alaqan) --from-date $(FROM) --to-date $(TO) --max-active-runs 4

.PHONY: lint
lint: venv ## ruff (Python) + sqlfluff (dbt SQL)
	@ruff check . && ruff format --check . && cd dbt && sqlfluff lint models

.PHONY: bench
bench: venv airflow-db ## benchmarks (bench/): Alaqan bronze load vs raw pyiceberg vs dlt
	@$(PY) bench/alaqan_load.py $(BENCH_ARGS)

.PHONY: compose-check
compose-check: venv ## validate docker-compose.yaml and .env.example (installs the compose plugin if missing)
	@bash docker/install-compose.sh && $(PY) -m pytest -q tests/test_compose.py

.PHONY: clean
clean: ## remove the embedded lakehouse and Airflow state (keeps the virtualenv)
	rm -rf $(ELT_HOME)

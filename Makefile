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

$(STAMP): requirements.txt requirements.lock pyproject.toml
	@echo "» creating virtualenv $(VENV) (Python: $$($(PYTHON_BOOT) --version))"
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip uv
	@$(VENV)/bin/uv pip install -q --compile-bytecode -p $(PY) -r requirements.txt -c requirements.lock
	@$(VENV)/bin/uv pip install -q -p $(PY) --no-deps -e .
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
run: venv airflow-db ## the main job: every source (sandboxes) → bronze → silver/gold; DAYS=30, or START=/END= (inclusive), V=1 for all logs
	@$(VENV)/bin/elt run --days $(DAYS) --employees $(EMPLOYEES) $(if $(START),--start $(START)) $(if $(END),--end $(END)) $(if $(SOURCES),--sources $(SOURCES)) $(if $(V),-v)

.PHONY: test
test: venv airflow-db compose-plugin odbc-driver browser-deps check ## lint, then the whole test suite (unit, dbt, DAG integrity, compose, end-to-end, real scheduler)
	@$(PY) -m pytest -m "not scheduler" $(PYTEST_ARGS)
	@# The real-scheduler test starts Airflow's components and several Spark drivers: its own process,
	@# with no Spark session of the suite still alive beside it.
	@$(PY) -m pytest -m scheduler $(PYTEST_ARGS)

.PHONY: check
check: venv ## lint gate of CI: ruff, ruff format --check, sqlfluff (dbt models), mypy (plugins/, spark_jobs/)
	@echo "» ruff check, ruff format --check, sqlfluff lint dbt/models, mypy"
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && (cd dbt && $(VENV)/bin/sqlfluff lint models) && $(VENV)/bin/mypy

.PHONY: odbc-driver
odbc-driver: ## unixODBC + psqlODBC for the iDent sandbox (apt-get as root, else says what to install)
	@bash plugins/elt_platform/sandbox/ident/install.sh

.PHONY: browser-deps
browser-deps: ## headless Chromium + chromedriver for tests/browser (apt-get as root)
	@bash tests/browser/install.sh

.PHONY: test-browser
test-browser: venv browser-deps ## the browser test of the Platform page in Airflow (headless Chromium)
	@$(PY) -m pytest -m browser $(PYTEST_ARGS)

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
	@$(VENV)/bin/elt sql $(if $(Q),-e "$(Q)")

.PHONY: load-1c
MODE ?= auto
load-1c: venv ## load or replay one 1C exchange package into bronze.onec_* (PACKAGE=dir|zip [MODE=auto|catalog|stocks])
	@test -n "$(PACKAGE)" || { echo "usage: make load-1c PACKAGE=path/to/package_dir_or.zip [MODE=stocks]" >&2; exit 2; }
	@$(VENV)/bin/elt load-1c "$(PACKAGE)" --mode $(MODE)

.PHONY: amocrm-auth
amocrm-auth: venv ## store the amoCRM OAuth token pair from an authorization code (CODE=…, valid 20 minutes)
	@test -n "$(CODE)" || { echo "usage: make amocrm-auth CODE=<authorization code>" >&2; exit 2; }
	@$(VENV)/bin/elt amocrm-auth --code "$(CODE)"

.PHONY: counts-1c
counts-1c: venv ## row counts of the 1C tables (bronze/silver/gold)
	@$(VENV)/bin/elt counts --source onec

.PHONY: counts
counts: venv ## row counts per table
	@$(VENV)/bin/elt counts

.PHONY: dbt-build
dbt-build: venv ## dbt build everything (ARGS='--select tag:gold' to narrow)
	@$(PY) -m elt_platform.transform.dbt build $(ARGS)

SANDBOX_PORT ?= 8765
.PHONY: sandbox
sandbox: venv ## serve the Alaqan sandbox on 127.0.0.1:$(SANDBOX_PORT) (foreground)
	@$(PY) -m elt_platform.sandbox.alaqan --port $(SANDBOX_PORT) --employees $(EMPLOYEES)

.PHONY: airflow
airflow: venv airflow-db ## Airflow (api-server, scheduler, dag-processor, triggerer) + sandboxes; UI on ELT_AIRFLOW_HOST:ELT_AIRFLOW_PORT (default 127.0.0.1:8080); Ctrl-C stops all
	@$(VENV)/bin/elt airflow

.PHONY: backfill
backfill: venv airflow-db ## backfill days FROM..TO, both inclusive, of DAG (default extract_alaqan) and wait for gold; needs `make airflow`; RUNS=2 at a time
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD (both inclusive) [DAG=extract_alaqan] [RUNS=2]" >&2; exit 2; }
	@$(VENV)/bin/elt backfill $(or $(DAG),extract_alaqan) --from $(FROM) --to $(TO) --max-active-runs $(or $(RUNS),2)

.PHONY: lint
lint: check ## alias of check

.PHONY: bench
bench: venv airflow-db ## benchmarks (bench/): Alaqan bronze load vs raw pyiceberg vs dlt
	@$(PY) bench/alaqan_load.py $(BENCH_ARGS)

.PHONY: compose-check
compose-check: venv ## validate docker-compose.yaml and .env.example (installs the compose plugin if missing)
	@bash docker/install-compose.sh && $(PY) -m pytest -q tests/test_compose.py

.PHONY: clean
clean: ## remove the embedded lakehouse and Airflow state (keeps the virtualenv)
	rm -rf $(ELT_HOME)

.PHONY: run-prod-local
run-prod-local: venv odbc-driver ## the production profile without Docker: Postgres, S3Proxy, Spark standalone + Thrift, Airflow's scheduler; DAYS=1
	@$(VENV)/bin/elt prod-local run --days $(or $(PROD_DAYS),1) $(if $(END),--end $(END))

.PHONY: prod-local-up
prod-local-up: venv odbc-driver ## start the production-local services and Airflow until Ctrl-C (Thrift JDBC on DBT_SPARK_HOST:DBT_SPARK_PORT)
	@$(VENV)/bin/elt prod-local up

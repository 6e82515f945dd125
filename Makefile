# The two commands of the README: `make demo` and `make test`. Both build their own virtualenv
# from nothing but python3 and make, so they work the same on a fresh machine and in CI.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
# The oldest Airflow the package claims (pyproject: apache-airflow>=3.2.0); `make test` runs the suite on it too.
OLDEST_AIRFLOW_VERSION ?= 3.2.0
# The cluster tests need Airflow 3.3 (scripts/cluster.py); they skip themselves on older ones too.
OLDEST_PYTEST_ARGS ?= --ignore=tests/cluster
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-airflow-$(AIRFLOW_VERSION)
PIP_QUIET := 2>&1 | { grep -v -e "is ignored: it is neither" -e "^$$" || true; }

.PHONY: help install lint typecheck pytest test test-oldest demo bench bench-compare clean chromium \
	cluster cluster-up cluster-down cluster-status cluster-scale

help:
	@echo "make demo         generate images with the example DAG (offline emulator unless AZERION_API_KEY is set)"
	@echo "make test         lint, type-check and run the test suite on Airflow $(AIRFLOW_VERSION) and $(OLDEST_AIRFLOW_VERSION)"
	@echo "make bench        run the benchmarks and print their ratios"
	@echo "make cluster up   Airflow with CeleryExecutor, PostgreSQL, Redis, S3 on loopback (then: make cluster status|down)"

CONSTRAINTS := -c constraints/airflow-$(AIRFLOW_VERSION).txt -c constraints/gcs-$(AIRFLOW_VERSION).txt

# The Google provider goes in without its dependencies: constraints/gcs-*.txt says why and what stands in.
$(STAMP): pyproject.toml constraints/airflow-$(AIRFLOW_VERSION).txt constraints/gcs-$(AIRFLOW_VERSION).txt
	rm -f $(VENV)/.installed-airflow-*
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) "apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]" $(PIP_QUIET)
	$(BIN)/python -m pip install --quiet --no-deps $(CONSTRAINTS) apache-airflow-providers-google $(PIP_QUIET)
	touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ruff check --preview --select AIR .

typecheck: $(STAMP)
	$(BIN)/mypy

# The browser tests (tests/ui) drive Debian's Chromium through Playwright; nothing is downloaded at
# run time. CI runs as root on a fresh Debian machine: install it there; elsewhere fail saying how.
CHROMIUM ?= /usr/bin/chromium

chromium:
	@test -x $(CHROMIUM) || [ "$(CHROMIUM)" != /usr/bin/chromium ] || [ "$$(id -u)" != 0 ] || \
		! command -v apt-get >/dev/null || \
		{ echo "Installing Chromium for the browser tests: apt-get install chromium"; \
		  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	@test -x $(CHROMIUM) || { \
		echo "The browser tests (tests/ui) need Chromium at $(CHROMIUM), and it is missing."; \
		echo "Install it as root: apt-get update && apt-get install -y chromium   (Debian's package)"; \
		echo "or point CHROMIUM=/path/to/chromium at another Chromium executable."; \
		exit 1; }

pytest: $(STAMP) chromium
	AZERION_TEST_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest test-oldest

test-oldest:
	$(MAKE) pytest VENV=.venv-airflow-$(OLDEST_AIRFLOW_VERSION) AIRFLOW_VERSION=$(OLDEST_AIRFLOW_VERSION) \
		PYTEST_ARGS="$(OLDEST_PYTEST_ARGS)"

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# The benchmarks of BASE (default origin/main, else HEAD~1) and of the working tree, alternately in one run.
bench-compare: $(STAMP)
	$(BIN)/python -m benchmarks.compare $(if $(BASE),--base $(BASE))

# A production-shaped Airflow on loopback in .cluster/ (scripts/cluster.py): `make cluster up`,
# `make cluster status`, `make cluster down` (or cluster-up...), CLUSTER_ARGS="--api-port 8080" etc.
CLUSTER_COMMANDS := up status down
ifeq (cluster,$(firstword $(MAKECMDGOALS)))
CLUSTER_COMMAND := $(or $(word 2,$(MAKECMDGOALS)),up)
ifeq (,$(filter $(CLUSTER_COMMAND),$(CLUSTER_COMMANDS)))
$(error make cluster takes one of: $(CLUSTER_COMMANDS); got "$(CLUSTER_COMMAND)")
endif
$(eval $(CLUSTER_COMMAND): ; @:)
endif

cluster: $(STAMP)
	$(BIN)/python scripts/cluster.py $(or $(CLUSTER_COMMAND),up) $(CLUSTER_ARGS)

cluster-up: $(STAMP)
	$(BIN)/python scripts/cluster.py up $(CLUSTER_ARGS)

cluster-status:
	$(BIN)/python scripts/cluster.py status $(CLUSTER_ARGS)

cluster-down:
	$(BIN)/python scripts/cluster.py down $(CLUSTER_ARGS)

# The 2 000-prompt scale run on a cluster of its own (scripts/cluster_scale.py).
cluster-scale: $(STAMP)
	$(BIN)/python scripts/cluster_scale.py

clean:
	rm -rf .venv .venv-airflow-* .demo .bench .pytest_cache .mypy_cache .ruff_cache

# flipkart-api developer commands. `make run` and `make test` are the two that matter;
# `make` alone lists every target (`make help`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
DEMO_PRODUCTS ?= 1000
# Two stamps in one venv: what serving needs (make run), and the dev tools on top of it.
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
GIT_SHA := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
IMAGE_NAME ?= flipkart-api
PYTHON_IMAGE ?= python:3.13-slim

.PHONY: run test test-unit test-slow test-docker test-swarm test-faults bench bench-quick bench-outbox search-quality lint lint-deploy typecheck check install \
	migrate seed clean image push backup restore backup-docker restore-docker audit lock
.PHONY: help install-runtime render-vcl test-rules
.DEFAULT_GOAL := help

help: ## List the targets with what they do (also what `make` alone prints)
	@echo "usage: make <target> [VAR=value ...]     e.g. PORT=5077 make run"
	@echo
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:.*## / {printf "  %-16s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

# Each step says what it does in one line; pip is quiet (its errors still show). The locks
# pin every dependency with its hashes, so pip has nothing to resolve (--no-deps; the
# install test runs `pip check`). Bytecode is compiled at install: with
# PYTHONDONTWRITEBYTECODE set, every later process would compile its imports again.
$(RUNTIME_STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing runtime dependencies (requirements.lock)"
	@$(PIP) install --no-deps -r requirements.lock
	@$(PIP) install --no-deps -e .
	@touch $@

$(STAMP): $(RUNTIME_STAMP) requirements-dev.lock
	@echo "==> installing development tools (requirements-dev.lock)"
	@$(PIP) install --no-deps -r requirements-dev.lock
	@touch $@

install-runtime: $(RUNTIME_STAMP) ## Only what serving needs, as `make run` installs it (into VENV, default .venv)

install: $(STAMP) ## The virtual environment with the dev tools (tests, linters) from the locks

run: $(RUNTIME_STAMP) ## Serve on http://127.0.0.1:5000 (PORT=...); SQLite + in-process cache unless DATABASE_URL/REDIS_URL
	@echo "==> migrating"
	@$(BIN)/flipkart-api migrate --quiet
	@echo "==> seeding $(DEMO_PRODUCTS) demo products (if the catalog is empty)"
	@$(BIN)/flipkart-api seed --quiet --if-empty --products $(DEMO_PRODUCTS)
	@echo "==> starting the server on 127.0.0.1:$(PORT) (Ctrl-C stops it)"
	@$(BIN)/flipkart-api serve --host 127.0.0.1 --port $(PORT) --announce

# Both suites run on every core (pytest-xdist); each worker starts its own PostgreSQL and
# Redis. PYTEST_WORKERS=0 runs in one process. Tests marked `slow` (own server processes,
# over 5 s; see pyproject.toml) are in test-slow; --durations lists unmarked ones over 5 s.
PYTEST_WORKERS ?= auto
SUITE := --ignore=tests/container --ignore=tests/swarm --ignore=tests/faults -n $(PYTEST_WORKERS)

test: $(STAMP) ## The quick suite: SQLite and real PostgreSQL + Redis (started by the tests), not slow ones
	$(BIN)/pytest $(SUITE) -m "not slow" --durations=10 --durations-min=5

# The unit tier (tests/unit): pure functions and in-process objects, no servers. One process
# (starting xdist workers costs more than the tests) and without the schemathesis/hypothesis
# plugins, whose imports were 1.5 of its 3.5 s. `make test` runs these tests too.
UNIT_PLUGINS_OFF := -p no:xdist -p no:schemathesis -p no:hypothesispytest -p no:anyio
test-unit: $(STAMP) ## The unit tier in seconds: cache leases/breaker/generations, cursors, ids, rules; no servers
	$(BIN)/pytest tests/unit $(UNIT_PLUGINS_OFF) -q

test-slow: $(STAMP) ## Tests marked slow: schemathesis, HTTP concurrency, backup drill, nginx edge, cleanup
	$(BIN)/pytest $(SUITE) -m slow

test-docker: $(STAMP) ## Image, dev stack, production stack and registry round trip on a real engine
	$(BIN)/hadolint Dockerfile
	$(BIN)/pytest tests/container -p no:cacheprovider -s

test-swarm: $(STAMP) ## The Swarm stack on a single-node swarm: rolling update under load
	$(BIN)/pytest tests/swarm -p no:cacheprovider -s

test-faults: $(STAMP) ## Fault drills on a native stack (nginx, 3 replicas, PostgreSQL, Redis); figures in build/faults.json
	$(BIN)/pytest tests/faults -p no:cacheprovider -s

lint: $(STAMP) ## ruff check and ruff format --check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP) ## Load benchmarks against the tutorial design, the front door included (needs wrk, nginx, varnish, openssl; ~30 min)
	$(BIN)/python -m bench.harness

bench-quick: $(STAMP) ## The same harness in under 3 minutes (figures not asserted)
	$(BIN)/python -m bench.harness --quick

bench-outbox: $(STAMP) ## Orders/s with the outbox on and off, and webhook delivery lag at 100 orders/s (~3 min)
	$(BIN)/python -m bench.outbox_cost

# The judged queries of bench/search_judgments.json through GET /api/v1/products on SQLite and
# a throwaway PostgreSQL; report in bench/results/search-quality-<date>.md. Exits 0 when the
# targets are missed too (ARGS=--quick: 2,000 products instead of 5,000).
search-quality: $(STAMP) ## Search relevance: nDCG@10, recall, zero results, typos over the judged queries (SQLite + PostgreSQL)
	$(BIN)/python -m bench.search_quality $(ARGS)

search-latency: $(STAMP) ## Uncached search, suggest and facet latency: PostgreSQL 10k/1M (10 clients), SQLite 100k (~20 min; ARGS=--quick)
	$(BIN)/python -m bench.search_latency $(ARGS)

lint-deploy: $(STAMP) test-rules ## Dockerfile (hadolint), workflows (actionlint), Kubernetes manifests (kubernetes-validate), test-rules
	$(BIN)/hadolint Dockerfile
	$(BIN)/actionlint
	PYTHON=$(BIN)/python bash deploy/k8s/validate.sh
	$(BIN)/python deploy/k8s/render_vcl.py --check

# Prometheus and Alertmanager configuration (deploy/monitoring/README.md). promtool and
# amtool from Debian's prometheus and prometheus-alertmanager packages (.ci/run installs
# them); no server is started. check.sh: the config variants agree, every alert has a test
# where it fires and a runbook section.
MONITORING := deploy/monitoring
test-rules: ## promtool check config + check rules + test rules; amtool check-config
	promtool check config $(MONITORING)/prometheus.yml $(MONITORING)/prometheus-swarm.yml $(MONITORING)/prometheus-test.yml
	promtool check rules $(MONITORING)/rules/*.yml
	promtool test rules $(MONITORING)/tests/*.test.yml
	amtool check-config $(MONITORING)/alertmanager.yml
	bash $(MONITORING)/check.sh

render-vcl: ## Regenerate deploy/k8s/base/varnish-vcl.yaml from deploy/varnish/default.vcl
	python3 deploy/k8s/render_vcl.py

typecheck: $(STAMP) ## mypy --strict on the package
	$(BIN)/mypy

# pip-audit asks PyPI's JSON API / OSV about every locked version, so it needs those reachable
# (the GitHub workflow runs it; this machine's package mirror has no JSON API). Its own venv:
# the tool's dependencies stay out of the app's locks. --strict: a package it cannot look up
# fails the run rather than passing unchecked.
AUDIT_VENV := build/audit-venv
audit: ## pip-audit the shipped and the dev lock files (needs PyPI's JSON API or OSV)
	test -x $(AUDIT_VENV)/bin/pip-audit || ($(PYTHON) -m venv $(AUDIT_VENV) && \
		$(AUDIT_VENV)/bin/pip install --quiet pip-audit==2.10.1)
	$(AUDIT_VENV)/bin/pip-audit --strict --no-deps --disable-pip -r requirements.lock
	$(AUDIT_VENV)/bin/pip-audit --strict --no-deps --disable-pip -r requirements-dev.lock

check: lint typecheck test test-slow ## lint, typecheck, test and test-slow

image: ## Build flipkart-api:<version> and :<git sha>
	docker build --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) --build-arg VERSION=$(VERSION) \
		--build-arg REVISION=$(GIT_SHA) -t $(IMAGE_NAME):$(VERSION) -t $(IMAGE_NAME):$(GIT_SHA) .

push: image ## make push REGISTRY=host/namespace [RELEASE=1 also pushes :latest]
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=host/namespace [RELEASE=1]"; exit 2; }
	for tag in $(VERSION) $(GIT_SHA) $(if $(RELEASE),latest); do \
		docker tag $(IMAGE_NAME):$(VERSION) $(REGISTRY)/$(IMAGE_NAME):$$tag \
		&& docker push $(REGISTRY)/$(IMAGE_NAME):$$tag || exit 1; \
	done

migrate: $(RUNTIME_STAMP) ## Upgrade the database (DATABASE_URL or the SQLite file) to the latest schema
	$(BIN)/flipkart-api migrate

seed: $(RUNTIME_STAMP) ## Add the demo catalog up to DEMO_PRODUCTS (default 1000) products
	$(BIN)/flipkart-api seed --products $(DEMO_PRODUCTS)

backup: ## pg_dump -Fc of DATABASE_URL to BACKUP_FILE (default backups/<UTC time>.dump)
	deploy/backup/backup.sh

restore: ## make restore BACKUP_FILE=backups/<file>.dump: replaces what the dump holds in DATABASE_URL
	deploy/backup/restore.sh

backup-docker: ## The same for the compose.prod.yaml stack (its `backup` service)
	deploy/backup/backup.sh --compose

restore-docker: ## make restore-docker BACKUP_FILE=backups/<file>.dump (its `restore` service)
	deploy/backup/restore.sh --compose

# Every lock pins each version with its hashes (the image installs with --require-hashes);
# uv keeps the versions already in the files unless pyproject.toml needs others.
lock: ## Regenerate requirements.lock, requirements-reload.lock (dev image) and requirements-dev.lock with uv
	command -v uv >/dev/null || $(PYTHON) -m pip install --quiet uv
	uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements.lock
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -q \
		-o requirements-dev.lock
	uv pip compile pyproject.toml --extra reload --python-version 3.11 --generate-hashes -q \
		-o requirements-reload.lock

clean: ## Delete the venv, the SQLite data (instance/) and the tool caches
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

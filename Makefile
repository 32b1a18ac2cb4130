# flipkart-api developer commands. `make run` and `make test` are the two that matter.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
DEMO_PRODUCTS ?= 1000
STAMP := $(VENV)/.installed

.PHONY: run test test-docker lint typecheck check install migrate seed clean

$(STAMP): requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## Create the virtual environment from the lock file

run: $(STAMP) ## Serve on http://127.0.0.1:$(PORT) (SQLite + in-process cache unless DATABASE_URL/REDIS_URL are set)
	$(BIN)/flipkart-api migrate
	$(BIN)/flipkart-api seed --if-empty --products $(DEMO_PRODUCTS)
	HOST=127.0.0.1 PORT=$(PORT) $(BIN)/flipkart-api serve

test: $(STAMP) ## The whole suite: SQLite and real PostgreSQL + Redis (started by the tests)
	$(BIN)/pytest --ignore=tests/container

test-docker: $(STAMP) ## Image, dev stack and production stack on a real Docker engine
	$(BIN)/hadolint Dockerfile
	$(BIN)/pytest tests/container -p no:cacheprovider -s

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

migrate: $(STAMP)
	$(BIN)/flipkart-api migrate

seed: $(STAMP)
	$(BIN)/flipkart-api seed --products $(DEMO_PRODUCTS)

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

# Two commands matter: `make run` and `make test`. Everything else is for contributors.
# The environment is bootstrapped here: a local .venv, uv from PyPI inside it, then the
# pinned, hashed dependencies of requirements.lock. Nothing global is touched.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP  := $(VENV)/.synced

# Where `make test-services` finds PostgreSQL and Redis (override on the command line).
TEST_POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/0

# pytest-xdist: one worker per core; CI machines have two.
PYTEST_WORKERS ?= auto

.PHONY: run dev test test-services lint fmt bench bench-quick lock migrate clean help

help:
	@echo "make run            migrate ./var/app.db and serve on HOST:PORT (127.0.0.1:8000)"
	@echo "make dev            the same, reloading on code changes (fastapi dev)"
	@echo "make test           the whole suite on SQLite, in parallel, random order"
	@echo "make test-services  the same suite on PostgreSQL + Redis ($(TEST_POSTGRES_URL))"
	@echo "make lint           ruff, mypy, the import-linter layering contracts and the skill's audit"
	@echo "make bench          every benchmark scenario, ~15 min (needs wrk and PostgreSQL; see bench/README.md)"
	@echo "make bench-quick    every scenario at small sizes, < 3 min on a quiet machine"
	@echo "make lock           re-pin requirements.lock from pyproject.toml"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): requirements.lock | $(BIN)/uv
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes requirements.lock
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m app serve

# `fastapi dev` finds the app through [tool.fastapi] in pyproject.toml and reloads on changes.
dev: $(STAMP)
	$(BIN)/python -m app migrate
	$(BIN)/fastapi dev --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

migrate: $(STAMP)
	$(BIN)/python -m app migrate

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

test-services: $(STAMP)
	TEST_DATABASE_URL=$(TEST_POSTGRES_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) TEST_REQUIRE_SERVICES=1 \
		$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -I skill/fastapi-production-patterns/scripts/audit.py app tests

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m bench --all

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

lock: | $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
		--python-version 3.11 --no-header -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

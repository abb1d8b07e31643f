# The README's two commands: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Celery worker processes of the production layout (make run with DATABASE_URL and REDIS_URL set).
WORKERS ?= 1

.PHONY: run test lint bench venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip >/dev/null
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

run: venv
	$(PY) -m demo.run --workers $(WORKERS)

test: venv
	@eval "$$(scripts/test-services.sh)" && \
	  echo "tests use $$TEST_DATABASE_URL and $$TEST_REDIS_URL" && \
	  $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	scripts/check-type-ignores.sh

bench: venv
	@eval "$$(scripts/test-services.sh)" && $(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) instance/*.db instance/broker

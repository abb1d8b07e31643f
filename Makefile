# The README's two commands: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# make test spreads the tests over every core (pytest-xdist); tests/conftest.py gives each xdist worker
# its own databases and Redis database and keeps tests that share a costly fixture on one worker.
# PYTEST_XDIST= runs the suite in one process.
PYTEST_XDIST ?= -n auto --dist loadgroup
# Celery worker processes of the production layout (make run with DATABASE_URL and REDIS_URL set).
WORKERS ?= 1

.PHONY: run test soak lint bench venv clean

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
	  $(VENV)/bin/pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# The long fault soak (tests/worker/test_fault_state_machine.py): seeded random runs of licence
# changes and faults until SOAK_MINUTES have passed, then a summary. Replay with SOAK_SEED=<seed>.
SOAK_MINUTES ?= 10
soak: venv
	@eval "$$(scripts/test-services.sh)" && \
	  echo "soak on $$TEST_DATABASE_URL for $(SOAK_MINUTES) min" && \
	  SOAK_MINUTES=$(SOAK_MINUTES) $(VENV)/bin/pytest tests/worker/test_fault_state_machine.py -m soak -s \
	    -p no:cacheprovider --timeout=$$($(PY) -c "print(int(float('$(SOAK_MINUTES)') * 60 + 900))") \
	    $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	scripts/check-type-ignores.sh

bench: venv
	@eval "$$(scripts/test-services.sh)" && $(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) instance/*.db instance/broker

# The README's two commands: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# make test spreads the tests over the cores (pytest-xdist); tests/conftest.py gives each xdist worker
# its own databases and Redis database and keeps tests that share a costly fixture on one worker.
# One worker more than there are cores: the worker and fault suites spend most of their time waiting
# for real processes (Celery, the registry, Redis), and the extra worker runs other tests meanwhile.
# PYTEST_XDIST= runs the suite in one process.
# At most five: the worker suites' Redis databases are shared out per xdist worker (tests/conftest.py).
XDIST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n > 4 ? 5 : n + 1 )))
PYTEST_XDIST ?= -n $(XDIST_WORKERS) --dist loadgroup
# Celery worker processes of the production layout (make run with DATABASE_URL and REDIS_URL set).
WORKERS ?= 1
# Compiled bytecode is kept, under the venv (not beside the sources): with PYTHONDONTWRITEBYTECODE set,
# as on the CI machine, every Python process (each xdist worker, and every Celery worker, gunicorn,
# registry and `flask` process the tests start) compiled every module it imported again, about 3 s of
# CPU each. `make clean` removes the cache with the venv.
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX ?= $(CURDIR)/$(VENV)/pycache

.PHONY: run test soak fuzz lint bench venv clean

venv: $(VENV)/.installed

# uv (a PyPI package, installed into the venv first) resolves and installs the dev dependencies in a
# fraction of pip's time; where uv cannot be had or fails, pip installs them as before.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	@if $(VENV)/bin/pip install -q --disable-pip-version-check uv >/dev/null 2>&1 \
	    && $(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev]'; then \
	  echo "dependencies installed with uv"; \
	else \
	  echo "uv not available: installing with pip"; \
	  $(VENV)/bin/pip install -q --upgrade pip >/dev/null && $(VENV)/bin/pip install -q -e '.[dev]'; \
	fi
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

# The API fuzz (tests/integration/test_api_fuzz.py) deeper than in make test: FUZZ_EXAMPLES random
# examples per operation (make test sends 4) after every case of the coverage phase.
FUZZ_EXAMPLES ?= 50
fuzz: venv
	@eval "$$(scripts/test-services.sh)" && \
	  FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/pytest tests/integration/test_api_fuzz.py $(PYTEST_XDIST) \
	    -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	scripts/check-type-ignores.sh

bench: venv
	@eval "$$(scripts/test-services.sh)" && $(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) instance/*.db instance/broker

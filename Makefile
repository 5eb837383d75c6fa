# make run: the service on 127.0.0.1:8000, in its own virtual environment.
# make test: every test, with the development dependencies.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench openapi lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# gunicorn itself fails with a traceback on an empty WEB_CONCURRENCY, before reading gunicorn.conf.py.
run: $(VENV)/.runtime
	$(if $(WEB_CONCURRENCY),,env -u WEB_CONCURRENCY )$(BIN)/gunicorn --config gunicorn.conf.py

test: $(VENV)/.dev
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/python -m bench

# openapi.yaml is generated from the marshmallow schemas; tests/test_openapi.py fails when it is stale.
openapi: $(VENV)/.dev
	$(BIN)/python -m schemas.openapi > openapi.yaml

# Re-pin requirements*.txt from requirements*.in, in a scratch environment.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements.in
	{ echo "# Generated from requirements.in by 'make lock': the service's pinned dependencies."; .lock-venv/bin/pip freeze; } > requirements.txt
	.lock-venv/bin/pip install --quiet -r requirements-dev.in
	{ echo "# Generated from requirements-dev.in by 'make lock': the tests', spec generator's and benchmark's pins."; \
	  echo "-r requirements.txt"; .lock-venv/bin/pip freeze | grep -vixF -f requirements.txt; } > requirements-dev.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

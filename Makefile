# make run: the service on 127.0.0.1:8000, in its own virtual environment.
# make test: ruff, the import contracts and every test, with the development dependencies; make test-fast: the fast set.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast bench openapi lock clean contract-tools system-tools fastpath sanitize sanitize-run

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
run: $(VENV)/.runtime fastpath
	$(if $(WEB_CONCURRENCY),,env -u WEB_CONCURRENCY )$(BIN)/gunicorn --config gunicorn.conf.py

test: $(VENV)/.dev fastpath sanitize contract-tools system-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest

# The fast set for the edit-run loop: no real server, Docker or benchmark.
test-fast: $(VENV)/.dev fastpath
	$(BIN)/pytest -m "not slow"

# Prism, pinned in tools/contract/package-lock.json, for tests/test_contract_tools.py; without npm
# those tests skip, and this says so.
PRISM := tools/contract/node_modules/.bin/prism

contract-tools:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(PRISM); \
	else echo "npm not found: the Prism tests will skip (install Node.js and npm, e.g. apt-get install npm)"; fi

$(PRISM): tools/contract/package.json tools/contract/package-lock.json
	cd tools/contract && npm ci --no-audit --no-fund
	touch $@

# Debian packages the tests use, each installed where apt-get can (root, apt) and else named by the
# tests that then skip: Graphviz's dot, for the dot pictures of POST /v1/render; Chromium and its
# driver, for the pages' browser tests (selenium drives them; nothing is downloaded by the tests).
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

system-tools:
	@$(call apt_tool,dot,graphviz,the dot test will skip)
	@$(call apt_tool,chromium,chromium,the browser tests will skip)
	@$(call apt_tool,chromedriver,chromium-driver,the browser tests will skip)

# $(call apt_tool,COMMAND,PACKAGE,WHAT SKIPS): install PACKAGE unless COMMAND is there.
apt_tool = command -v $(1) >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  { $(APT_INSTALL) $(2) || { apt-get update -qq && $(APT_INSTALL) $(2); }; } >/dev/null 2>&1; } || \
	  echo "$(2) is not installed: $(3)"

bench: $(VENV)/.dev fastpath
	$(BIN)/python -m bench
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.batch
	$(BIN)/python -m bench.grading

# The fast path's C extension (setup.py, service/core/_fastpath.c), built in place. Where it cannot be built
# (no compiler), this says so and the service runs on the reference path.
fastpath: $(VENV)/.runtime
	$(BIN)/python setup.py -q build_ext --inplace \
	  || echo "make fastpath: the C extension was not built; the service will answer on the reference path" >&2

# The fast path built with AddressSanitizer and UndefinedBehaviorSanitizer and its tests run under them
# (libasan preloaded into the venv's python), in a scratch copy of the tree so the plain build stays.
# Without a compiler and its libasan, it says so and skips; it takes about a minute.
SANITIZE_DIR := build/sanitize
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g
sanitize: $(VENV)/.dev
	@if ! test -f "$$($${CC:-gcc} -print-file-name=libasan.so 2>/dev/null)"; then \
	  echo "make sanitize: skipped, no compiler with AddressSanitizer (libasan.so) here" >&2; exit 0; fi; \
	$(MAKE) --no-print-directory sanitize-run

sanitize-run:
	rm -rf $(SANITIZE_DIR) && mkdir -p $(SANITIZE_DIR)
	cp -r setup.py pyproject.toml README.md openapi.yaml service tests bench tools client $(SANITIZE_DIR)/
	rm -f $(SANITIZE_DIR)/service/core/*.so
	cd $(SANITIZE_DIR) && CFLAGS="$(SANITIZE_FLAGS)" LDFLAGS="$(SANITIZE_FLAGS)" \
	  $(abspath $(BIN))/python setup.py -q build_ext --inplace
	cd $(SANITIZE_DIR) && LD_PRELOAD="$$($${CC:-gcc} -print-file-name=libasan.so)" \
	  ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc \
	  $(abspath $(BIN))/python -m pytest -q -p no:cacheprovider -m "not slow" tests/test_fastpath.py

# openapi.yaml is generated from the marshmallow schemas; tests/test_openapi.py fails when it is stale.
openapi: $(VENV)/.dev
	$(BIN)/python -m tools.openapi > openapi.yaml

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
	rm -rf $(VENV) .pytest_cache .hypothesis tools/contract/node_modules build service/core/*.so

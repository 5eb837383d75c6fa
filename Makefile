# make run: the service on 127.0.0.1:8000, in its own virtual environment.
# make test: ruff, the import contracts and every test, with the development dependencies; make test-fast: the fast set.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast bench openapi lock clean contract-tools system-tools fastpath sanitize sanitize-run \
	native-tests fuzz fuzz-run fuzz-tools fastpath-exhaustive fastpath-tables

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
# (libasan preloaded into the venv's python), in a scratch copy of the tree so the plain build stays; then
# its two components' quick checks (tests/native/) under the same sanitizers, and each fuzzer for
# FUZZ_QUICK_SECONDS. Without a compiler and its libasan, it says so and skips; it takes a few minutes.
SANITIZE_DIR := build/sanitize
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g
ASAN_PYTHON = LD_PRELOAD="$$($${CC:-gcc} -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc
FUZZ_QUICK_SECONDS ?= 30
sanitize: $(VENV)/.dev
	@if ! test -f "$$($${CC:-gcc} -print-file-name=libasan.so 2>/dev/null)"; then \
	  echo "make sanitize: skipped, no compiler with AddressSanitizer (libasan.so) here" >&2; exit 0; fi; \
	$(MAKE) --no-print-directory sanitize-run

sanitize-run: native-tests
	rm -rf $(SANITIZE_DIR) && mkdir -p $(SANITIZE_DIR)
	cp -r setup.py pyproject.toml README.md openapi.yaml service tests bench tools client $(SANITIZE_DIR)/
	rm -f $(SANITIZE_DIR)/service/core/*.so
	cd $(SANITIZE_DIR) && CFLAGS="$(SANITIZE_FLAGS)" LDFLAGS="$(SANITIZE_FLAGS)" \
	  $(abspath $(BIN))/python setup.py -q build_ext --inplace
	cd $(SANITIZE_DIR) && $(ASAN_PYTHON) \
	  $(abspath $(BIN))/python -m pytest -q -p no:cacheprovider -m "not slow" tests/test_fastpath.py
	$(ASAN_PYTHON) $(BIN)/python tests/native/check_shortest.py --build $(NATIVE)/asan --random 200000
	PYTHONPATH=$(NATIVE)/asan $(ASAN_PYTHON) $(BIN)/python tests/native/check_jsonscan.py --scale 0.02
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_QUICK_SECONDS)

# The fast path's components tested on their own (tests/native/): test extensions of shortest.h and
# jsonscan.h built under build/native/ as release (the service's flags), counters (how often each slow
# branch runs), exact (every number through shortest.h's big integers) and asan (the sanitizers).
NATIVE := build/native
PY_INCLUDE = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
PY_EXT = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
PY_LIBDIR = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
PY_SITE = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
NATIVE_CFLAGS = -std=c11 -O2 -ffp-contract=off -fno-fast-math -Wall -Wextra -Wno-unused-parameter -Werror \
  -fPIC -shared -Iservice/core -Itests/native -I$(PY_INCLUDE)
native-tests: $(VENV)/.dev
	mkdir -p $(NATIVE)/release $(NATIVE)/counters $(NATIVE)/exact $(NATIVE)/asan
	$${CC:-gcc} $(NATIVE_CFLAGS) -o $(NATIVE)/release/_shortest_test$(PY_EXT) tests/native/shortest_module.c
	$${CC:-gcc} $(NATIVE_CFLAGS) -DSHORTEST_COUNTERS -o $(NATIVE)/counters/_shortest_test$(PY_EXT) tests/native/shortest_module.c
	$${CC:-gcc} $(NATIVE_CFLAGS) -DSHORTEST_COUNTERS -DSHORTEST_FORCE_EXACT \
	  -o $(NATIVE)/exact/_shortest_test$(PY_EXT) tests/native/shortest_module.c
	$${CC:-gcc} $(NATIVE_CFLAGS) -DSHORTEST_COUNTERS $(SANITIZE_FLAGS) -o $(NATIVE)/asan/_shortest_test$(PY_EXT) tests/native/shortest_module.c
	$${CC:-gcc} $(NATIVE_CFLAGS) -o $(NATIVE)/release/_jsonscan$(PY_EXT) tests/native/jsonscan_module.c
	$${CC:-gcc} $(NATIVE_CFLAGS) $(SANITIZE_FLAGS) -o $(NATIVE)/asan/_jsonscan$(PY_EXT) tests/native/jsonscan_module.c

# The long runs: tens of millions of random doubles against repr, every special set through the big
# integers, the JSON scanner against orjson at full scale (about 12 million checks), and the proof that
# shortest.h never needs its big integers. Tens of minutes.
fastpath-exhaustive: native-tests
	$(BIN)/python tests/native/check_shortest.py --build $(NATIVE)/counters --random 50000000 --workers 2
	$(BIN)/python tests/native/check_shortest.py --build $(NATIVE)/exact
	PYTHONPATH=$(NATIVE)/release $(BIN)/python tests/native/check_jsonscan.py --scale 1
	$(BIN)/python tools/fastpath/verify_no_fallback.py

# The fast path's generated tables, regenerated from exact integer arithmetic; tests/test_fastpath_tables.py
# fails when the committed ones differ.
fastpath-tables:
	python3 tools/fastpath/gen_shortest_tables.py > service/core/shortest_tables.h
	python3 tools/fastpath/gen_jsonscan_pow5.py > service/core/jsonscan_pow5.h

# Coverage-guided fuzzing (libFuzzer, clang), each target for FUZZ_SECONDS under ASan, UBSan and LeakSanitizer:
# jsonscan.h against the C library's strtod (tests/fuzz/fuzz_jsonscan.c), and the whole fast path, on
# requests and batches, against the reference path (tests/fuzz/fuzz_fastpath.c). The corpora grow in
# build/fuzz/corpus; a failing input is left in build/fuzz. Without clang and libFuzzer it says so and skips.
FUZZ := build/fuzz
FUZZ_SECONDS ?= 600
FUZZ_CFLAGS := -g -O1 -ffp-contract=off -fno-fast-math -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -fno-omit-frame-pointer -Iservice/core
HAS_LIBFUZZER = printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' | \
  clang -x c -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1
fuzz: $(VENV)/.dev fuzz-tools
	@if ! $(HAS_LIBFUZZER); then \
	  echo "make fuzz: skipped, no clang with libFuzzer here (Debian: apt-get install clang libclang-rt-14-dev)" >&2; \
	  exit 0; fi; $(MAKE) --no-print-directory fuzz-run

fuzz-run:
	mkdir -p $(FUZZ)/corpus/jsonscan $(FUZZ)/corpus/fastpath
	clang $(FUZZ_CFLAGS) -o $(FUZZ)/fuzz_jsonscan tests/fuzz/fuzz_jsonscan.c
	clang $(FUZZ_CFLAGS) -I$(PY_INCLUDE) -o $(FUZZ)/fuzz_fastpath tests/fuzz/fuzz_fastpath.c \
	  -L$(PY_LIBDIR) -Wl,-rpath,$(PY_LIBDIR) -lpython3.11
	PYTHONPATH=$(CURDIR) $(BIN)/python tests/fuzz/fastpath_seeds.py $(FUZZ)/seeds/fastpath
	cd $(FUZZ) && ./fuzz_jsonscan -dict=$(CURDIR)/tests/fuzz/jsonscan.dict -max_len=4096 \
	  -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 corpus/jsonscan $(CURDIR)/tests/fuzz/seeds/jsonscan
	cd $(FUZZ) && PYTHONPATH=$(CURDIR):$(PY_SITE) PYTHONMALLOC=malloc \
	  ./fuzz_fastpath -max_len=8192 \
	  -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 corpus/fastpath seeds/fastpath

fuzz-tools:
	@$(call apt_tool,clang,clang libclang-rt-14-dev,the fuzzers will skip)

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

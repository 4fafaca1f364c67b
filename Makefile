# Tributary: `make run` starts the app on embedded defaults, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
RUN_STAMP := $(VENV)/.requirements-installed
EXTRAS_STAMP := $(VENV)/.requirements-extras-installed
TEST_STAMP := $(VENV)/.requirements-test-installed
# Worker processes for the tests that need neither a Docker engine nor a browser.
TEST_WORKERS ?= 2
# Extra pytest arguments for both test invocations, e.g. make test PYTEST_ARGS="-x -k webhook".
PYTEST_ARGS ?=

.PHONY: setup run extras sandbox test screenshots bench cli

# Everything: the app's requirements and the tests'.
setup: $(TEST_STAMP)

# Reinstall only when a requirements file changes; uv makes a fresh install take seconds.
# Bytecode is compiled at install time: where PYTHONDONTWRITEBYTECODE is set, Python would
# otherwise compile every library again in every process (about 0.8 s per CLI start).
$(RUN_STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.txt
	touch $(RUN_STAMP)

# The warehouses' drivers and the celery executor: what the embedded defaults do not need.
extras: $(EXTRAS_STAMP)

$(EXTRAS_STAMP): $(RUN_STAMP) requirements-extras.txt
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements-extras.txt
	touch $(EXTRAS_STAMP)

$(TEST_STAMP): $(EXTRAS_STAMP) requirements-test.txt
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements-test.txt
	touch $(TEST_STAMP)

run: $(RUN_STAMP) sandbox
	$(VENV)/bin/streamlit run app.py

# bubblewrap isolates the subprocess sandbox. Where it is missing, it is installed if this is
# a Debian-like machine and we are root; otherwise (or if that fails) a warning, never a failure:
# the app still starts, and its Settings page says that runs are not isolated.
sandbox:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -f scripts/ci-sandbox.sh ]; then \
	        bash scripts/ci-sandbox.sh || echo "warning: bubblewrap could not be installed: runs will not be isolated" >&2; \
	    else \
	        echo "warning: bubblewrap (bwrap) is not installed: runs will not be isolated (Debian/Ubuntu: apt-get install bubblewrap)" >&2; \
	    fi; \
	fi

# Two pytest invocations: the tests that need neither a Docker engine nor a browser on
# $(TEST_WORKERS) processes (pytest-xdist), then the Docker and browser ones in one process (they
# share the engine's images, and time what a page shows). Both always run; the first failure's
# status is the result. pytest's 5 (nothing selected, e.g. with PYTEST_ARGS naming one file)
# is not a failure.
test: $(TEST_STAMP)
	@status=0; \
	$(PYTEST) -n $(TEST_WORKERS) -m "not docker and not browser" $(PYTEST_ARGS) || { s=$$?; [ $$s -eq 5 ] || status=$$s; }; \
	$(PYTEST) -m "docker or browser" $(PYTEST_ARGS) || { s=$$?; [ $$s -eq 5 ] || [ $$status -ne 0 ] || status=$$s; }; \
	exit $$status

# The README's screenshots: the browser tests, writing them into docs/screenshots/ (a plain
# test run writes them into its temporary folder).
screenshots: $(TEST_STAMP)
	TRIBUTARY_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(PYTEST) -m browser tests/ui/test_browser.py

bench: $(EXTRAS_STAMP)
	$(PY) bench/run.py

cli: $(RUN_STAMP)
	@echo "usage: $(PY) -m core.cli --help"

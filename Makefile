# Tributary: `make run` starts the app on embedded defaults, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: setup run test bench cli

setup: $(STAMP)

# Reinstall only when requirements.txt changes; uv makes a fresh install take seconds.
# Bytecode is compiled at install time: where PYTHONDONTWRITEBYTECODE is set, Python would
# otherwise compile every library again in every process (about 0.8 s per CLI start).
$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.txt
	touch $(STAMP)

run: setup
	$(VENV)/bin/streamlit run app.py

test: setup
	$(VENV)/bin/pytest

bench: setup
	$(PY) bench/run.py

cli: setup
	@echo "usage: $(PY) -m core.cli --help"

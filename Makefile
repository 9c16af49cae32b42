# Two entry points: `make lab` (set up, open JupyterLab on notebooks/) and `make test`.
# Everything installs into .venv from pyproject.toml, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.poolviz-installed

.PHONY: setup lab test bench data lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

test: setup
	$(PY) -m pytest -q

data: setup
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash data/regenerate.sh

bench: setup
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/analysis_speed.py
	$(PY) benchmarks/timeline_render.py

lint: setup
	$(VENV)/bin/ruff check poolviz tests benchmarks
	$(VENV)/bin/ruff format --check poolviz tests benchmarks
	$(VENV)/bin/mypy poolviz

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

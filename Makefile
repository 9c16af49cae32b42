# Two entry points: `make lab` (set up, open JupyterLab on notebooks/) and `make test` (everything).
# `make check` is the quick edit loop; `make docs` renders the notebooks to build/docs/.
# Everything installs into .venv from pyproject.toml, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.poolviz-installed
# Extra options for JupyterLab, e.g. make lab LAB_ARGS="--no-browser --port=8890".
LAB_ARGS ?=
# Extra options for pytest in `make test` and `make check`, e.g. PYTEST_ARGS="-k leaks".
PYTEST_ARGS ?=
DOCS_ARGS ?=
PIPFLAGS ?= -qq
START_NOTEBOOK := 00_start_here.ipynb
# JupyterLab refuses to start as root without --allow-root; root is the usual user in containers and CI.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: setup lab lab-conda test check docs bench data lint clean

setup: $(STAMP)

# One progress line per step. -qq keeps pip to its errors, which still print (PIPFLAGS= shows everything).
$(STAMP): pyproject.toml setup.py poolviz/pools/_busypath.c $(wildcard poolviz/pools/busypath_src/*.h)
	@start=$$(date +%s); \
	if [ -x $(PY) ]; then echo "==> updating $(VENV)/ (pyproject.toml changed)"; \
	else echo "==> creating the environment in $(VENV)/"; fi && \
	$(PYTHON) -m venv $(VENV) && \
	echo "==> installing poolviz with its notebook and test packages (a few minutes the first time)" && \
	$(PY) -m pip install $(PIPFLAGS) --upgrade pip && \
	$(PY) -m pip install $(PIPFLAGS) -e '.[dev]' && \
	touch $(STAMP) && \
	echo "==> set up in $$(( $$(date +%s) - start )) s" \
	|| { echo "==> set-up failed (pip's error is above; make setup PIPFLAGS= shows all its output)" >&2; exit 1; }

# The JupyterLab command both `lab` targets run, with $(1) the jupyter executable.
define run_lab
	@$(if $(ALLOW_ROOT),echo "==> running as root (usual in containers): passing --allow-root to JupyterLab")
	@echo "==> starting JupyterLab on notebooks/: open the address ending in /lab/tree/$(START_NOTEBOOK)?token=... that it prints below (Ctrl-C twice stops it)"
	@$(1) lab --notebook-dir=notebooks --LabApp.default_url=/lab/tree/$(START_NOTEBOOK) $(ALLOW_ROOT) $(LAB_ARGS)
endef

lab: setup
	$(call run_lab,$(VENV)/bin/jupyter)

# For the conda route: JupyterLab from the active environment (conda activate poolviz), no .venv.
lab-conda:
	@python -c "import poolviz" 2>/dev/null || { echo "poolviz is not installed in this environment: run conda env create -f environment.yml && conda activate poolviz" >&2; exit 1; }
	$(call run_lab,jupyter)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The edit loop: everything but the slow and browser tests, stopping at the first failure.
check: setup
	$(PY) -m pytest -q -x -m "not slow and not browser" $(PYTEST_ARGS)

# Static pages of the notebooks, run with their defaults; DOCS_ARGS="00 03 --out DIR" builds a subset elsewhere.
docs: setup
	@echo "==> running the notebooks with their defaults and writing them as web pages"
	@$(PY) docs/build.py $(DOCS_ARGS)

data: setup
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash data/regenerate.sh

bench: setup
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/analysis_speed.py
	$(PY) benchmarks/timeline_render.py

lint: setup
	$(VENV)/bin/ruff check poolviz tests benchmarks docs
	$(VENV)/bin/ruff format --check poolviz tests benchmarks docs
	$(VENV)/bin/mypy poolviz

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv with Python >= 3.12 when it is missing.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
# The first interpreter >= 3.12 we can actually run (pyenv shims may exist but refuse to run).
PYTHON ?= $(shell for p in python3.12 python3.13 python3.14 $(wildcard $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python3) python3; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$p; break; }; done)
PYTEST_ARGS ?=
# Two workers (CI has 2 cores; PyTensor/numba compiles are single-threaded). loadgroup keeps a
# test module (and the compiled models its fixtures share) on one worker; tests/conftest.py
# makes each notebook its own group so the notebooks spread over both workers.
PYTEST_PARALLEL ?= -n 2 --dist loadgroup

.PHONY: help demo test test-fast notebooks bench bench-scale lint docs docs-check clean-venv
.DEFAULT_GOAL := help

help:
	@echo "make demo       create .venv if missing, install, run the main job (reports/demo/)"
	@echo "make test       create .venv if missing, install, run the tests"
	@echo "make test-fast  the tests without the slow end-to-end ones"
	@echo "make notebooks  execute the tutorials at full settings into reports/notebooks/"
	@echo "make bench      run benchmarks/ and write reports/benchmarks/"
	@echo "make bench-scale  chunked CAVI: a 1e8-point zarr store (1.6 GB in /tmp/ppl_scale), a LocalCluster"
	@echo "make lint       ruff format --check, ruff check, lint-imports (layers), mypy (numeric core)"
	@echo "make docs       build the documentation site into docs/_build/html (warnings are errors)"
	@echo "make docs-check open the built site in headless Chromium; fail on a broken image or link"

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: no Python >= 3.12 found; install python3.12 and retry" >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: $(BIN)/.installed
	$(BIN)/ppl-mixtures demo --out reports/demo --force

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow" $(PYTEST_ARGS)

notebooks: $(BIN)/.installed
	$(BIN)/python notebooks/run_notebooks.py --out reports/notebooks

bench: $(BIN)/.installed
	$(BIN)/ppl-mixtures bench

bench-scale: $(BIN)/.installed
	$(BIN)/ppl-mixtures bench --only scale

# Every check runs even when an earlier one fails; the target fails if any did.
# mypy checks the numeric core listed in pyproject.toml [tool.mypy] `files`.
LINT_PATHS := ppl_mixtures tests benchmarks tools docs notebooks

lint: $(BIN)/.installed
	@failed=(); \
	$(BIN)/ruff format --check $(LINT_PATHS) || failed+=("ruff format --check"); \
	$(BIN)/ruff check $(LINT_PATHS) || failed+=("ruff check"); \
	$(BIN)/lint-imports || failed+=("lint-imports"); \
	$(BIN)/mypy || failed+=("mypy"); \
	if (( $${#failed[@]} )); then echo "make lint failed: $${failed[*]}" >&2; exit 1; fi

# The site: Sphinx + myst-nb from the `docs` extra, installed into .venv on first use.
DOCS_BUILD   := docs/_build/html
CHROMIUM     ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver

$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	@touch $@

# -E: a fresh environment every time, so -W sees every page's warnings, not only changed ones.
# viewcode skips a _modules page that is newer than its source even when the documented names
# changed (stale anchors), so those pages are rebuilt every time too.
docs: $(BIN)/.docs-installed
	rm -rf $(DOCS_BUILD)/_modules
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs $(DOCS_BUILD)
	@echo "site: $(DOCS_BUILD)/index.html"

# Debian's chromium and chromium-driver, installed when missing (needs root or sudo).
docs-check: $(BIN)/.docs-installed
	@test -f $(DOCS_BUILD)/index.html || { echo "error: no $(DOCS_BUILD)/index.html; run make docs first" >&2; exit 2; }
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
	  echo "installing chromium and chromium-driver with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi
	$(BIN)/python tools/docs_check.py --site $(DOCS_BUILD) --chromium $(CHROMIUM) --chromedriver $(CHROMEDRIVER) --all

clean-venv:
	rm -rf $(VENV)

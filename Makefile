# One-word entry points.  Every target installs what it needs into .venv first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test test-levels site-test lint bench clean
LEVELS := 0 1 2 3 4 5 6 6.15

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

## book: execute every chapter and write the HTML to _build/html (warnings and cell errors fail)
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -n -W --keep-going --all

## test: the package's tests (the chapters run as notebooks among them; the browser tests of the built
## site when _build/html is there and up to date), the linter, then the suite once per level of the series
test: $(STAMP)
	$(VENV)/bin/pytest
	$(VENV)/bin/ruff check .
	$(MAKE) --no-print-directory test-levels

## test-levels: generate the package as of each level and run the suite on it (rules are checked
## per level: a test marked with a rule must fail where the rule does not hold)
test-levels: $(STAMP)
	@set -e; gen=$$(mktemp -d); for level in $(LEVELS); do \
	  $(PY) -m tryalloc.series write $$level $$gen/$$level >/dev/null; \
	  echo "== level $$level"; \
	  PYTHONPATH=$$gen/$$level $(VENV)/bin/pytest -q -p no:cacheprovider -x -m "not notebooks and not site" \
	    --deselect tests/test_series.py --deselect tests/test_traceability.py 2>&1 | tail -n 3; \
	  test "$${PIPESTATUS[0]}" = 0 || exit 1; \
	done; rm -rf $$gen

## site-test: the built book (run `make book` first) in headless Chromium, and its internal links; a
## missing or stale build or browser fails here instead of being skipped
site-test: $(STAMP)
	TRYALLOC_SITE=required $(VENV)/bin/pytest -q -m site

lint: $(STAMP)
	$(VENV)/bin/ruff check .

## bench: print the benchmark tables recorded in benchmarks/README.md
bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b; done

clean:
	rm -rf _build

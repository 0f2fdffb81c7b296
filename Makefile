# One-word entry points.  Every target installs what it needs into .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test lint bench clean

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

## book: execute every chapter and write the HTML to _build/html (warnings and cell errors fail)
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -n -W --keep-going

## test: the package's tests and the linter
test: $(STAMP)
	$(PY) -m pytest
	$(VENV)/bin/ruff check .

lint: $(STAMP)
	$(VENV)/bin/ruff check .

## bench: print the benchmark tables recorded in benchmarks/README.md
bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b; done

clean:
	rm -rf _build

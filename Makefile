# Two commands do all set-up: `make reproduce` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RESULTS ?= results

.PHONY: install test test-all reproduce bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

# The whole pipeline on the embedded default; finished work is skipped on a re-run.
reproduce: $(STAMP)
	$(PY) train_gpt2.py --results_path $(RESULTS) --skip_existing

bench: $(STAMP)
	$(PY) bench/das_speed.py

clean:
	rm -rf $(RESULTS)/* 

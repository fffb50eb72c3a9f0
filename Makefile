# mmifr: one entry point for setting up, running the demo and testing.
#   make demo        set up, build the data, train + evaluate baseline and IFR, print the table
#   make test        set up, then the whole test suite (what CI runs)
#   make test-fast   the suite without the tests marked slow

VENV ?= .venv
PY := $(VENV)/bin/python
# Tools started from the tests and scripts (dist_train.sh runs `python`) must
# find the environment's interpreter, activated or not.
export PATH := $(abspath $(VENV))/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast lint clean

setup:
	bash scripts/setup_env.sh

demo: setup
	$(PY) tools/run_demo.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(PY) -m flake8 mmifr tools tests configs

clean:
	rm -rf work_dirs .pytest_cache

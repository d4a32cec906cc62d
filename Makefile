# edgetpu-bench: `make run` and `make test` set everything up on a machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
RUN_ARGS ?= --split all --device cpu

.PHONY: run test lint train-deps models bench clean-cache help docs-check results-tables

help:
	@echo "make run         set up .venv (runtime only) and run the default benchmark"
	@echo "make test        set up .venv with test + train deps and run pytest"
	@echo "make models      retrain and convert the shipped SignNet models (needs TensorFlow)"
	@echo "make bench       every issue-17 ratio in one run (tools/bench_all.py; BENCH_ARGS=--skip-tf)"
	@echo "make docs-check  re-run the documented examples and compare their output"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.txt setup.cfg | $(PY)
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -e .
	touch $@

$(VENV)/.test-deps: $(VENV)/.run-deps setup.cfg
	$(PIP) install -e '.[train,test]'
	touch $@

run: $(VENV)/.run-deps
	$(PY) -m benchmark.run $(RUN_ARGS)

# One worker per core; a test file's tests stay on one worker (module fixtures train once).
PYTEST_ARGS ?= -n auto --dist loadfile

test: $(VENV)/.test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.test-deps
	$(PY) -m flake8 benchmark tests tools

train-deps: $(VENV)/.test-deps

models: $(VENV)/.test-deps
	bash tools/train_all.sh

bench: $(VENV)/.run-deps
	$(PY) tools/bench_all.py $(BENCH_ARGS)

docs-check: $(VENV)/.run-deps
	$(PY) tools/docs_check.py

results-tables: $(VENV)/.run-deps
	$(PY) tools/results_tables.py

clean-cache:
	rm -rf datasets/cache

# The documented commands. Each sets up .venv on first use (Python 3.11+ and make are all it needs).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LAKE   ?= demo-lake

.PHONY: test demo bench lint format clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "steme_lake needs Python 3.11+; run: make PYTHON=python3.11 ...")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,notebooks,api]'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m steme_lake.demo --lake $(LAKE)

# SIZE: 100k, 1M (default) or 10M assertions (ten audit records each); results in benchmarks/results/
SIZE ?= 1M
bench: $(STAMP)
	$(PY) benchmarks/lake_bench.py --size $(SIZE)

lint: $(STAMP)
	$(PY) -m ruff check steme_lake tests benchmarks datasets
	$(PY) -m ruff format --check steme_lake tests benchmarks datasets
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format steme_lake tests benchmarks datasets
	$(PY) -m ruff check --fix steme_lake tests benchmarks datasets

clean:
	rm -rf $(VENV) $(LAKE) .pytest_cache .mypy_cache .ruff_cache

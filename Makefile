# The documented commands. Each sets up .venv on first use (Python 3.11+ and make are all it needs).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LAKE   ?= demo-lake

.PHONY: test demo bench lint format clean fuse browser

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "steme_lake needs Python 3.11+; run: make PYTHON=python3.11 ...")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,notebooks,api,s3]'
	@touch $(STAMP)

# The Ray tests (tests/ray) run in a network namespace of their own, loopback only, beside
# the rest (they mostly wait for processes to start). The rest run in two processes
# (pytest-xdist, work stealing: the slow tests do not queue behind one another).
test: $(STAMP) fuse browser
	@$(PY) tests/_netns.py $(PY) -m pytest -q -p no:cacheprovider \
	    --basetemp=$(VENV)/ray-tests-tmp tests/ray > $(VENV)/ray-tests.log 2>&1 & ray=$$!; \
	$(PY) -m pytest -q -n 2 --dist worksteal; main=$$?; \
	wait $$ray; rays=$$?; \
	echo "--- tests/ray, run beside the rest in a network namespace of their own:"; \
	cat $(VENV)/ray-tests.log; \
	test $$main = 0 && test $$rays = 0

# The power-loss tests record a lake's I/O through a FUSE filesystem (Debian's fuse3).
# Installed here where it can be (root with apt-get); elsewhere those tests skip.
fuse:
	@command -v fusermount3 >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing fuse3 for the power-loss tests"; \
	    apt-get update -qq >/dev/null && apt-get install -y -qq fuse3 >/dev/null || true; \
	  fi; \
	  command -v fusermount3 >/dev/null 2>&1 || echo "fuse3 is not installed: the power-loss tests will be skipped"; }

# The explorer's browser test drives Debian's chromium (Playwright, no browser download).
# Installed here where it can be (root with apt-get); elsewhere that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the explorer's browser test"; \
	    apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null || true; \
	  fi; \
	  command -v chromium >/dev/null 2>&1 || echo "chromium is not installed: the browser test will be skipped"; }

demo: $(STAMP)
	$(PY) -m steme_lake.demo --lake $(LAKE)

# SIZE: 100k, 1M (default) or 10M assertions (ten audit records each); results in benchmarks/results/
# SKIP: workloads not run (lake_bench.py --skip). Above 100k the peers' impact
# 3 levels down is skipped (it ran for over 40 minutes at 1M); SKIP= runs it.
SIZE ?= 1M
SKIP ?= $(if $(filter 100k,$(SIZE)),,duckdb:impact_depth3,sqlite:impact_depth3)
bench: $(STAMP)
	$(PY) benchmarks/lake_bench.py --size $(SIZE) --skip "$(SKIP)"

lint: $(STAMP)
	$(PY) -m ruff check steme_lake tests benchmarks datasets
	$(PY) -m ruff format --check steme_lake tests benchmarks datasets
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format steme_lake tests benchmarks datasets
	$(PY) -m ruff check --fix steme_lake tests benchmarks datasets

clean:
	rm -rf $(VENV) $(LAKE) .pytest_cache .mypy_cache .ruff_cache

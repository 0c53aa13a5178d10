# Every target CI or a new user runs: `make test`, `make demo`, `make bench`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export SDL_VIDEODRIVER ?= dummy

.PHONY: test lint typecheck pytest demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check recorder tests scripts
	$(VENV)/bin/ruff format --check recorder tests scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy recorder

pytest: $(STAMP)
	$(PY) -m pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(PY) scripts/demo.py --out videos

bench: $(STAMP)
	$(PY) scripts/bench_core.py
	$(PY) scripts/bench_cartpole.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

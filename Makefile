# Every target CI or a new user runs: `make test`, `make demo`, `make bench` (`make bench-quick`,
# `make bench-render`).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export SDL_VIDEODRIVER ?= dummy

.PHONY: test lint typecheck pytest demo bench bench-render bench-quick browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench,cli]'
	touch $(STAMP)

# Debian's Chromium for the gallery test; installed when missing and we may (root).
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt-get)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "could not install chromium: the browser test will be skipped"; \
	else echo "chromium not installed and not root: the browser test will be skipped"; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check recorder tests scripts
	$(VENV)/bin/ruff format --check recorder tests scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy recorder

pytest: $(STAMP) browser
	$(PY) -m pytest

test: lint typecheck pytest

# The demo's own install: the package with its cli extra, and playwright for the gallery
# check; not the test stack (`make test` adds it to the same venv).
DEMO_STAMP := $(VENV)/.demo-installed

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cli]' 'playwright>=1.45'
	touch $(DEMO_STAMP)

# Then every video is played in headless Chromium and the page saved as videos/gallery.png
# (optional: skipped, with the reason, when no browser can start: exit status 2 of
# gallery_check.py).
demo: $(DEMO_STAMP) browser
	$(VENV)/bin/recorder record CartPole-v1 --episodes 30 --every 5 --out videos --gallery
	@$(PY) scripts/gallery_check.py videos --screenshot videos/gallery.png; status=$$?; \
	if [ $$status = 2 ]; then echo "the browser check was skipped (optional; reason above)"; \
	elif [ $$status != 0 ]; then exit $$status; fi
	@echo "open videos/index.html, or watch a run live: $(VENV)/bin/recorder serve videos"
	@echo "the command line: $(VENV)/bin/recorder --help (or: source $(VENV)/bin/activate)"

# Every scripts/bench_*.py, measured into build/bench/ (raw JSON, pyperf files), then rendered
# into one report: docs/benchmarks.md (tables) and docs/benchmarks.png. `make bench-render`
# renders again from build/bench/ without measuring (after a change to a report's code or words).
# A scenario that crashed is reported as such and makes the status 1, after the report is written.
bench: $(STAMP)
	$(PY) scripts/bench_all.py measure --out-dir build/bench; status=$$?; \
	$(PY) scripts/bench_all.py render build/bench --out-dir docs && exit $$status

bench-render: $(STAMP)
	$(PY) scripts/bench_all.py render build/bench --out-dir docs

# Every scenario's smoke run (small counts, ~3 min): the same report, in build/ (not committed).
bench-quick: $(STAMP)
	$(PY) scripts/bench_all.py measure --quick --out-dir build/bench-quick; status=$$?; \
	$(PY) scripts/bench_all.py render build/bench-quick --out-dir build/bench-quick && exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

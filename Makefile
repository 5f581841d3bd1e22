# The README's two commands: `make run` (set up, launch the app) and `make test` (set up, run every test).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test lint format screenshots bench clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "$(PYTHON) is Python \
	$$($(PYTHON) -c 'import platform; print(platform.python_version())'); ResNeXt Studio needs 3.10 or newer: \
	make $(MAKECMDGOALS) PYTHON=python3.12 (or another 3.10+)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the package metadata changes; a second `make` run installs nothing.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,export]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) main.py

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) tools/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache

# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv, installs vigil, runs it on the example platform with simulated traffic
#   make test   installs what the tests need (system packages included) and runs every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN    := $(VENV)/.installed-run
TESTS  := $(VENV)/.installed-test

.PHONY: demo test install install-test system-deps quality bench clean

NEW_ENOUGH := -c 'import sys; sys.exit(sys.version_info < (3, 11))'

# what vigil needs to run (make demo): no test tools. A .venv of an older Python (left by an earlier
# try with another PYTHON) is made again, or every later try would fail the same way.
$(RUN): pyproject.toml
	@$(PYTHON) $(NEW_ENOUGH) 2>/dev/null || { echo "vigil needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) -V 2>/dev/null || echo missing): run make $(MAKECMDGOALS) PYTHON=python3.11 (or newer)" >&2; exit 2; }
	test -x $(BIN)/python && $(BIN)/python $(NEW_ENOUGH) || $(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(RUN)

# what the tests need on top (make test)
$(TESTS): $(RUN)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(TESTS)

install: $(RUN)

install-test: $(TESTS)

system-deps:
	./scripts/system-deps.sh

# ruff and mypy with a ratchet: their counts may only go down (scripts/quality-ratchet.json)
quality: install-test
	$(BIN)/python scripts/quality.py

test: install-test system-deps quality
	$(BIN)/python -m pytest -q

demo: install
	./scripts/demo.sh

bench: install-test
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/evaluate.py
	$(BIN)/python benchmarks/migrate_lint.py
	$(BIN)/python benchmarks/rebuild.py
	$(BIN)/python benchmarks/drill.py
	$(BIN)/python benchmarks/web.py

clean:
	rm -rf $(VENV) .vigil examples/platform/.vigil build *.egg-info src/*.egg-info

# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv, installs vigil, runs it on the example platform with simulated traffic
#   make test   installs what the tests need (system packages included) and runs every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install system-deps bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	./scripts/system-deps.sh

test: install system-deps
	$(BIN)/python -m pytest -q

demo: install
	./scripts/demo.sh

bench: install
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/evaluate.py
	$(BIN)/python benchmarks/migrate_lint.py
	$(BIN)/python benchmarks/rebuild.py
	$(BIN)/python benchmarks/drill.py

clean:
	rm -rf $(VENV) .vigil examples/platform/.vigil build *.egg-info src/*.egg-info

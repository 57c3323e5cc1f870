# The two set-up commands: `make demo` and `make test` (each creates .venv and installs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "inscene needs Python >= 3.11 (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch pinned to the CPU build first: an open range would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# the hand detector's networks come out of the mediapipe wheel once per machine (checked by sha256)
	$(BIN)/inscene models fetch
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/inscene demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/inscene bench io

clean:
	rm -rf $(VENV) build *.egg-info

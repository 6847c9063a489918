# Two commands for a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install clean-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'

demo: install
	$(BIN)/frugaltext compare --output runs/demo --select --select-objective latency --select-min-retention 99

lint: install
	$(BIN)/ruff check src tests benchmarks

test: install
	$(BIN)/ruff check src tests benchmarks
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q

clean-demo:
	rm -rf runs/demo

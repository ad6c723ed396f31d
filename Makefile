# Two commands set everything up on a fresh machine (Python >= 3.10 with pip):
#   make demo   install into .venv, then run `proteus demo` on the built-in synthetic benchmark
#   make test   install into .venv, then run the whole test suite (notebooks included)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of PyTorch: the package never needs CUDA, so do not download the multi-GB CUDA wheel.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PYTEST_ARGS ?=

.PHONY: install demo test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --retries 0 "torch==$(TORCH_VERSION)" --extra-index-url $(TORCH_INDEX)
	$(BIN)/python -m pip install -e ".[dev,serve,sentence,ray]"
	touch $@

demo: install
	$(BIN)/proteus demo

test: install
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/env_speed.py

clean:
	rm -rf $(VENV) build dist *.egg-info

# Two commands set everything up on a fresh clone:
#   make train   create .venv, install dlx, train the default experiment (digits, embedded)
#   make test    create .venv, install dlx with its test tools, run the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: train test bench clean

$(BIN)/dlx: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	touch $(BIN)/dlx

train: $(BIN)/dlx
	$(BIN)/dlx train experiments/digits_cnn.yaml

test: $(BIN)/dlx
	$(BIN)/python -m pytest -q -rs

bench: $(BIN)/dlx
	$(BIN)/python bench/loop_overhead.py --threads 1

clean:
	rm -rf $(VENV) runs

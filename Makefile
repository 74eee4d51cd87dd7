# `make demo` and `make test` each build .venv from nothing when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e ".[all,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m irbridge.models.demo build/demo
	$(BIN)/irbridge convert build/demo/resnet_small.onnx --to torch -o build/demo/resnet_small_torch
	@echo "PyTorch module written to build/demo/resnet_small_torch/ (model.py + weights.safetensors)"

test: $(STAMP)
	$(BIN)/python -m pytest -q -rfE

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)  # conversion time and memory beside the load+save floor; rewrites the README table
	$(BIN)/python benchmarks/conversions.py
	$(BIN)/python benchmarks/torch_inference.py --repeats 5

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build .pytest_cache

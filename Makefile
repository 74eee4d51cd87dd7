# `make demo` and `make test` each build .venv from nothing when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-zoo test-fast lint bench peers clean venv chromium scoreboard corpus

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/test-extra.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e ".[all,test]"
	$(BIN)/python -m pip install -q --no-deps -r requirements/test-extra.txt  # keras-hub (see the file)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m irbridge.models.demo build/demo
	$(BIN)/irbridge convert build/demo/resnet_small.onnx --to torch -o build/demo/resnet_small_torch
	@echo "PyTorch module written to build/demo/resnet_small_torch/ (model.py + weights.safetensors)"

# Two workers (pytest-xdist): CI has 2 cores. IRBRIDGE_FULL_ZOO=1 (`make test-zoo`) widens the
# model matrices (every keras.applications family, every zoo model to TFLite/TF) by hand.
test: $(STAMP) chromium
	$(BIN)/python -m pytest -q -rfE -n 2

test-zoo: $(STAMP) chromium
	IRBRIDGE_FULL_ZOO=1 $(BIN)/python -m pytest -q -rfE -n 2

# Debian's chromium renders the sweep's HTML report in tests/cli/test_sweep.py (CI runs `make test`
# as root on a fresh clone). Elsewhere, without root, that one test skips with its reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium) || \
	  echo "make: chromium could not be installed (not root?): the HTML report test will skip"

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP) peers  # conversion time and memory beside the floor and the peers; exported-model speed; README tables
	$(BIN)/python benchmarks/conversions.py
	$(BIN)/python benchmarks/inference.py

# The peers measured by `make bench`, each in its own environment (Python 3.11: the torch 2.14.1 +
# torchvision 0.29.1 that onnx2torch needs lie on this machine's disk for it).
PEERS := .venv-peers
PEER_PY ?= python3.11
peers: $(PEERS)/onnx2torch/.installed $(PEERS)/onnx2tf/.installed $(PEERS)/onnx2tf2/.installed

$(PEERS)/%/.installed: requirements/peers/%.txt
	test -x $(PEERS)/$*/bin/python || $(PEER_PY) -m venv $(PEERS)/$*
	$(PEERS)/$*/bin/python -m pip install -q -r $<
	touch $@

# onnx2tf 2.x (benchmarks/tflite.py: its default flatbuffer_direct backend) requires Python >= 3.12.
PEER_PY312 ?= python3.12
$(PEERS)/onnx2tf2/.installed: requirements/peers/onnx2tf2.txt
	test -x $(PEERS)/onnx2tf2/bin/python || $(PEER_PY312) -m venv $(PEERS)/onnx2tf2
	$(PEERS)/onnx2tf2/bin/python -m pip install -q -r $<
	touch $@

# Every model the repository builds (build/scoreboard-models/) x torch,keras,tf, each cell in a
# fresh process: build/scoreboard.md (the README's table), .html and .json; progress on stderr. By hand, not in CI.
SCOREBOARD_TARGETS ?= torch,keras,tf
scoreboard: $(STAMP)
	$(BIN)/python -m irbridge.models.scoreboard build/scoreboard-models
	IRBRIDGE_PROGRESS=1 $(BIN)/irbridge sweep build/scoreboard-models --to $(SCOREBOARD_TARGETS) \
	  --report build/scoreboard.html --markdown build/scoreboard.md --json > build/scoreboard.json
	@cat build/scoreboard.md

corpus: $(STAMP)  # 25 transformers architectures x TorchScript/dynamo exports (+6 float16) -> every target
	$(BIN)/python -m irbridge.models.hf_corpus build/corpus
	IRBRIDGE_PROGRESS=1 $(BIN)/irbridge sweep build/corpus --to $(SCOREBOARD_TARGETS) --timeout 600 \
	  --report build/corpus-sweep.html --markdown build/corpus-sweep.md --json > build/corpus-sweep.json
	@cat build/corpus-sweep.md

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(PEERS) build .pytest_cache

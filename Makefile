# vidrag: two commands for a fresh machine, `make run` and `make test`.
# Every step installs only what is missing, so a second run is fast.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vidrag-installed
NODE_STAMP := node_modules/.bin/configurable-http-proxy
SYS_STAMP := $(VENV)/.vidrag-system
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install system-deps run test lint bench bench-peers clean

install: $(STAMP) $(NODE_STAMP)

# Debian packages the tests and the demo use: espeak-ng/sox for test speech, chromium for
# browser tests, PostgreSQL server binaries. Installed only when missing and when root.
system-deps: $(SYS_STAMP)
$(SYS_STAMP): scripts/system-deps.sh
	@mkdir -p $(VENV)
	bash scripts/system-deps.sh
	@touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first and pinned: 2.13.0 is the CPU build on this disk; anything else pulls CUDA.
$(STAMP): pyproject.toml $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,hub,dashboards,postgres,multilingual]'
	@touch $@

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --silent
	@touch $@

run: install
	$(BIN)/python -m hub_config.launch

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The suite runs on every core, a whole test file per worker (module fixtures such as a
# hub are started once); the 25 slowest tests are listed at the end.
test: install system-deps lint
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=25

bench: install system-deps
	$(BIN)/python -m benchmarks

# vidrag's index beside Chroma, LanceDB and qdrant-client (installed into their own venv,
# never the project's) at 100k and 1M vectors; long (about half an hour on 2 cores)
PEERS_VENV := benchmarks/.peers-venv
$(PEERS_VENV)/.installed:
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install -q chromadb lancedb qdrant-client numpy pyarrow
	touch $@

bench-peers: install $(PEERS_VENV)/.installed
	nice -n 19 $(BIN)/python -m benchmarks.peers

clean:
	rm -rf $(VENV) node_modules .vidrag

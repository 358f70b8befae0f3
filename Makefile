# The README's two commands: `make lab` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lenscope-installed
PORT ?= 8888

.PHONY: install lab test lint bench

$(STAMP): pyproject.toml Makefile package.json yarn.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, CPU build from this machine's local file: a bare `torch` is a multi-GB CUDA build
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[lab,test]'
	# node dependencies (jlpm is JupyterLab's pinned yarn); yarn.lock is committed
	$(BIN)/jlpm install
	touch $(STAMP)

install: $(STAMP)

lab: install
	mkdir -p $(VENV)/lab-settings/@jupyterlab/apputils-extension
	echo '{"fetchNews": "false"}' > $(VENV)/lab-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings
	JUPYTERLAB_SETTINGS_DIR=$(abspath $(VENV)/lab-settings) $(BIN)/jupyter lab \
	  --ServerApp.root_dir=$(abspath examples) --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) \
	  --ServerApp.open_browser=False --LenscopeApp.default_model=lenscope-gelu-1l $(if $(filter 0,$(shell id -u)),--allow-root,)

lint: install
	$(BIN)/ruff check python server_ext tests benchmarks scripts
	$(BIN)/ruff format --check python server_ext tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/python -m lenscope.openapi --check

test: lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: install
	$(BIN)/python -m benchmarks.bench_analyze
	$(BIN)/python -m benchmarks.bench_http

# The README's two commands: `make lab` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lenscope-installed
PORT ?= 8888
# jupyter's build tools call each other by name: the venv's bin must be on PATH
export PATH := $(abspath $(BIN)):$(PATH)
LABEXT := server_ext/lenscope_server/labextension

.PHONY: install build browser lab test lint bench dist vscode vscode-test code-server

# the VS Code extension (vscode/): its .vsix, and code-server for its browser test
CODE_SERVER_VERSION ?= 4.100.3
CODE_SERVER_DIR := .cache/code-server
CODE_SERVER := $(CODE_SERVER_DIR)/node_modules/.bin/code-server
VSIX := vscode/lenscope.vsix
VSCODE_SRC := $(wildcard vscode/src/*.ts vscode/src/webview/*.ts) $(wildcard labextension/src/api/*.ts) labextension/src/colors.ts labextension/src/format.ts labextension/src/errors.ts

$(STAMP): pyproject.toml hatch_build.py Makefile package.json yarn.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, CPU build from this machine's local file: a bare `torch` is a multi-GB CUDA build
	$(BIN)/python -m pip install -q torch==2.13.0
	# pyproject.toml's build requirements, so that the editable install needs no isolated build
	# environment; `make build` builds the frontend, so the install skips it (SKIP_JUPYTER_BUILDER)
	$(BIN)/python -m pip install -q hatchling hatch-jupyter-builder hatch-nodejs-version editables
	SKIP_JUPYTER_BUILDER=1 $(BIN)/python -m pip install -q --no-build-isolation -e '.[lab,test]'
	# node dependencies (jlpm is JupyterLab's pinned yarn); yarn.lock is committed. Quiet: no
	# progress bars, and .yarnrc.yml's logFilters drop the fetch, peer-dependency and deprecation
	# notices (thousands of lines); errors and other warnings stay
	YARN_ENABLE_PROGRESS_BARS=0 $(BIN)/jlpm install
	touch $(STAMP)

install: $(STAMP)

# the labextension: TypeScript -> lib/ -> a federated extension, linked into the venv's Jupyter
build: install
	$(BIN)/jlpm build
	mkdir -p $(VENV)/share/jupyter/labextensions
	ln -sfn $(abspath $(LABEXT)) $(VENV)/share/jupyter/labextensions/lenscope

# Debian's Chromium for the browser tests (never a test tool's own download)
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-liberation)

# the URL to open, printed on a line of its own before the server starts (its own log is warnings
# only); a taken port fails instead of moving to another port the line would not name
ifndef LAB_TOKEN
LAB_TOKEN := $(shell $(PYTHON) -c 'import secrets; print(secrets.token_hex(24))')
endif
LAB_URL = http://127.0.0.1:$(PORT)/lab?token=$(LAB_TOKEN)

lab: build
	@mkdir -p $(VENV)/lab-settings/@jupyterlab/apputils-extension
	@echo '{"fetchNews": "false"}' > $(VENV)/lab-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings
	@printf '\n  lenscope is starting. open: %s\n  (Ctrl+C stops it)\n\n' '$(LAB_URL)'
	@JUPYTERLAB_SETTINGS_DIR=$(abspath $(VENV)/lab-settings) $(BIN)/jupyter lab \
	  --ServerApp.root_dir=$(abspath examples) --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) \
	  --ServerApp.port_retries=0 --IdentityProvider.token=$(LAB_TOKEN) --ServerApp.log_level=WARN \
	  --ServerApp.open_browser=False --LenscopeApp.default_model=lenscope-gelu-1l $(if $(filter 0,$(shell id -u)),--allow-root,)

lint: install
	$(BIN)/ruff check python server_ext tests benchmarks scripts
	$(BIN)/ruff format --check python server_ext tests benchmarks scripts
	$(BIN)/mypy
	# the architecture contracts (pyproject.toml's [tool.importlinter]; docs/core.md explains them)
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python -m lenscope.openapi --check
	$(BIN)/jlpm lint

test: lint build browser vscode code-server
	$(BIN)/jlpm test
	$(BIN)/jlpm jest --config vscode/jest.config.js
	$(BIN)/pytest -q -p no:cacheprovider

# the sdist, then the wheel from it, as a release builds them (Node.js from the system; jlpm comes
# with JupyterLab in the isolated build environment): dist/lenscope-<version>{.tar.gz,-py3-none-any.whl}
dist: install
	rm -rf dist
	$(BIN)/python -m build -o dist .

bench: install
	$(BIN)/python -m benchmarks.bench_analyze
	$(BIN)/python -m benchmarks.bench_http
	$(BIN)/python -m benchmarks.bench_loop
	$(BIN)/python -m benchmarks.bench_attention
	$(BIN)/python -m benchmarks.bench_interventions
	$(BIN)/python -m benchmarks.bench_models
	$(BIN)/python -m benchmarks.bench_index
	$(BIN)/python -m benchmarks.bench_scale

# the extension's own tools (esbuild, @vscode/vsce, @types/vscode); tsc and jest are the repo's
vscode/node_modules/.installed: vscode/package.json vscode/package-lock.json
	cd vscode && npm ci --no-audit --no-fund
	touch $@

# type-check, bundle (the API client is labextension/src/api: one copy), package
$(VSIX): $(STAMP) vscode/node_modules/.installed $(VSCODE_SRC) vscode/esbuild.mjs vscode/tsconfig.json
	cd vscode && ../node_modules/.bin/tsc -p tsconfig.json
	cd vscode && node esbuild.mjs --production
	cd vscode && node_modules/.bin/vsce package --no-dependencies --allow-missing-repository -o lenscope.vsix

vscode: $(VSIX)

vscode-test: vscode
	$(BIN)/jlpm jest --config vscode/jest.config.js

# code-server from the npm registry (its Node.js engine is this machine's: 20), cached in
# .cache/; Debian's ripgrep stands in for the one its install script would download
$(CODE_SERVER): vscode/install-code-server.sh
	command -v rg >/dev/null && test -e /usr/include/gssapi/gssapi.h || (apt-get update -qq && apt-get install -y -qq --no-install-recommends ripgrep libkrb5-dev build-essential python3)
	bash vscode/install-code-server.sh $(CODE_SERVER_DIR) $(CODE_SERVER_VERSION)
	touch $@

code-server: $(CODE_SERVER)

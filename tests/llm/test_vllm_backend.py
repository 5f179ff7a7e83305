"""The vLLM backend without its engine: a clear error without vllm, and ``auto`` choosing
vLLM where it can run (its CPU build, or CUDA) and transformers elsewhere (the engine for
real: tests/llm/test_vllm_real.py; the GPU path: experiments/bench_vllm.py)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from evo.config import validate_config
from evo.errors import EvoError
from evo.llm import load_generator, resolve_backend
from evo.llm.factory import generator_options
from evo.llm.vllm_backend import vllm_available

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_vllm_backend_without_vllm_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if the gpu extra were not installed
    with pytest.raises(EvoError, match=r"backend 'vllm' needs the gpu extra \(pip install 'evo\[gpu\]'\)"):
        load_generator("vllm", "Qwen/Qwen2.5-Coder-1.5B-Instruct")
    from evo.llm.vllm_backend import VLLMGenerator

    with pytest.raises(EvoError, match="gpu extra"):
        VLLMGenerator("Qwen/Qwen2.5-Coder-1.5B-Instruct")


def test_auto_picks_vllm_where_it_runs_else_transformers(monkeypatch):
    import torch

    import evo.llm.vllm_backend as vb

    runs_here = HAS_VLLM and (vb.vllm_cpu_build() or torch.cuda.is_available())
    assert vllm_available() == runs_here
    assert resolve_backend("auto") == ("vllm" if runs_here else "transformers")
    monkeypatch.setattr(vb, "vllm_cpu_build", lambda: False)  # a GPU build of vLLM ...
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # ... and no CUDA device
    assert not vllm_available() and resolve_backend("auto") == "transformers"
    monkeypatch.setitem(sys.modules, "vllm", None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else True)
    monkeypatch.setattr(vb, "vllm_cpu_build", lambda: True)  # a stale dist record, no module
    assert not vllm_available()
    assert resolve_backend("openai") == "openai"
    cfg = validate_config({"generator": {"backend": "auto"}})
    assert generator_options(cfg.generator)["batch_size"] == 16


def test_auto_picks_vllm_when_cuda_and_vllm_are_present(monkeypatch):
    import evo.llm.vllm_backend as vb

    monkeypatch.setattr(vb, "vllm_available", lambda: True)
    assert resolve_backend("auto") == "vllm"
    assert resolve_backend("transformers") == "transformers"  # the config's word wins


def test_openai_options_come_from_config():
    cfg = validate_config({"generator": {"backend": "openai", "model": "m", "base_url": "http://h:1/v1",
                                         "concurrency": 3, "max_retries": 1}})
    opts = generator_options(cfg.generator)
    assert opts["base_url"] == "http://h:1/v1" and opts["concurrency"] == 3 and opts["max_retries"] == 1
    assert opts["api_key_env"] == "OPENAI_API_KEY" and opts["timeout_s"] == 60.0


def test_gpu_extra_brings_the_training_stack():
    """The GPU configs fine-tune in the loop: `pip install -e '.[gpu]'` must bring TRL/PEFT
    (the train extra) or the first round dies with ModuleNotFoundError."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert "evo[train]" in extras["gpu"] and any(d.startswith("vllm") for d in extras["gpu"])
    for config in ("p3_gpu.yaml", "p3_selfimprove_gpu.yaml"):
        text = (Path(__file__).parents[2] / "experiments" / "configs" / config).read_text()
        assert "pip install -e '.[gpu]'" in text and ".[gpu,train]" not in text

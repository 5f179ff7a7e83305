"""Builds the generator a config names."""

from __future__ import annotations

from typing import Any

from evo.errors import EvoError
from evo.llm.base import LLM


def load_generator(backend: str, model: str, *, adapter: str | None = None, version: int = 0,
                   **options: Any) -> LLM:
    """Returns an :class:`LLM` for ``backend`` ("transformers"; "vllm" on GPU machines)."""
    if backend == "transformers":
        from evo.llm.transformers_backend import TransformersLLM

        return TransformersLLM(model, adapter=adapter, version=version, **options)
    if backend == "vllm":
        try:
            from evo.llm.vllm_backend import VLLMGenerator
        except ImportError as exc:
            raise EvoError(f"backend 'vllm' needs the gpu extra (pip install 'evo[gpu]'): {exc}") from None
        return VLLMGenerator(model, adapter=adapter, version=version, **options)
    if backend == "scripted-stand-in":  # tests and benchmarks of plumbing only
        import importlib

        module, _, attr = model.partition(":")
        try:
            respond = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise EvoError(f"cannot import scripted responder '{model}': {exc}") from None
        from evo.llm.scripted import ScriptedStandInLLM

        return ScriptedStandInLLM(respond, name=model, version=version)
    raise EvoError(f"unknown generator backend '{backend}' (choose transformers or vllm)")

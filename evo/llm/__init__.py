"""LLM backends: one protocol (:class:`LLM`), several engines behind it.

The default is :class:`TransformersLLM` on the embedded SmolLM2-135M-Instruct, which
runs offline on CPU. Any Hugging Face model id or local folder goes through the same
``generator.model`` config key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evo.llm.base import LLM, Generation, SamplingParams, truncate_at_stop
from evo.llm.embedded import EMBEDDED_MODELS, resolve_model_path
from evo.llm.factory import load_generator, resolve_backend
from evo.llm.scripted import ScriptedStandInLLM
from evo.llm.transformers_backend import TransformersLLM

if TYPE_CHECKING:
    from evo.config import CampaignConfig


def load_from_config(config: CampaignConfig, *, adapter: str | None = None, version: int = 0) -> LLM:
    """The campaign's generator, here or on Ray actors: :func:`evo.executor.load_from_config`
    (kept here for its callers; imported late because the executor imports this package's modules)."""
    from evo.executor import load_from_config as load

    return load(config, adapter=adapter, version=version)


__all__ = [
    "EMBEDDED_MODELS",
    "LLM",
    "Generation",
    "SamplingParams",
    "ScriptedStandInLLM",
    "TransformersLLM",
    "load_from_config",
    "load_generator",
    "resolve_backend",
    "resolve_model_path",
    "truncate_at_stop",
]

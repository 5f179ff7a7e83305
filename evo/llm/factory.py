"""Builds the generator a backend name and model name: :func:`load_generator`, and the
constructor options a config gives it. Whether it runs here or on Ray actors is
:mod:`evo.executor`'s choice (``evo.executor.load_from_config``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evo.errors import EvoError
from evo.llm.base import LLM

if TYPE_CHECKING:
    from evo.config import FinetuneConfig, GeneratorConfig

BACKENDS = ("transformers", "ctranslate2", "vllm", "openai", "auto", "scripted-stand-in")


def check_backend(backend: str) -> None:
    """One clear error for a backend name that is not one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise EvoError(f"unknown generator backend '{backend}' (choose one of {', '.join(BACKENDS)})")


def resolve_backend(backend: str) -> str:
    """"auto" -> "vllm" where vLLM can run (its CPU build, or a GPU build with CUDA), else
    "transformers"."""
    if backend != "auto":
        return backend
    from evo.llm.vllm_backend import vllm_available

    return "vllm" if vllm_available() else "transformers"


def load_generator(backend: str, model: str, *, adapter: str | None = None, version: int = 0,
                   **options: Any) -> LLM:
    """Returns an :class:`LLM` for ``backend`` (see :data:`BACKENDS`); ``options`` go to the
    backend's constructor (``batch_size``/``device``; ``base_url``, ``concurrency`` ... for openai)."""
    check_backend(backend)
    backend = resolve_backend(backend)
    if backend == "transformers":
        from evo.llm.transformers_backend import TransformersLLM

        return TransformersLLM(model, adapter=adapter, version=version, **options)
    if backend == "ctranslate2":  # the fast CPU engine (int8); adapters are merged, then converted
        from evo.llm.ctranslate2_backend import CTranslate2LLM

        return CTranslate2LLM(model, adapter=adapter, version=version, **options)
    if backend == "vllm":
        try:
            import vllm  # noqa: F401  (fail here, with the hint, rather than deep inside)

            from evo.llm.vllm_backend import VLLMGenerator
        except ImportError as exc:
            raise EvoError(f"backend 'vllm' needs the gpu extra (pip install 'evo[gpu]'): {exc}") from None
        return VLLMGenerator(model, adapter=adapter, version=version, **options)
    if backend == "openai":
        from evo.llm.openai_backend import OpenAIGenerator

        return OpenAIGenerator(model, adapter=adapter, version=version, **options)
    if backend == "scripted-stand-in":  # tests and benchmarks of plumbing only
        import importlib

        module, _, attr = model.partition(":")
        try:
            respond = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise EvoError(f"cannot import scripted responder '{model}': {exc}") from None
        from evo.llm.scripted import ScriptedStandInLLM

        return ScriptedStandInLLM(respond, name=model, version=version)
    raise AssertionError(f"backend '{backend}' is in BACKENDS but has no constructor here")


SERVER_OPTIONS = ("base_url", "api_key_env", "concurrency", "timeout_s", "max_retries")


def generator_options(g: GeneratorConfig, finetune: FinetuneConfig | None = None) -> dict[str, Any]:
    """The constructor options of the backend ``g`` names (what :func:`load_generator` takes).

    vllm: LoRA (sized to ``finetune.lora_r``) and sleep mode only when ``finetune.every > 0``
    (an engine with LoRA enabled is slower), plus ``g.engine``'s engine options."""
    options: dict[str, Any] = {"batch_size": g.batch_size, "device": g.device, "dtype": g.dtype}
    backend = resolve_backend(g.backend)
    if backend == "openai":
        options.update({k: getattr(g, k) for k in SERVER_OPTIONS})
    if backend == "vllm":
        tunes = finetune is not None and finetune.every > 0
        options.update(engine=dict(g.engine), lora_rank=finetune.lora_r if tunes else None, sleep_mode=tunes,
                       lora_serving=g.lora_serving)
    return options


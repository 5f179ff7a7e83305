"""Generators as Ray actors (the ``distributed`` extra; :func:`evo.executor.load_from_config`
picks it for ``executor.kind: ray`` with ``executor.generators > 0``).

:class:`GeneratorActor` holds one generator (:func:`evo.llm.load_generator`), by default
one per GPU; :class:`RayGenerator` is an :class:`~evo.llm.LLM` that splits a batch over
such actors, with the seeds the single-process backends would use.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from evo.errors import EvoError
from evo.llm.base import Generation, SamplingParams
from evo.raycluster import init_ray, ray_cause


class GeneratorActor:
    """One generator in its own Ray worker (``ray.remote(num_gpus=1)(GeneratorActor)``)."""

    def __init__(self, backend: str, model: str, adapter: str | None = None, version: int = 0,
                 options: dict[str, Any] | None = None) -> None:
        from evo.llm.factory import load_generator

        self._spec = (backend, model, dict(options or {}))
        self.llm = load_generator(backend, model, adapter=_visible(adapter), version=version, **self._spec[2])

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        return self.llm.generate(prompts, params)

    def set_adapter(self, path: str | None, version: int) -> None:
        """Hot-swaps the adapter (vLLM: a new LoRARequest); other backends reload."""
        path = _visible(path)
        if hasattr(self.llm, "set_adapter"):
            self.llm.set_adapter(path, version)
            return
        from evo.llm.factory import load_generator

        backend, model, options = self._spec
        self.llm = None
        self.llm = load_generator(backend, model, adapter=path, version=version, **options)

    def sleep(self) -> None:
        """Frees the engine's GPU memory while a fine-tune round trains (vLLM sleep mode)."""
        if hasattr(self.llm, "sleep"):
            self.llm.sleep()

    def wake_up(self) -> None:
        if hasattr(self.llm, "wake_up"):
            self.llm.wake_up()

    def describe(self) -> dict[str, Any]:
        return {"name": self.llm.name, "version": self.llm.version, "pid": os.getpid()}


def _absolute(path: str | None) -> str | None:
    """An adapter folder as an absolute path (actors run in other directories, on other
    nodes); a name a server serves already (no such folder here) passes through."""
    return str(Path(path).resolve()) if path and Path(path).exists() else path


def _visible(path: str | None) -> str | None:
    """On an actor's node: an absolute adapter path must exist there too."""
    if path and os.path.isabs(path) and not os.path.exists(path):
        raise EvoError(f"adapter {path} is not visible on node {os.uname().nodename}: put the campaign "
                       "directory on storage every Ray node mounts at the same path")
    return path


class RayGenerator:
    """An :class:`~evo.llm.LLM` over ``actors`` :class:`GeneratorActor`\\ s: a batch is cut
    into contiguous slices, one per actor, generated in parallel and joined in order. Slice
    ``k`` starting at prompt ``s`` gets seed ``seed + s * n``, so seeded backends (vllm,
    openai) sample exactly what one process would."""

    def __init__(self, backend: str, model: str, *, actors: int = 1, gpus_per_actor: float = 1.0,
                 cpus_per_actor: float = 0.0, address: str | None = None, num_cpus: int | None = None,
                 adapter: str | None = None, version: int = 0, **options: Any) -> None:
        if actors < 1:
            raise EvoError("RayGenerator needs at least one actor")
        self._ray = ray = init_ray(address, num_cpus)
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus_per_actor * actors > gpus:
            raise EvoError(f"{actors} generator actor(s) x {gpus_per_actor:g} GPU need more GPUs than "
                           f"the Ray cluster has ({gpus:g}); set executor.gpus_per_generator: 0 for CPU")
        cls = ray.remote(num_gpus=gpus_per_actor, num_cpus=cpus_per_actor)(GeneratorActor)
        self.actors = [cls.remote(backend, model, _absolute(adapter), version, options) for _ in range(actors)]
        try:
            info = ray.get([a.describe.remote() for a in self.actors])
        except ray.exceptions.RayError as exc:
            self.close()
            raise EvoError(f"a generator actor failed to start: {ray_cause(exc)}") from None
        self.name = info[0]["name"]
        self.version = version

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        if not prompts:
            return []
        size = math.ceil(len(prompts) / len(self.actors))
        refs = []
        for actor, start in zip(self.actors, range(0, len(prompts), size)):
            seed = None if params.seed is None else params.seed + start * params.n
            part = SamplingParams(**{**params.__dict__, "seed": seed})
            refs.append(actor.generate.remote(prompts[start:start + size], part))
        try:
            return [row for part in self._ray.get(refs) for row in part]
        except self._ray.exceptions.RayError as exc:
            raise EvoError(f"a generator actor failed: {ray_cause(exc)}") from None

    def _all(self, method: str, *args: Any) -> None:
        try:
            self._ray.get([getattr(a, method).remote(*args) for a in self.actors])
        except self._ray.exceptions.RayError as exc:
            raise EvoError(f"a generator actor failed ({method}): {ray_cause(exc)}") from None

    def set_adapter(self, path: str | None, version: int) -> None:
        """Every actor swaps to the adapter (an absolute path: actors live elsewhere)."""
        self._all("set_adapter", _absolute(path), version)
        self.version = version

    def sleep(self) -> None:
        self._all("sleep")

    def wake_up(self) -> None:
        self._all("wake_up")

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []

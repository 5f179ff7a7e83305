"""Where a campaign's work runs: the one place that picks local or Ray (``executor.kind``).

Evaluations: a local :class:`~evo.sandbox.Sandbox` (a pool of warm bwrap workers), or
:class:`~evo.sandbox.ray_sandbox.RaySandbox` (Ray tasks) for ``kind: ray``. The generator:
in this process (:func:`evo.llm.load_generator`), or on Ray actors
(:class:`~evo.llm.ray_generator.RayGenerator`) for ``kind: ray`` with ``generators > 0``.
The Ray modules are imported only when chosen: ``ray`` is an optional extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evo.llm.base import LLM
from evo.llm.factory import generator_options, load_generator

if TYPE_CHECKING:
    from evo.config import CampaignConfig


def open_sandbox(config: CampaignConfig) -> Any:
    """The campaign's evaluator: a ``Sandbox``, or a ``RaySandbox`` (the same interface)."""
    if config.executor.kind == "ray":  # evaluations as Ray tasks (evo[distributed])
        from evo.sandbox.ray_sandbox import RaySandbox

        ex = config.executor
        return RaySandbox(config.sandbox, address=ex.address, num_cpus=ex.num_cpus)
    from evo.sandbox import Sandbox

    return Sandbox(config.sandbox)


def load_from_config(config: CampaignConfig, *, adapter: str | None = None, version: int = 0) -> LLM:
    """The campaign's generator: in this process, or on Ray actors when
    ``executor.kind: ray`` with ``executor.generators > 0``."""
    g, ex = config.generator, config.executor
    if ex.kind == "ray" and ex.generators > 0:
        from evo.llm.ray_generator import RayGenerator

        return RayGenerator(g.backend, g.model, actors=ex.generators, gpus_per_actor=ex.gpus_per_generator,
                            address=ex.address, num_cpus=ex.num_cpus, adapter=adapter, version=version,
                            **generator_options(g, config.finetune))
    return load_generator(g.backend, g.model, adapter=adapter, version=version,
                          **generator_options(g, config.finetune))

"""Moved (issue 34): the sandbox half to :mod:`evo.sandbox.ray_sandbox`, the generator half to
:mod:`evo.llm.ray_generator`, ``init_ray``/``ray_cause`` to :mod:`evo.raycluster`."""

from evo._moved import merged

merged(__name__, "evo.raycluster", "evo.sandbox.ray_sandbox", "evo.llm.ray_generator")

"""Connecting to Ray (the ``distributed`` extra), shared by the Ray sandbox
(:mod:`evo.sandbox.ray_sandbox`) and the Ray generator (:mod:`evo.llm.ray_generator`).

:func:`init_ray` connects: ``executor.address`` names a cluster ("auto", "ray://head:10001");
None starts (or joins) a Ray instance on this machine, as ``ray.init()`` does.
"""

from __future__ import annotations

import re
from typing import Any

from evo.errors import EvoError


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise EvoError(f"executor 'ray' needs the distributed extra (pip install 'evo[distributed]'): {exc}") from None
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Connects to the Ray cluster at ``address``, or starts a local instance (``num_cpus``
    caps it); a no-op when this process is connected already. Returns the ``ray`` module."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    try:
        # log_to_driver on: a generator actor's engine logs its root cause (CUDA out of
        # memory ...) to its own stderr; the exception that reaches us only says "see above".
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise EvoError(f"cannot connect to {where}: {str(exc).splitlines()[0]}") from None
    return ray


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRACEBACK_LAST = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?(\w*(?:Error|Exception)): (.*)$")


def ray_cause(exc: BaseException) -> str:
    """The message of the exception behind a Ray error, in one line. ``RayTaskError`` carries
    it as ``cause``; an actor that died in ``__init__`` raises ``ActorDiedError``, which
    keeps only the text of the creation task's traceback, so its last line is the cause."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not hasattr(cause, "cause"):
        text = str(cause) or type(cause).__name__
    else:
        lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
        text = lines[-1] if lines else type(exc).__name__
        match = _TRACEBACK_LAST.match(text)
        if match:
            text = match.group(2) if match.group(1) == "EvoError" else f"{match.group(1)}: {match.group(2)}"
    return text.splitlines()[0] if text.strip() else type(exc).__name__

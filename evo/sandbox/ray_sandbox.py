"""Evaluations as Ray tasks (the ``distributed`` extra; :func:`evo.executor.open_sandbox`
picks it for ``executor.kind: ray``).

:class:`RaySandbox` has the interface of :class:`evo.sandbox.Sandbox` (``run``,
``run_many``, ``close``, a context manager). ``run_many`` cuts the jobs into a few chunks
per cluster CPU and runs each chunk as a Ray task (1 CPU) in whichever worker process Ray
picks; every worker process keeps one warm, one-worker local ``Sandbox`` (bwrap where the
node has it) for as long as it lives. Verdicts come back in input order. Ray does the
scheduling, transport and fault handling; there is no RPC or job queue of our own.

Every node needs this package installed (the same version) and, for bwrap isolation,
bubblewrap; nodes decide their own isolation (``isolation`` overrides it everywhere).
"""

from __future__ import annotations

import json
import math
import os
import threading
from typing import Any

from evo.errors import EvoError
from evo.raycluster import init_ray, ray_cause
from evo.sandbox.batch import run_batch
from evo.sandbox.limits import SandboxLimits
from evo.sandbox.sandbox import ISOLATION_ENV, Sandbox
from evo.sandbox.verdict import Verdict

CHUNKS_PER_CPU = 2  # run_many: tasks per cluster CPU (balances a slow chunk against overhead)

_local: dict[str, Sandbox] = {}
_local_lock = threading.Lock()


def _local_sandbox(limits: dict[str, Any], isolation: str | None) -> Sandbox:
    """This worker process's sandbox for these limits (one warm isolated worker)."""
    key = json.dumps([limits, isolation], sort_keys=True)
    with _local_lock:
        sandbox = _local.get(key)
        if sandbox is None:
            sandbox = _local[key] = Sandbox(SandboxLimits(**{**limits, "workers": 1}), isolation=isolation)
        return sandbox


def _evaluate_chunk(limits: dict[str, Any], isolation: str | None, jobs: list[dict]) -> list[Verdict]:
    return run_batch(_local_sandbox(limits, isolation)._pool, jobs)


def _isolation_of(limits: dict[str, Any], isolation: str | None) -> str:
    return _local_sandbox(limits, isolation).isolation


class RaySandbox:
    """:class:`evo.sandbox.Sandbox`'s interface, with every evaluation a Ray task."""

    def __init__(self, limits: SandboxLimits | None = None, *, isolation: str | None = None,
                 address: str | None = None, num_cpus: int | None = None, chunks_per_cpu: int = CHUNKS_PER_CPU) -> None:
        self.limits = limits or SandboxLimits()
        self._isolation = isolation or os.environ.get(ISOLATION_ENV) or None
        self._ray = init_ray(address, num_cpus)
        self._task = self._ray.remote(num_cpus=1, max_retries=0)(_evaluate_chunk)
        self._chunks_per_cpu = max(1, chunks_per_cpu)
        self._limits = self.limits.model_dump()
        self._closed = False

    @property
    def isolation(self) -> str:
        """The mechanism a worker node uses ("bwrap" or "rlimits"; asked of one node)."""
        probe = self._ray.remote(num_cpus=1)(_isolation_of)
        return self._ray.get(probe.remote(self._limits, self._isolation))

    def _job(self, source: str, expr: str | None, **options: Any) -> dict:
        return Sandbox._job(self, source, expr, **options)  # type: ignore[arg-type]  # same job format

    def run(self, source: str, expr: str | None = None, *, timeout_s: float | None = None,
            memory_mb: int | None = None) -> Verdict:
        """Sandbox.run, as one Ray task."""
        return self._submit([self._job(source, expr, timeout_s=timeout_s, memory_mb=memory_mb)], 1)[0]

    def run_many(self, jobs: list[tuple[str, str | None]], *, timeout_s: float | None = None) -> list[Verdict]:
        """Sandbox.run_many across the cluster: verdicts in input order (``timeout_s`` as there)."""
        if not jobs:
            return []
        cpus = max(1, int(self._ray.cluster_resources().get("CPU", 1)))
        return self._submit([self._job(source, expr, timeout_s=timeout_s) for source, expr in jobs],
                            math.ceil(len(jobs) / (cpus * self._chunks_per_cpu)))

    def _submit(self, jobs: list[dict], chunk: int) -> list[Verdict]:
        if self._closed:
            raise RuntimeError("the sandbox is closed")
        refs = [self._task.remote(self._limits, self._isolation, jobs[i:i + chunk])
                for i in range(0, len(jobs), chunk)]
        try:
            return [v for part in self._ray.get(refs) for v in part]
        except self._ray.exceptions.RayError as exc:
            raise EvoError(f"a Ray evaluation task failed: {ray_cause(exc)}") from None

    def close(self) -> None:
        """Stops using the cluster (the worker processes keep their sandboxes until Ray ends)."""
        self._closed = True

    def __enter__(self) -> RaySandbox:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

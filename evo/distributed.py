"""Scale-out on Ray (the ``distributed`` extra): sandboxed evaluations as Ray tasks,
generators as Ray actors. Ray does the scheduling, transport and fault handling; there is
no RPC or job queue of our own.

* :class:`RaySandbox` has the interface of :class:`evo.sandbox.Sandbox` (``run``,
  ``run_many``, ``close``, a context manager). ``run_many`` cuts the jobs into a few
  chunks per cluster CPU and runs each chunk as a Ray task (1 CPU) in whichever worker
  process Ray picks; every worker process keeps one warm, one-worker local ``Sandbox``
  (bwrap where the node has it) for as long as it lives. Verdicts come back in input order.
* :class:`GeneratorActor` holds one generator (:func:`evo.llm.load_generator`), by default
  one per GPU; :class:`RayGenerator` is an :class:`~evo.llm.LLM` that splits a batch over
  such actors, with the seeds the single-process backends would use.
* :func:`init_ray` connects: ``executor.address`` names a cluster ("auto", "ray://head:10001");
  None starts (or joins) a Ray instance on this machine, as ``ray.init()`` does.

Every node needs this package installed (the same version) and, for bwrap isolation,
bubblewrap; nodes decide their own isolation (``isolation`` overrides it everywhere).
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evo.errors import EvoError
from evo.sandbox import Sandbox, SandboxLimits, Verdict
from evo.sandbox.batch import run_batch
from evo.sandbox.sandbox import ISOLATION_ENV

if TYPE_CHECKING:  # evo.llm imports torch: evaluation workers never need it
    from evo.llm.base import Generation, SamplingParams

CHUNKS_PER_CPU = 2  # run_many: tasks per cluster CPU (balances a slow chunk against overhead)


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


# -- evaluations --------------------------------------------------------------------------
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
    return run_batch(_local_sandbox(limits, isolation), jobs)


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


# -- generation ---------------------------------------------------------------------------
class GeneratorActor:
    """One generator in its own Ray worker (``ray.remote(num_gpus=1)(GeneratorActor)``)."""

    def __init__(self, backend: str, model: str, adapter: str | None = None, version: int = 0,
                 options: dict[str, Any] | None = None) -> None:
        from evo.llm import load_generator

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
        from evo.llm import load_generator

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
        from evo.llm.base import SamplingParams

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

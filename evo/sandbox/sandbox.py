"""The Sandbox: a pool of warm isolated workers that evaluates untrusted code."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import warnings
import weakref
from pathlib import Path

from evo.sandbox import bwrap, pool
from evo.sandbox.batch import run_batch
from evo.sandbox.limits import SandboxLimits
from evo.sandbox.verdict import Verdict

log = logging.getLogger("evo.sandbox")
ISOLATION_ENV = "EVO_SANDBOX_ISOLATION"  # "bwrap", "rlimits" or "auto" (default)
GRACE_S = 3.0  # beyond timeout_s, how long the caller waits for a worker before replacing it
_warned: set[str] = set()
_warn_lock = threading.Lock()


def _warn_once(message: str) -> None:
    with _warn_lock:
        if message in _warned:
            return
        _warned.add(message)
    log.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _choose_isolation(requested: str | None) -> str:
    requested = (requested or os.environ.get(ISOLATION_ENV) or "auto").strip().lower()
    if requested not in ("auto", "bwrap", "rlimits"):
        raise ValueError(f"unknown sandbox isolation {requested!r} (auto, bwrap or rlimits)")
    if requested == "rlimits":
        _warn_once(
            "evo sandbox: bwrap isolation is switched off; generated code runs under "
            "rlimits and a scrubbed environment only (weaker: the file system and, "
            "without root, the network and other processes are reachable)"
        )
        return "rlimits"
    problem = bwrap.bwrap_problem()
    if problem is None:
        return "bwrap"
    if requested == "bwrap":
        raise RuntimeError(f"bwrap isolation requested but unavailable: {problem}")
    _warn_once(
        f"evo sandbox: NO NAMESPACE ISOLATION ({problem}); generated code runs under "
        "rlimits and a scrubbed environment only. Install bubblewrap and run as root."
    )
    return "rlimits"


def _shutdown(slots: list) -> None:
    for worker in slots:
        if worker is not None:
            worker.close()


class Sandbox:
    """Evaluates untrusted Python source in warm, isolated, forked workers.

    Thread-safe: concurrent `run` calls each take a free worker (blocking until one is).
    `isolation` ("auto", "bwrap" or "rlimits") overrides $EVO_SANDBOX_ISOLATION.
    """

    def __init__(self, limits: SandboxLimits | None = None, *, isolation: str | None = None):
        self.limits = limits or SandboxLimits()
        self._mode = _choose_isolation(isolation)
        if self._mode == "bwrap" or (os.geteuid() == 0 and bwrap.python_readable_by_others()):
            self._drop_uid = True
        else:
            self._drop_uid = False
            _warn_once(
                "evo sandbox: evaluations keep the caller's uid (no root, or the "
                "interpreter is unreadable to other users): the process limit and "
                "file permissions do not contain them"
            )
        self._scratch_bytes = max(16 * self.limits.max_file_bytes, 16 << 20)
        self._slots: list[pool.WorkerProcess | None] = [None] * self.limits.workers
        self._free: queue.Queue[int] = queue.Queue()
        self._closed = False
        for slot in range(self.limits.workers):
            self._slots[slot] = self._new_worker()
            self._free.put(slot)
        self._finalizer = weakref.finalize(self, _shutdown, self._slots)

    @property
    def isolation(self) -> str:
        """The mechanism in use: "bwrap" (namespaces, rlimits, private uid) or "rlimits"."""
        return self._mode

    def _new_worker(self) -> pool.WorkerProcess:
        uid = pool.new_uid() if self._drop_uid else -1
        return pool.WorkerProcess(self._mode, uid, self._scratch_bytes)

    def run(
        self,
        source: str,
        expr: str | None = None,
        *,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
    ) -> Verdict:
        """exec `source` in a fresh module namespace inside an isolated forked child; if
        `expr` is given, evaluate it in that namespace afterwards and return its JSON value
        in Verdict.value. status "ok" iff the code ran to the end AND the result was
        delivered through the private channel (not stdout, not the exit code)."""
        return self._run(source, expr, timeout_s=timeout_s, memory_mb=memory_mb)

    def _job(
        self,
        source: str,
        expr: str | None,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        filename: str | None = None,
    ) -> dict:
        limits = self.limits
        timeout = float(timeout_s if timeout_s is not None else limits.timeout_s)
        memory = int(memory_mb if memory_mb is not None else limits.memory_mb)
        if timeout <= 0 or memory <= 0:
            raise ValueError("timeout_s and memory_mb must be > 0")
        return {
            "source": source,
            "expr": expr,
            "filename": filename,
            "timeout_s": timeout,
            "memory_mb": memory,
            "max_procs": limits.max_procs,
            "max_output_bytes": limits.max_output_bytes,
            "max_file_bytes": limits.max_file_bytes,
        }

    def _checkout(self, block: bool = True) -> int | None:
        """Take a free pool slot (None if `block` is false and none is free)."""
        if self._closed:
            raise RuntimeError("the sandbox is closed")
        try:
            return self._free.get(block)
        except queue.Empty:
            return None

    def _checkin(self, slot: int) -> None:
        self._free.put(slot)

    def _worker(self, slot: int) -> pool.WorkerProcess:
        """The slot's worker, started afresh if it is missing or dead."""
        worker = self._slots[slot]
        if worker is None or not worker.alive:
            if worker is not None:
                worker.discard()
            worker = self._slots[slot] = self._new_worker()
        return worker

    def _lost(self, slot: int, exc: pool.WorkerLost, start: float) -> Verdict:
        """The slot's worker was killed: replace it; the verdict of its evaluation."""
        log.warning("evo sandbox: %s", exc.error)
        if self._slots[slot] is not None:
            self._slots[slot].discard()
        self._slots[slot] = None if self._closed else self._new_worker()
        return Verdict(
            status=exc.status,
            returncode=None,
            stdout="",
            stderr="",
            duration_s=time.monotonic() - start,
            error=exc.error,
        )

    def _run(self, source: str, expr: str | None = None, **options) -> Verdict:
        job = self._job(source, expr, **options)
        slot = self._checkout()
        start = time.monotonic()
        try:
            try:
                reply = self._worker(slot).request(job, job["timeout_s"] + GRACE_S)
            except pool.WorkerLost as exc:
                return self._lost(slot, exc, start)
            return Verdict(**reply)
        finally:
            self._checkin(slot)

    def run_many(self, jobs: list[tuple[str, str | None]]) -> list[Verdict]:
        """evaluate jobs in parallel across the warm workers, results in input order."""
        return run_batch(self, [self._job(source, expr) for source, expr in jobs])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def run_file(path: str | Path, limits: SandboxLimits | None = None) -> Verdict:
    """Run a Python file in a one-worker sandbox (for `evo sandbox FILE.py`)."""
    path = Path(path)
    source = path.read_text(encoding="utf-8")
    limits = (limits or SandboxLimits()).model_copy(update={"workers": 1})
    with Sandbox(limits) as sandbox:
        return sandbox._run(source, filename=str(path))

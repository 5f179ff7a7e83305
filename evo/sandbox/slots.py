"""Slots: the sandbox's warm workers and the queue of free ones.

Kept apart from `Sandbox` so that `run_batch` (batch.py) drives the same slots through
a public surface instead of reaching into the Sandbox's private methods (which made
sandbox.py and batch.py import each other).
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable

from evo.sandbox import pool
from evo.sandbox.verdict import Verdict

log = logging.getLogger("evo.sandbox")
GRACE_S = 3.0  # beyond timeout_s, how long the caller waits for a worker before replacing it


class Slots:
    """A fixed number of worker slots; each holds a live worker or None (to be started)."""

    def __init__(self, new_worker: Callable[[], pool.WorkerProcess], count: int):
        self._new_worker = new_worker
        self.workers: list[pool.WorkerProcess | None] = [None] * count
        self._free: queue.Queue[int] = queue.Queue()
        self.closed = False
        for slot in range(count):
            self.workers[slot] = new_worker()
            self._free.put(slot)

    def checkout(self, block: bool = True) -> int | None:
        """Take a free pool slot (None if `block` is false and none is free)."""
        if self.closed:
            raise RuntimeError("the sandbox is closed")
        try:
            return self._free.get(block)
        except queue.Empty:
            return None

    def checkin(self, slot: int) -> None:
        self._free.put(slot)

    def worker(self, slot: int) -> pool.WorkerProcess:
        """The slot's worker, started afresh if it is missing or dead."""
        worker = self.workers[slot]
        if worker is None or not worker.alive:
            if worker is not None:
                worker.discard()
            worker = self.workers[slot] = self._new_worker()
        return worker

    def lost(self, slot: int, exc: pool.WorkerLost, start: float) -> Verdict:
        """The slot's worker was killed: replace it; the verdict of its evaluation."""
        log.warning("evo sandbox: %s", exc.error)
        if self.workers[slot] is not None:
            self.workers[slot].discard()
        self.workers[slot] = None if self.closed else self._new_worker()
        return Verdict(
            status=exc.status,
            returncode=None,
            stdout="",
            stderr="",
            duration_s=time.monotonic() - start,
            error=exc.error,
        )


def shutdown(workers: list) -> None:
    for worker in workers:
        if worker is not None:
            worker.close()

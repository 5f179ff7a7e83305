"""run_many: one thread drives every free worker, with up to two jobs queued on each.

Queueing the next job on a worker before its current one finishes keeps the worker
busy while the caller decodes a reply; one thread instead of one per worker spares the
GIL hand-offs. A worker that dies or stops answering is replaced; its current job gets
the "killed"/"timeout" verdict and the job queued behind it is run again elsewhere.
"""

from __future__ import annotations

import select
import time
from collections import deque

from evo.sandbox import pool
from evo.sandbox.slots import GRACE_S, Slots
from evo.sandbox.verdict import Verdict

DEPTH = 2  # jobs queued on one worker at once
SMALL_JOB = 16 << 10  # larger jobs are not queued behind another (no pipe deadlock)


class _Lane:
    """One checked-out slot: its worker and the jobs sent to it (first = running)."""

    def __init__(self, slot: int, worker: pool.WorkerProcess):
        self.slot, self.worker = slot, worker
        self.sent: deque[int] = deque()
        self.deadline = 0.0  # for the running job
        self.started = 0.0


def run_batch(slots: Slots, jobs: list[dict]) -> list[Verdict]:
    """Run the jobs (dicts as `Sandbox._job` builds them) on `slots`, results in input order."""
    results: list[Verdict | None] = [None] * len(jobs)
    pending = deque(range(len(jobs)))
    if not jobs:
        return []
    lanes: dict[int, _Lane] = {}

    def grab(block: bool) -> None:
        while len(lanes) < len(pending) + sum(len(la.sent) for la in lanes.values()):
            slot = slots.checkout(block)
            if slot is None:
                return
            lanes[slot] = _Lane(slot, None)  # type: ignore[arg-type]
            try:
                lanes[slot].worker = slots.worker(slot)
            except BaseException:
                del lanes[slot]
                slots.checkin(slot)
                raise
            block = False

    def lose(lane: _Lane, exc: pool.WorkerLost) -> None:
        index = lane.sent.popleft()
        results[index] = slots.lost(lane.slot, exc, lane.started)
        pending.extendleft(reversed(lane.sent))  # never started: run them again
        lane.sent.clear()
        lane.worker = slots.worker(lane.slot)

    def feed(lane: _Lane) -> None:
        while pending and len(lane.sent) < DEPTH:
            job = jobs[pending[0]]
            if lane.sent and len(job["source"]) + len(job["expr"] or "") > SMALL_JOB:
                return
            try:
                lane.worker.send(job)
            except pool.WorkerLost as exc:
                lane.sent.append(pending.popleft())
                lane.started = time.monotonic()
                lose(lane, exc)
                continue
            if not lane.sent:
                lane.started = time.monotonic()
                lane.deadline = lane.started + job["timeout_s"] + GRACE_S
            lane.sent.append(pending.popleft())

    try:
        grab(block=True)
        while pending or any(lane.sent for lane in lanes.values()):
            if pending:
                grab(block=False)
            for lane in lanes.values():
                feed(lane)
            busy = {lane.worker.fileno(): lane for lane in lanes.values() if lane.sent}
            if not busy:
                continue
            wait = max(0.0, min(lane.deadline for lane in busy.values()) - time.monotonic())
            readable, _, _ = select.select(list(busy), [], [], wait)
            for fd in readable:
                lane = busy[fd]
                try:
                    frames = lane.worker.read_frames()
                except pool.WorkerLost as exc:
                    lose(lane, exc)
                    continue
                for frame in frames:
                    results[lane.sent.popleft()] = Verdict(**frame)
                    lane.started = time.monotonic()
                    if lane.sent:
                        timeout = jobs[lane.sent[0]]["timeout_s"]
                        lane.deadline = lane.started + timeout + GRACE_S
            now = time.monotonic()
            for lane in busy.values():
                if lane.sent and now > lane.deadline:
                    lose(lane, pool.WorkerLost("timeout", "the worker did not answer in time"))
    finally:
        for slot in lanes:
            slots.checkin(slot)
    return results  # type: ignore[return-value]

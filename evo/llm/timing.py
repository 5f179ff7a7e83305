"""Accounting wrappers: how long the generator was busy, so reports can say where time went."""

from __future__ import annotations

import threading
import time

from evo.llm.base import LLM, Generation, SamplingParams


class TimedLLM:
    """An :class:`LLM` that sums the wall time spent inside ``generate``. Calls from several
    threads (the async pipeline) take turns: one model, one batch at a time."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self._since = threading.local()  # per thread: seconds since its last take_seconds()
        self.busy_s = 0.0  # since creation, all threads
        self.tokens = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.llm.name

    @property
    def version(self) -> int:
        return self.llm.version

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        with self._lock:  # waiting for the other thread's batch is not busy time
            t = time.time()
            out = self.llm.generate(prompts, params)
            dt = time.time() - t
            self._since.seconds = getattr(self._since, "seconds", 0.0) + dt
            self.busy_s += dt
            n = sum(g.num_tokens for row in out for g in row)
            self._since.tokens = getattr(self._since, "tokens", 0) + n
            self.tokens += n
        return out

    def take_seconds(self) -> float:
        """Seconds this thread spent generating since its last call (and resets them):
        in the async pipeline the proposals' thread and the evaluation's are apart."""
        s, self._since.seconds = getattr(self._since, "seconds", 0.0), 0.0
        return s

    def take_tokens(self) -> int:
        """Tokens this thread generated since its last call (and resets them): what a batch's
        solve attempts cost, so that arms compare at equal generated tokens."""
        n, self._since.tokens = getattr(self._since, "tokens", 0), 0
        return n

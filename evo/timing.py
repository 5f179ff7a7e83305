"""Accounting wrappers: how long the generator was busy, so reports can say where time went."""

from __future__ import annotations

import time

from evo.llm.base import LLM, Generation, SamplingParams


class TimedLLM:
    """An :class:`LLM` that sums the wall time spent inside ``generate``."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.seconds = 0.0
        self.tokens = 0

    @property
    def name(self) -> str:
        return self.llm.name

    @property
    def version(self) -> int:
        return self.llm.version

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        t = time.time()
        out = self.llm.generate(prompts, params)
        self.seconds += time.time() - t
        self.tokens += sum(g.num_tokens for row in out for g in row)
        return out

    def take_seconds(self) -> float:
        """Seconds since the last call (and resets the counter)."""
        s, self.seconds = self.seconds, 0.0
        return s

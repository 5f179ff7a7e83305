"""A scripted stand-in for an LLM, for tests about speed, scale and plumbing only.

It returns what a Python function says; the real model path is exercised elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

from evo.llm.base import Generation, SamplingParams, truncate_at_stop


class ScriptedStandInLLM:
    """Answers each prompt with ``respond(prompt, sample_index)``; counts words as tokens."""

    def __init__(self, respond: Callable[[str, int], str], name: str = "scripted-stand-in",
                 version: int = 0) -> None:
        self.respond = respond
        self.name = name
        self.version = version
        self.calls = 0

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        self.calls += 1
        out = []
        for prompt in prompts:
            row = []
            for j in range(params.n):
                text, _ = truncate_at_stop(self.respond(prompt, j), params.stop)
                row.append(Generation(text=text, num_tokens=len(text.split())))
            out.append(row)
        return out

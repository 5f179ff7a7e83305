"""The generator protocol every LLM backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass
class SamplingParams:
    """How to sample: ``n`` completions per prompt, cut at the first stop string."""

    n: int = 1
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 160
    stop: list[str] = field(default_factory=list)
    seed: int | None = None


@dataclass
class Generation:
    """One completion: its text (stop string excluded) and the tokens it cost."""

    text: str
    num_tokens: int


@runtime_checkable
class LLM(Protocol):
    """Generates a batch: ``result[i][j]`` is the j-th sample for ``prompts[i]``."""

    name: str
    version: int

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]: ...


def truncate_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cuts ``text`` at the earliest stop string; says whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)

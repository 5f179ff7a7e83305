"""Training examples for self-improvement: the archive's elites as prompt -> completion pairs.

Two kinds of example per item, in the exact text format the generator sees at run time
(the campaign prompts the model with raw text, not a chat template, so training on the
same format is what moves its behaviour in the loop):

- ``generate``: a few-shot puzzle prompt (the domain's preamble, example items and
  ``open_prefix``) -> the elite, rendered as the campaign parses it;
- ``solve`` (domains with ``solve_prompt``, e.g. P3): the puzzle as the solve prompt used for
  difficulty scoring -> its verified solution.

Anchors against collapse: examples accumulate across rounds (``accumulate``), and a fixed
share of real seed examples (``seed_share``) is mixed into every round. Every example set
has a content hash, recorded with the adapter trained on it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evo.domain import Domain

CountTokens = Callable[[str], int]


@dataclass
class Example:
    """One SFT example (TRL prompt-completion format) and where it came from."""

    prompt: str
    completion: str
    kind: str  # generate / solve
    source: str  # archive / seed / control
    key: str  # the item's normalised key (dedup across rounds)
    candidate_id: int | None = None
    round: int | None = None  # the round whose data first held it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _approx_tokens(text: str) -> int:
    return len(text) // 3 + 1


def solve_shots(domain: Domain) -> list[dict[str, Any]]:
    """The worked examples in a solve prompt: the shortest seeds, as the domain's scorer uses."""
    k = getattr(domain, "solve_shots", 2)
    return sorted(domain.seeds(), key=lambda s: len(s.get("f", "")) + len(s.get("g", "")))[:k]


def generate_example(domain: Domain, item: dict[str, Any], shots: list[dict[str, Any]],
                     max_length: int, count: CountTokens = _approx_tokens, **meta: Any) -> Example | None:
    """A few-shot generation prompt -> ``item``; drops shots until it fits ``max_length``."""
    text = domain.render(item).rstrip()
    if not text.startswith(domain.open_prefix):
        return None  # e.g. a puzzle that starts with imports: not what the prompt's prefix allows
    completion = text[len(domain.open_prefix):]
    for k in range(len(shots), -1, -1):
        prompt = domain.preamble + "".join(domain.render(s) for s in shots[:k]) + domain.open_prefix
        if count(prompt + completion) <= max_length:
            return Example(prompt, completion, "generate", key=domain.key(item), **meta)
    return None


def solve_example(domain: Domain, item: dict[str, Any], shots: list[dict[str, Any]],
                  max_length: int, count: CountTokens = _approx_tokens, **meta: Any) -> Example | None:
    """The solve prompt of ``item`` -> its verified solution (domains with ``solve_prompt``)."""
    solve_prompt = getattr(domain, "solve_prompt", None)
    g = item.get("g", "")
    if solve_prompt is None or not g.startswith("def g("):
        return None
    shots = [s for s in shots if domain.key(s) != domain.key(item)]
    completion = g[len("def g("):] + "\n\nassert f(g())\n```"
    for k in range(len(shots), -1, -1):
        prompt = solve_prompt(item, shots[:k])
        if count(prompt + completion) <= max_length:
            return Example(prompt, completion, "solve", key=domain.key(item), **meta)
    return None


def item_examples(domain: Domain, items: Iterable[tuple[int | None, dict[str, Any]]], source: str, *,
                  seeds: list[dict[str, Any]], n_shots: int, solve: bool, max_length: int,
                  rng: np.random.Generator, count: CountTokens = _approx_tokens,
                  round: int | None = None) -> list[Example]:
    """Generation (and solve) examples for ``(candidate id, item)`` pairs, in order."""
    shots_for_solve = solve_shots(domain) if solve else []
    out: list[Example] = []
    for cid, item in items:
        key = domain.key(item)
        pool = [s for s in seeds if domain.key(s) != key]
        picks = rng.choice(len(pool), size=min(n_shots, len(pool)), replace=False) if pool else []
        meta = {"source": source, "candidate_id": cid, "round": round}
        ex = generate_example(domain, item, [pool[i] for i in picks], max_length, count, **meta)
        if ex is not None:
            out.append(ex)
        if solve:
            ex = solve_example(domain, item, shots_for_solve, max_length, count, **meta)
            if ex is not None:
                out.append(ex)
    return out


def merge_rounds(previous: list[Example], current: list[Example]) -> list[Example]:
    """Accumulation: earlier rounds' examples plus the current ones not already there
    (same kind and item key); earlier entries win, so data only ever grows."""
    seen = {(e.kind, e.key) for e in previous}
    return previous + [e for e in current if (e.kind, e.key) not in seen]


def mix_with_seeds(examples: list[Example], seed_examples: list[Example], seed_share: float,
                   rng: np.random.Generator) -> list[Example]:
    """Adds seed examples so that they are ``seed_share`` of the result (at least; rounded
    up), drawing without replacement while the pool lasts, then with replacement."""
    if seed_share <= 0 or not seed_examples or not examples:
        return list(examples)  # an anchor is a share of a mix, not training data on its own
    n = len(examples)
    need = math.ceil(seed_share * n / (1 - seed_share))
    order = list(rng.permutation(len(seed_examples)))
    while len(order) < need:
        order += list(rng.permutation(len(seed_examples)))
    return list(examples) + [seed_examples[i] for i in order[:need]]


def shares(examples: list[Example]) -> dict[str, Any]:
    """Counts and shares per source and kind (what a round records about its mix)."""
    n = len(examples)
    by_source: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for e in examples:
        by_source[e.source] = by_source.get(e.source, 0) + 1
        by_kind[e.kind] = by_kind.get(e.kind, 0) + 1
    return {"n": n, "sources": by_source, "kinds": by_kind,
            "seed_share": by_source.get("seed", 0) / n if n else 0.0}


def data_hash(examples: list[Example]) -> str:
    """sha256 over the prompt/completion pairs, in training order."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.prompt, e.completion], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def write_examples(path: Path, examples: list[Example]) -> None:
    path.write_text("".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in examples))


def read_examples(path: Path) -> list[Example]:
    if not path.is_file():
        return []
    return [Example(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]

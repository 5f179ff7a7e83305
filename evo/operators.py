"""Mutation operators: how a prompt is built from parents, so that the LLM writes a child.

- ``lmx``: language-model crossover: k parent elites as few-shot examples, the
  model continues with a new item (Meyerson et al., LMX).
- ``mutation``: one parent and an instruction to rewrite it (harder, another topic...).
- ``scratch``: few-shot from random seeds, ignoring the archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evo.domain import Domain

Parent = tuple[int, dict[str, Any]]  # (candidate id, item)
OPERATORS = ("lmx", "mutation", "scratch")


@dataclass
class Prompt:
    text: str
    operator: str
    parents: list[int]


def lmx(domain: Domain, parents: list[Parent]) -> Prompt:
    shots = "".join(domain.render(item) for _, item in parents)
    return Prompt(domain.preamble + shots + domain.open_prefix, "lmx", [i for i, _ in parents])


def mutation(domain: Domain, parent: Parent, instruction: str) -> Prompt:
    text = (f"{domain.preamble}{domain.render(parent[1])}"
            f"# Below: {instruction}.\n{domain.open_prefix}")
    return Prompt(text, "mutation", [parent[0]])


def scratch(domain: Domain, seeds: list[Parent]) -> Prompt:
    return Prompt(lmx(domain, seeds).text, "scratch", [i for i, _ in seeds])


def build_prompts(domain: Domain, n: int, weights: dict[str, float], k: int,
                  sample_elites, seeds: list[Parent], rng: np.random.Generator) -> list[Prompt]:
    """Builds ``n`` prompts, picking an operator per prompt by ``weights``.

    ``sample_elites(m, rng)`` returns m (id, item) elites; while the archive is empty
    every operator falls back to seeds.
    """
    names = [o for o in OPERATORS if weights.get(o, 0) > 0]
    p = np.array([weights[o] for o in names], dtype=float)
    prompts = []
    for op in rng.choice(names, size=n, p=p / p.sum()):
        elites = sample_elites(k, rng) or [seeds[i] for i in rng.integers(0, len(seeds), k)]
        if op == "lmx":
            prompts.append(lmx(domain, _unique(elites)))
        elif op == "mutation":
            instruction = domain.mutation_instructions[rng.integers(len(domain.mutation_instructions))]
            prompts.append(mutation(domain, elites[0], instruction))
        else:
            picks = rng.choice(len(seeds), size=min(k, len(seeds)), replace=False)
            prompts.append(scratch(domain, [seeds[i] for i in picks]))
    return prompts


def _unique(parents: list[Parent]) -> list[Parent]:
    seen: dict[int, Parent] = {}
    for p in parents:
        seen.setdefault(p[0], p)
    return list(seen.values())

"""Mutation operators: how a prompt is built from parents, so that the LLM writes a child.

- ``lmx``: language-model crossover: k parent elites as few-shot examples, the
  model continues with a new item (Meyerson et al., LMX).
- ``mutation``: one parent and an instruction to rewrite it (harder, another topic...).
- ``scratch``: few-shot from random seeds, ignoring the archive.
- ``continuation``: the first part of one parent kept verbatim (cut at a random share of
  its text), after k-1 parents as few-shot examples; the model writes the rest. A small
  model writes its typical item whatever the parents show (``experiments/heredity.py``
  measured children keeping 0.06 of their parents' place under ``lmx``), so parent
  selection has little to act on; a verbatim stem makes children inherit their place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import numpy as np

from evo.config import OperatorName
from evo.domain import Domain

Parent = tuple[int, dict[str, Any]]  # (candidate id, item)
OPERATORS: tuple[str, ...] = get_args(OperatorName)  # the config accepts exactly these names
STEM_SHARE = (0.3, 0.7)  # continuation: the share of the parent's text kept, drawn uniformly


@dataclass
class Prompt:
    text: str
    operator: str
    parents: list[int]
    stem: str = ""  # text the prompt ends with after ``open_prefix``: the child starts with it


def lmx(domain: Domain, parents: list[Parent]) -> Prompt:
    shots = "".join(domain.render(item) for _, item in parents)
    return Prompt(domain.preamble + shots + domain.open_prefix, "lmx", [i for i, _ in parents])


def mutation(domain: Domain, parent: Parent, instruction: str) -> Prompt:
    text = (f"{domain.preamble}{domain.render(parent[1])}"
            f"# Below: {instruction}.\n{domain.open_prefix}")
    return Prompt(text, "mutation", [parent[0]])


def scratch(domain: Domain, seeds: list[Parent]) -> Prompt:
    return Prompt(lmx(domain, seeds).text, "scratch", [i for i, _ in seeds])


def continuation(domain: Domain, parents: list[Parent], rng: np.random.Generator) -> Prompt:
    """Few-shot from ``parents[1:]``, then ``open_prefix`` and the first part of ``parents[0]``.
    A domain whose rendered item does not start with ``open_prefix`` gets no stem (plain lmx)."""
    stem = cut_stem(domain.render(parents[0][1]), domain.open_prefix, rng)
    shots = "".join(domain.render(item) for _, item in parents[1:])
    return Prompt(domain.preamble + shots + domain.open_prefix + stem, "continuation",
                  [i for i, _ in parents], stem)


def cut_stem(rendered: str, open_prefix: str, rng: np.random.Generator) -> str:
    """The first 30-70% of an item's body (its rendering after ``open_prefix``), cut just
    before a whitespace so that the model's next token starts a new word; "" when the body
    is too short to cut or the rendering does not start with ``open_prefix``."""
    if not rendered.startswith(open_prefix):
        return ""
    body = rendered[len(open_prefix):].rstrip()
    at = int(len(body) * rng.uniform(*STEM_SHARE))
    cut = max(body.rfind(" ", 0, at + 1), body.rfind("\n", 0, at + 1))
    stem = body[:cut].rstrip() if cut > 0 else ""
    return stem if stem.strip() else ""


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
        elif op == "continuation":
            prompts.append(continuation(domain, _unique(elites), rng))
        else:
            picks = rng.choice(len(seeds), size=min(k, len(seeds)), replace=False)
            prompts.append(scratch(domain, [seeds[i] for i in picks]))
    return prompts


def _unique(parents: list[Parent]) -> list[Parent]:
    seen: dict[int, Parent] = {}
    for p in parents:
        seen.setdefault(p[0], p)
    return list(seen.values())

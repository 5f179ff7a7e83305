"""Search as a policy-improvement operator: a verifier-scored beam search and a value-guided
best-first search over the tree of candidates, each run inside one campaign iteration.

Best-of-N (:mod:`evo.strategy`) samples N children of one prompt and keeps the fittest: one
step of search, T(pi) in the founding documents. These strategies spend the same samples
as rounds that build on what the verifier said about the round before.

**The tree.** A node is a verified item. The roots are ``beam_width`` seeds drawn with the
iteration's RNG (as best-of-N draws its parents from the seeds, so the two differ only in
the search). Expanding a node is one prompt built on it by an operator that uses its parent
(``lmx`` with the node as the last shot, ``mutation``, ``continuation``, mixed by
``operators.weights``; ``scratch`` ignores its parent and is left out, so a child always
descends from the node) and ``beam_expansions`` samples of it. Children are parsed,
de-duplicated (against the seeds, their prompt's parents *and every node of this iteration's
search*: a copy of the best child or of the parent is a ``duplicate``, never a node), verified,
given their second chance and scored, exactly as in any batch, before the next round.

**The budget.** An iteration is ``beam_depth`` rounds; each round expands exactly
``beam_width`` nodes by ``beam_expansions`` samples, so every iteration generates
``beam_width x beam_expansions x beam_depth`` samples, and the config requires that to be
``prompts_per_iteration x samples_per_prompt``, what every other strategy generates. When a
round leaves fewer than ``beam_width`` nodes to expand (garbage, duplicates, invalid
children), the best earlier nodes are expanded again, so the budget is spent exactly, never
less. Tokens differ between strategies at equal samples (prompts and completions differ in
length, and P3 scores every valid child with solve attempts of the generator), so each
iteration records ``tokens`` (proposals) and ``score_tokens`` (solve attempts), and
``experiments/search_operators.py`` compares the strategies at equal *generated tokens*.

**beam.** The next round expands the ``beam_width`` fittest valid children of this round
(ties: the earlier child), topped up from the current beam when fewer are valid: standard
beam search with the verifier's fitness as the score.

**best_first** (the search beyond best-of-N). Fitness is not what the archive rewards: a
fit child in a cell held by a fitter elite adds nothing to the QD-score, and a beam fills
with near-copies of its best node, which all land in the same cell. So best-first search
scores a node by what it added to the archive and lets every node of the iteration compete
for the next expansion, not only the newest ones (the beam cannot back out of a dead end):

- a node's *gain* is its exact QD-score increment: its fitness minus the best fitness in its
  cell so far (the archive at the iteration's start plus this iteration's earlier nodes;
  the whole fitness in an empty cell; 0 when it does not improve its cell);
- an expansion's *reward* is the mean gain of its ``beam_expansions`` samples (invalid,
  unparsable and duplicate samples gain 0): the archive improvement per sample spent;
- ``value = (fitness + gain + rewards so far) / (1 + expansions) + search_ucb * sqrt(ln(1 + E)
  / (1 + expansions))``, E the expansions of the iteration so far: UCB1 over a growing set of
  arms, each node's own fitness and gain one pseudo-observation of it. Unexpanded nodes get
  the largest bonus, a node whose children keep failing loses it, and a near-copy of a
  node in a cell already held gains nothing: it earns its fitness once, where the same
  fitness in an empty cell earns it twice, and copying pays no reward to the node copied.
  Each round expands the ``beam_width`` nodes of highest value (a batch per
  round, so that the generator fills its batch).

Per child the store keeps (schema version 3): ``strategy``, ``depth`` (a root is 0),
``parent_id`` (the node it expands), ``beam_rank`` (its rank among its round's valid
children by the search's score, 0 = best; beam: rank < ``beam_width`` means it was expanded
next) and ``search_value`` (that score: fitness for beam, fitness + gain for best_first).
Every valid child is offered to the archive: the search's intermediate nodes are verified
data too. A round is judged before the next is generated, so the iteration is recorded in
one transaction at its end, and a crash anywhere in it (``EVO_CRASH_AT=round:IT`` after its
first round) replays it on resume from the same (seed, iteration) RNG.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from archives import Archive, Candidate
from evo.faults import crash_point
from evo.operators import Prompt, continuation, lmx, mutation

__all__ = ["SEARCH_KINDS", "Node", "TreeSearch"]

SEARCH_KINDS = ("beam", "best_first")
EXPANDING = ("lmx", "mutation", "continuation")  # the operators that build on the node they expand
_SUMMED = ("resolved", "verify_s", "score_s", "score_gen_s", "score_tokens")  # judge counts, over rounds


@dataclass
class Node:
    """A verified item in the search tree."""

    id: int
    item: dict[str, Any]
    depth: int
    fitness: float
    gain: float = 0.0  # its QD-score increment when it was found (roots: 0, they are elites)
    rewards: float = 0.0  # best_first: summed mean gain per sample of its expansions
    expansions: int = 0

    def value(self, total: int, ucb: float) -> float:
        """best_first's UCB value after ``total`` expansions in the iteration."""
        q = (self.fitness + self.gain + self.rewards) / (1 + self.expansions)
        return q + ucb * math.sqrt(math.log(1 + total) / (1 + self.expansions))


class TreeSearch:
    """Runs a campaign's iterations as a beam or best-first search (see the module doc)."""

    def __init__(self, campaign: Any) -> None:
        # an evo.campaign.Campaign, typed Any: the loop imports this module, not the reverse
        self.campaign = campaign
        self.cfg = campaign.config.strategy

    def step(self, it: int) -> dict[str, Any]:
        """One iteration: ``beam_depth`` rounds, then every child recorded in one transaction."""
        camp, s = self.campaign, self.cfg
        t0, rng = time.time(), np.random.default_rng([camp.config.seed, it])
        frontier = self._roots(rng)  # beam: the beam; best_first: every node of the iteration
        seen = set(camp._seed_keys) | {camp.domain.key(n.item) for n in frontier}
        cells = _Cells(camp.archive)
        cands: list[Candidate] = []
        groups: dict[int, int] = {}
        judged: dict[str, Any] = dict.fromkeys(_SUMMED, 0)
        gen_s, total = 0.0, 0
        for r in range(s.beam_depth):
            chosen = self._select(frontier, total)
            prompts = [self._expand(n, rng) for n in chosen]
            params = replace(camp.sampling(it), n=s.beam_expansions, seed=camp.sampling(it).seed * 64 + r)
            _, outputs, g = camp._generate(prompts, params)
            batch, grp = camp._candidates(it, prompts, outputs, first_id=camp.store.next_id() + len(cands))
            for c in batch:
                node = chosen[grp[c.id]]
                c.depth, c.parent_id = node.depth + 1, node.id
                groups[c.id] = r * s.beam_width + grp[c.id]
                if c.verdict == "pending":
                    key = camp.domain.key(c.item)
                    if key in seen:
                        c.verdict, c.reason = "duplicate", "copy of an earlier node of this iteration's search"
                    seen.add(key)
            for k, v in camp.judge(it, batch, round_=r + 1).items():
                judged[k] = judged[k] + v if k in _SUMMED else v
            children = self._score(batch, chosen, grp, cells)
            total += len(chosen)
            cands += batch
            gen_s += g
            crash_point("round", it)
            frontier = self._next(frontier, children)
        return camp._evaluate(it, cands, groups, t0, gen_s, judged=judged)

    def _roots(self, rng: np.random.Generator) -> list[Node]:
        seeds, w = self.campaign.seeds, self.cfg.beam_width
        picks = rng.choice(len(seeds), size=w, replace=len(seeds) < w)
        rows = self.campaign.store.get([seeds[i][0] for i in picks])
        return [Node(seeds[i][0], seeds[i][1], 0, float(rows[seeds[i][0]].fitness or 0.0)) for i in picks]

    def _select(self, frontier: list[Node], total: int) -> list[Node]:
        """The ``beam_width`` nodes this round expands."""
        w = self.cfg.beam_width
        if self.cfg.kind == "beam":
            return frontier[:w]
        order = sorted(frontier, key=lambda n: (-n.value(total, self.cfg.search_ucb), n.id))
        return [order[i % len(order)] for i in range(w)]

    def _expand(self, node: Node, rng: np.random.Generator) -> Prompt:
        """One prompt that builds on ``node``, by an operator drawn from ``operators.weights``."""
        camp = self.campaign
        dom, ops = camp.domain, camp.config.operators
        names = [o for o in EXPANDING if ops.weights.get(o, 0) > 0] or ["lmx"]
        p = np.array([ops.weights.get(o, 1.0) for o in names], dtype=float)
        op = names[int(rng.choice(len(names), p=p / p.sum()))]
        others = [sd for sd in camp.seeds if sd[0] != node.id]
        picks = rng.choice(len(others), size=min(ops.parents - 1, len(others)), replace=False) if others else []
        shots, parent = [others[i] for i in picks], (node.id, node.item)
        if op == "mutation":
            return mutation(dom, parent, dom.mutation_instructions[rng.integers(len(dom.mutation_instructions))])
        if op == "continuation":
            return continuation(dom, [parent, *shots], rng)
        return lmx(dom, [*shots, parent])  # the node last: the shot nearest the child weighs most

    def _score(self, batch: list[Candidate], chosen: list[Node], grp: dict[int, int],
               cells: _Cells) -> list[Node]:
        """The round's valid children as nodes, ranked by the search's score (recorded per
        child); best_first also credits each expanded node with its expansion's reward."""
        valid = [c for c in batch if c.verdict == "valid"]
        gains = np.zeros(len(valid))
        if self.cfg.kind == "best_first" and valid:
            camp = self.campaign
            gains = cells.gains(camp.measures.transform(camp._embed([c.item for c in valid])),
                                np.array([c.fitness for c in valid]))
        for c, gain in zip(valid, gains):
            c.search_value = float(c.fitness + (gain if self.cfg.kind == "best_first" else 0.0))
        for rank, c in enumerate(sorted(valid, key=lambda c: (-c.search_value, c.id))):
            c.beam_rank = rank
        for n in {id(n): n for n in chosen}.values():
            mine = [i for i, c in enumerate(valid) if chosen[grp[c.id]] is n]
            # a node expanded twice in one round (fewer nodes than beam_width) counts twice
            times = sum(1 for m in chosen if m is n)
            n.rewards += float(gains[mine].sum()) / self.cfg.beam_expansions
            n.expansions += times
        nodes = [Node(c.id, c.item, c.depth, c.fitness, float(gain)) for c, gain in zip(valid, gains)]
        return sorted(nodes, key=lambda n: (-(n.fitness + n.gain), n.id))

    def _next(self, frontier: list[Node], children: list[Node]) -> list[Node]:
        if self.cfg.kind == "best_first":
            return frontier + children
        w = self.cfg.beam_width
        keep = children[:w]  # the fittest valid children; too few: the best of the old beam again
        old = sorted({id(n): n for n in frontier}.values(), key=lambda n: (-n.fitness, n.id))
        while len(keep) < w:
            keep += old[: w - len(keep)]
        return keep


class _Cells:
    """The archive at the iteration's start plus the search's nodes so far, as the best
    fitness per cell: what a new node's QD-score increment is measured against."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.best: dict[int, float] = {}

    def gains(self, measures: np.ndarray, fitness: np.ndarray) -> np.ndarray:
        cells, occupant = self.archive.occupants(measures)
        out = np.zeros(len(fitness))
        for i in np.argsort(-fitness, kind="stable"):  # the fittest in a cell takes its gain first
            cell = int(cells[i])
            before = max(self.best.get(cell, -np.inf), float(occupant[i]))
            out[i] = fitness[i] if before == -np.inf else max(0.0, fitness[i] - before)
            self.best[cell] = max(before, float(fitness[i]))
        return out

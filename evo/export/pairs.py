"""Preference pairs from a campaign: what evo knows that a plain generator does not.

Every prompt the generator answered sits in the store with all its children (valid or
not), their verdicts, reasons and fitness. For each prompt, the best verified child is
``chosen``; every sibling that lost is ``rejected`` once, with the reason it lost (its
verdict and the verifier's reason, or its lower fitness). Rows use TRL's conversational
preference columns (``prompt``, ``chosen``, ``rejected``); KTO rows (``prompt``,
``completion``, ``label``) are the same pairs unpaired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archives import CampaignStore, Candidate
from evo.domain import Domain

MARGIN = 1e-9  # a sibling with fitness within this of the winner's is a tie, not a loser


@dataclass
class Pair:
    prompt: list[dict[str, str]]
    chosen: Candidate
    rejected: Candidate
    lost_because: str


def preference_pairs(store: CampaignStore, domain: Domain,
                     min_fitness: float | None = None) -> list[Pair]:
    """One pair per losing sibling, for every prompt with a verified child (at least
    ``min_fitness``) and a sibling that lost to it."""
    groups: dict[tuple[int, str], list[Candidate]] = {}
    for c in store.candidates("is_seed = 0 AND prompt IS NOT NULL"):
        groups.setdefault((c.iteration, c.prompt), []).append(c)
    parent_ids = {p for g in groups.values() for p in g[0].parents}
    parents = store.get(sorted(parent_ids))
    pairs = []
    for (_, raw), children in groups.items():
        valid = [c for c in children if c.verdict == "valid" and c.item is not None
                 and c.fitness is not None]
        if not valid:
            continue
        best = max(valid, key=lambda c: (c.fitness, -c.id))
        if min_fitness is not None and best.fitness < min_fitness:
            continue
        prompt = None
        for c in sorted(children, key=lambda c: c.id):
            why = lost_because(c, best)
            if why is None:
                continue
            if prompt is None:
                prompt = prompt_messages(domain, raw, [parents[p].item for p in best.parents
                                                       if p in parents and parents[p].item])
            pairs.append(Pair(prompt, best, c, why))
    return pairs


def lost_because(c: Candidate, best: Candidate) -> str | None:
    """Why sibling ``c`` lost to ``best``; None when it did not lose (or is ``best``)."""
    if c.id == best.id:
        return None
    if c.verdict != "valid":
        return f"{c.verdict}: {c.reason}" if c.reason else c.verdict
    if c.fitness is None or c.fitness < best.fitness - MARGIN:
        return f"lower fitness: {c.fitness or 0:.3f} < {best.fitness:.3f}"
    return None


def prompt_messages(domain: Domain, raw: str, parents: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The generator's prompt as one user turn: the domain's generation instruction, then
    the examples (and any rewrite instruction) the child was written after."""
    ask = domain.to_messages(parents[0])[0]["content"] if parents else \
        (domain.preamble.strip() or f"Write a new {domain.name} example.")
    body = raw
    if domain.preamble and body.startswith(domain.preamble):
        body = body[len(domain.preamble):]
    if domain.open_prefix and body.endswith(domain.open_prefix):
        body = body[:-len(domain.open_prefix)]
    body = body.strip()
    text = f"{ask}\n\nWrite it after these examples:\n\n{body}" if body else ask
    return [{"role": "user", "content": text}]


def completion(domain: Domain, c: Candidate) -> list[dict[str, str]]:
    """A child as the assistant turn: the rendered item, or the raw text when it never parsed."""
    text = domain.render(c.item).strip() if c.item else (domain.open_prefix + (c.completion or "")).strip()
    return [{"role": "assistant", "content": text}]


def dpo_record(domain: Domain, p: Pair) -> dict[str, Any]:
    return {"prompt": p.prompt, "chosen": completion(domain, p.chosen),
            "rejected": completion(domain, p.rejected), "lost_because": p.lost_because,
            "chosen_id": p.chosen.id, "rejected_id": p.rejected.id,
            "chosen_fitness": float(p.chosen.fitness),
            "rejected_fitness": None if p.rejected.fitness is None else float(p.rejected.fitness),
            "rejected_verdict": p.rejected.verdict, "operator": p.chosen.operator,
            "iteration": p.chosen.iteration, "generator_version": p.chosen.generator_version}


def kto_records(domain: Domain, pairs: list[Pair]) -> list[dict[str, Any]]:
    """Each distinct (prompt, child) once: ``label`` True for a chosen child, False for a
    rejected one."""
    rows, seen = [], set()
    for p in pairs:
        for c, label in ((p.chosen, True), (p.rejected, False)):
            if c.id in seen:
                continue
            seen.add(c.id)
            rows.append({"prompt": p.prompt, "completion": completion(domain, c), "label": label,
                         "id": c.id, "verdict": c.verdict,
                         "fitness": None if c.fitness is None else float(c.fitness),
                         "lost_because": None if label else p.lost_because,
                         "operator": c.operator, "iteration": c.iteration,
                         "generator_version": c.generator_version})
    return rows

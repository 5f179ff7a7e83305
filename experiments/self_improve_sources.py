"""Where the trained arms of experiments/self_improve.py get their examples: the seed
examples in a fixed order, plain best-of-N sampling from the seeds, and an arm's exact
training data kept for a later arm that reuses it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from self_improve_state import RunState

from evo.campaign import Campaign
from evo.domain import ParseError
from evo.finetune.data import Example, item_examples, read_examples
from evo.finetune.rounds import ADAPTERS, TRAIN_FILE
from evo.llm import SamplingParams


def by_item(examples: list[Example], n_items: int, seed: Any) -> list[Example]:
    """``n_items`` of the examples' items drawn at random (seeded), each with all its examples
    (a puzzle's generate and solve examples stay together, as an elite's do), in input order."""
    keys = sorted({e.key for e in examples})
    rng = np.random.default_rng(seed)
    pick = set(rng.choice(keys, size=min(n_items, len(keys)), replace=False).tolist()) if keys else set()
    return [e for e in examples if e.key in pick]


class ArmSources(RunState):
    """The data half of the experiment; ``base_llm`` and ``count`` come from the subclass."""

    def all_seed_examples(self, c: Campaign) -> list[Example]:
        rng = np.random.default_rng([self.seed, 17])
        return item_examples(c.domain, [(None, s) for s in c.domain.seeds()], "seed", seeds=c.domain.seeds(),
                             n_shots=1, solve=True, max_length=self.p["max_length"], rng=rng, count=self.count)

    def seed_examples(self, c: Campaign, n: int) -> list[Example]:
        """``n`` seed examples in a fixed seeded order (the same for every arm: paired data)."""
        ex, rng = self.all_seed_examples(c), np.random.default_rng([self.seed, 18])
        order = list(rng.permutation(len(ex)))
        while len(order) < n:  # only when the budget exceeds the distinct seed examples
            order += list(rng.permutation(len(ex)))
        return [ex[i] for i in order[:n]]

    def budget(self, c: Campaign) -> int:
        """Examples per trained arm: ``train_examples``, capped by the distinct seed examples."""
        return min(self.p["train_examples"], len(self.all_seed_examples(c)))

    def best_of_n(self, c: Campaign, n_items: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Plain sampling from seeds (no archive): the first valid, new item of ``bon_n`` per prompt."""
        dom, seeds, p = c.domain, c.domain.seeds(), self.p
        rng = np.random.default_rng([self.seed, 99])
        seen = {dom.key(s) for s in seeds}
        items, drawn, valid_n = [], 0, 0
        for attempt in range(p["bon_batches"]):
            if len(items) >= n_items:
                break
            prompts = []
            for _ in range(p["prompts"]):
                picks = rng.choice(len(seeds), size=2, replace=False)
                prompts.append(dom.preamble + "".join(dom.render(seeds[i]) for i in picks) + dom.open_prefix)
            params = SamplingParams(n=p["bon_n"], temperature=0.8, top_p=0.95, max_new_tokens=p["max_new_tokens"],
                                    stop=dom.stop, seed=self.seed * 31 + attempt)
            for samples in self.base_llm().generate(prompts, params):
                parsed = []
                for s in samples:
                    drawn += 1
                    try:
                        parsed.append(dom.parse(dom.open_prefix + s.text))
                    except ParseError:
                        pass
                verdicts = dom.verify(parsed, c.sandbox) if parsed else []
                valid_n += sum(v.valid for v in verdicts)
                best = next((it for it, v in zip(parsed, verdicts) if v.valid and dom.key(it) not in seen), None)
                if best is not None:
                    seen.add(dom.key(best))
                    items.append(best)
        return items[:n_items], {"drawn": drawn, "valid": valid_n, "valid_rate": valid_n / drawn if drawn else 0.0,
                                 "items": min(len(items), n_items), "wanted": n_items}

    def keep_data(self, step: str) -> Path:
        """Trained arm ``step``'s exact examples (its snapshot's train.jsonl), copied into the
        tracked state, whole or not at all: a snapshot holding an adapter is not mirrored, and a
        later arm (6) reuses the examples on another machine."""
        kept = self.state / "data" / f"{step.replace(':', '_')}.jsonl"
        if not kept.is_file():
            src = self.work / "snap" / f"{step.replace(':', '_')}@trained" / ADAPTERS / "round-1" / TRAIN_FILE
            if not src.is_file():
                raise FileNotFoundError(f"{step}: its training data went with its snapshot ({src}); "
                                        f"that step must run again (--fresh)")
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, kept.with_suffix(".tmp"))
            kept.with_suffix(".tmp").replace(kept)
        return kept

    def arm_data(self, step: str) -> list[Example]:
        return read_examples(self.keep_data(step))

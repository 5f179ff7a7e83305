"""Reward-model self-play on text_feedback, with and without the KL anchor (issue 33, item 2).

Usage:
    python experiments/rm_selfplay.py --size cpu    # the real run: ~45-60 min on an idle 2-core box
    python experiments/rm_selfplay.py --size tiny   # plumbing only, ~2-3 min
    python experiments/rm_selfplay.py --size cpu --archive runs/my-text-campaign   # its archive, no campaign

The real run's generator is ``smollm2-135m``, the text domain's default: its campaign judge is
itself (P(Yes) on the domain's judge prompts), so training on its best-judged texts *is*
self-play against its own reward, and a round costs minutes, not hours (the 1.5B trains at
~0.1 examples/s here). The held-out judge is ``qwen2.5-coder-1.5b``: a different, 11x larger
model that is never trained.

Steps (results in experiments/results/rm_selfplay[_tiny].json/.md after each; a rerun
continues, ``--fresh`` restarts; sampling is chunked and resumes mid-step):
  1. ``campaign``: a small text_feedback campaign (or ``--archive DIR``'s archive); the
     ``train_texts`` best elites by fitness are the data;
  2. ``train:nokl`` / ``train:kl``: one LoRA round each on the same examples with the same
     seed, ``kl_coef`` 0 and ``kl_coef`` > 0 (KL to the frozen base on the training batches);
  3. ``generate:*``: on held-out prompts (the few-shot story prompt opened with a story
     opening, a subject and a situation, that no training prompt or text has), one story
     each from the base (twice, two seeds: ``base2`` is the noise floor), tuned-noKL, tuned-KL;
  4. ``judge:*``: the held-out judge compares each arm's story with the base's for the same
     prompt, both orders (domains/text_feedback/pairwise.py): win rate, ties half;
  5. ``reward``: the campaign's own reward (the frozen base's P(Yes) judge) on every arm:
     what the round optimised, beside what the independent judge says;
  6. ``drift``: per-token KL(tuned || base) on the tuned model's own held-out stories
     (exact over the vocabulary), embedding cosine distance to the base's story for the same
     prompt (``base2`` gives the floor), distinct-2 and mean length per arm.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_flags, cpu_model, load_average
from resumable import Steps, sample_chunked
from rm_selfplay_report import write_report
from stats import bootstrap_ci

from domains.text_feedback import TextFeedbackDomain
from domains.text_feedback.pairwise import judge_pairs, llm_judge, win_rate
from evo.config import CampaignConfig, FinetuneConfig
from evo.domain import EvalContext
from evo.errors import EvoError
from evo.finetune.data import Example
from evo.llm import SamplingParams, load_generator

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
SUBJECTS = ["The old lighthouse keeper", "A nervous astronaut", "My grandmother's cat", "The last bookseller in town",
            "A tired delivery robot", "Two rival bakers", "The new teacher", "A lost penguin", "The mayor's son",
            "An elderly fisherman", "A girl with a red kite", "The night-shift nurse"]
SITUATIONS = ["found a letter", "woke up before dawn", "heard a strange noise", "missed the last train",
              "opened the wrong door", "won a small prize", "lost the only map", "met a stranger"]
ARMS = ("base", "base2", "nokl", "kl")

SIZES: dict[str, dict[str, Any]] = {
    "cpu": dict(model="smollm2-135m", campaign_backend="vllm", judge_model="qwen2.5-coder-1.5b", iterations=12,
                prompts=8, samples=2, train_texts=64, epochs=3.0, max_steps=-1, train_batch=8, grad_accum=1, lr=5e-4,
                max_length=256, kl_coef=0.5, heldout=96, max_new_tokens=80, temperature=0.8, chunk=16, batch_size=16,
                campaign_s=900, judge_s_per_pair=3.0),
    "tiny": dict(model="smollm2-135m", campaign_backend="transformers", judge_model="smollm2-135m", iterations=1,
                 prompts=2, samples=1, train_texts=4, epochs=1.0, max_steps=1, train_batch=2, grad_accum=1, lr=5e-4,
                 max_length=256, kl_coef=0.5, heldout=3, max_new_tokens=24, temperature=0.8, chunk=2, batch_size=8,
                 campaign_s=60, judge_s_per_pair=0.2),
}


def machine() -> str:
    return f"{cpu_model()}, flags: {cpu_flags()}, load {load_average()}"


def heldout_prompts(domain: TextFeedbackDomain, n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (prompt, opener): the domain's few-shot prompt (two seed stories) opened with a
    subject and a situation."""
    rng = np.random.default_rng([seed, 2])
    combos = [f"{s} {v}" for s in SUBJECTS for v in SITUATIONS]
    if n > len(combos):
        raise EvoError(f"at most {len(combos)} held-out prompts")
    seeds = domain.seeds()
    out = []
    for i in rng.permutation(len(combos))[:n]:
        shots = rng.choice(len(seeds), size=2, replace=False)
        opener = combos[int(i)]
        prompt = domain.preamble + "".join(domain.render(seeds[j]) for j in shots) + f"{domain.label} {opener}"
        out.append((prompt, opener))
    return out


class SelfPlay:
    def __init__(self, size: str, work: Path, results: Path, seed: int = 0, fresh: bool = False,
                 archive: str | None = None, overrides: dict[str, Any] | None = None) -> None:
        self.size, self.work, self.seed, self.archive_dir = size, work, seed, archive
        self.p = {**SIZES[size], **(overrides or {})}
        self.domain = TextFeedbackDomain()
        stem = "rm_selfplay" if size == "cpu" else f"rm_selfplay_{size}"
        plan = {"size": size, "seed": seed, "archive": archive, **self.p}
        self.steps = Steps(results / f"{stem}.json", results / f"{stem}.md", plan, work, report=write_report,
                           machine=machine, fresh=fresh)
        self.prompts = heldout_prompts(self.domain, self.p["heldout"], seed)

    def plan(self) -> list[tuple[str, Any, float]]:
        p = self.p
        gen_s = p["heldout"] * p["max_new_tokens"] / 40.0
        train_s = p["train_texts"] * p["epochs"] / 3.0
        judge_s = 2 * p["heldout"] * p["judge_s_per_pair"]
        return [("campaign", self.step_campaign, 5 if self.archive_dir else p["campaign_s"]),
                ("train:nokl", lambda: self.step_train(0.0), train_s), ("train:kl", lambda: self.step_train(p["kl_coef"]), 2 * train_s),
                *[(f"generate:{a}", lambda a=a: self.step_generate(a), gen_s) for a in ARMS],
                *[(f"judge:{a}", lambda a=a: self.step_judge(a), judge_s + 30) for a in ("nokl", "kl", "base2")],
                ("reward", self.step_reward, 4 * p["heldout"] * 0.3), ("drift", self.step_drift, 2 * p["heldout"] * 0.3 + 20)]

    # -- 1. the data -------------------------------------------------------------------------
    def step_campaign(self) -> dict[str, Any]:
        from archives import Archive, CampaignStore, Measures, rebuild_archive
        from evo.campaign import MEASURES_FILE, Campaign

        src = Path(self.archive_dir) if self.archive_dir else self.work / "campaign"
        info: dict[str, Any] = {"source": str(src)}
        if not self.archive_dir:
            p = self.p
            cfg = CampaignConfig(name="rm-selfplay", domain="text_feedback", seed=self.seed, max_seeds=12,
                                 iterations=p["iterations"], prompts_per_iteration=p["prompts"],
                                 samples_per_prompt=p["samples"], archive={"dims": [10, 10]},
                                 generator={"backend": p["campaign_backend"], "model": p["model"], "batch_size": 16,
                                            "temperature": 0.9, "max_new_tokens": 96},
                                 operators={"weights": {"lmx": 0.5, "mutation": 0.3, "scratch": 0.2}, "parents": 3})
            if src.exists():
                shutil.rmtree(src)  # an interrupted campaign is redone: its store belongs to this step
            c = Campaign(cfg, src)
            try:
                c.run()
            finally:
                c.close()
        store = CampaignStore.open(src)
        try:
            cfg = store.get_meta("config") or {}
            if cfg.get("domain") != "text_feedback":
                raise EvoError(f"{src} is not a text_feedback campaign")
            archive = Archive(Measures.load(src / MEASURES_FILE), cfg.get("archive", {}).get("dims"), cfg.get("seed", 0))
            elites = sorted(rebuild_archive(store, archive).elites(), key=lambda e: -e["fitness"])
            found = store.get([e["candidate_id"] for e in elites])
        finally:
            store.close()
        best = [{"id": e["candidate_id"], "text": found[e["candidate_id"]].item["text"], "fitness": e["fitness"],
                 "seed": found[e["candidate_id"]].is_seed} for e in elites[: self.p["train_texts"]]]
        if not best:
            raise EvoError(f"{src} has no elites to train on")
        openers = {o.lower() for _, o in self.prompts}
        clash = [b["id"] for b in best if any(b["text"].lower().startswith(o) for o in openers)]
        return {**info, "elites": len(elites), "best": best, "seeds_in_best": sum(b["seed"] for b in best),
                "fitness_mean": float(np.mean([b["fitness"] for b in best])), "heldout_opener_clashes": clash}

    def examples(self) -> list[Example]:
        """Few-shot story prompt (two seed stories, not the text itself) -> one best text."""
        rng, seeds = np.random.default_rng([self.seed, 1]), self.domain.seeds()
        out = []
        for b in self.steps.done["campaign"]["best"]:
            pool = [s for s in seeds if self.domain.key(s) != self.domain.key(b)]
            shots = [pool[int(i)] for i in rng.choice(len(pool), size=2, replace=False)]
            prompt = self.domain.preamble + "".join(self.domain.render(s) for s in shots) + self.domain.label
            out.append(Example(prompt, f" {b['text']}\n\n", "generate", "archive", self.domain.key(b), b["id"]))
        return out

    def step_train(self, kl_coef: float) -> dict[str, Any]:
        from evo.finetune.train import train_lora

        p = self.p
        cfg = FinetuneConfig(epochs=p["epochs"], max_steps=p["max_steps"], lr=p["lr"], batch_size=p["train_batch"],
                             grad_accum=p["grad_accum"], max_length=p["max_length"], kl_coef=kl_coef)
        out = self.adapter("kl" if kl_coef else "nokl")
        if out.exists():
            shutil.rmtree(out)
        rec = train_lora(p["model"], self.examples(), out, cfg, seed=self.seed)
        return {"n_examples": len(self.examples()), **rec}

    def adapter(self, arm: str) -> Path:
        return self.work / f"adapter-{arm}"

    # -- 2. held-out stories -----------------------------------------------------------------
    def step_generate(self, arm: str) -> dict[str, Any]:
        p = self.p
        adapter = str(self.adapter(arm)) if arm in ("nokl", "kl") else None
        llm = load_generator("transformers", p["model"], adapter=adapter, batch_size=p["batch_size"])
        params = SamplingParams(n=1, temperature=p["temperature"], top_p=0.95, max_new_tokens=p["max_new_tokens"],
                                stop=self.domain.stop, seed=self.seed + (1000 if arm == "base2" else 0))
        texts = sample_chunked(llm, [q for q, _ in self.prompts], [f"h{i}" for i in range(len(self.prompts))], params,
                               self.work / f"gen_{arm}.jsonl", p["chunk"])
        del llm
        cont = [row[0] for row in texts]
        stories = [" ".join(f"{o}{c}".split()) for (_, o), c in zip(self.prompts, cont)]
        return {"continuations": cont, "stories": stories, "words": float(np.mean([len(s.split()) for s in stories]))}

    def stories(self, arm: str) -> list[str]:
        return self.steps.done[f"generate:{arm}"]["stories"]

    # -- 3. judged ---------------------------------------------------------------------------
    def step_judge(self, arm: str) -> dict[str, Any]:
        if not hasattr(self, "_judge"):
            judge_llm = load_generator("transformers", self.p["judge_model"], batch_size=1)
            self._judge = llm_judge(judge_llm, "story", chat=True)
        judge, build = self._judge
        pairs = judge_pairs(judge, build, self.stories(arm), self.stories("base"))
        return {"judge": self.p["judge_model"], "vs": "base", **win_rate(pairs, self.seed), "pairs": pairs}

    def step_reward(self) -> dict[str, Any]:
        """The campaign's reward (the frozen base generator's judge) on each arm's stories."""
        llm = load_generator("transformers", self.p["model"], batch_size=self.p["batch_size"])
        ctx = EvalContext(generator=llm, sandbox=None, seed=self.seed)  # type: ignore[arg-type]
        scores = {a: [s.fitness for s in self.domain.score([{"text": t} for t in self.stories(a)], ctx)] for a in ARMS}
        out: dict[str, Any] = {}
        for a in ARMS:
            out[a] = {"mean": float(np.mean(scores[a])), "ci": list(bootstrap_ci(scores[a])), "scores": scores[a]}
            if a != "base":
                wins = [float(x > y) + 0.5 * (x == y) for x, y in zip(scores[a], scores["base"])]
                out[a]["win_rate"], out[a]["win_rate_ci"] = float(np.mean(wins)), list(bootstrap_ci(wins))
        return out

    def step_drift(self) -> dict[str, Any]:
        from evo.descriptor import Embedder
        from evo.finetune.drift import distinct_n, token_kl

        out: dict[str, Any] = {}
        emb = Embedder("all-MiniLM-L6-v2", "cpu")
        vec = {a: emb.embed(self.stories(a)) for a in ARMS}
        for a in ARMS:
            rec: dict[str, Any] = {"distinct2": distinct_n(self.stories(a), 2),
                                   "words": self.steps.done[f"generate:{a}"]["words"]}
            if a != "base":
                x, y = vec[a], vec["base"]
                cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1) + 1e-12)
                d = (1.0 - cos).tolist()
                rec["embed_distance"], rec["embed_distance_ci"] = float(np.mean(d)), list(bootstrap_ci(d))
            if a in ("nokl", "kl"):
                kl = token_kl(self.p["model"], str(self.adapter(a)), [q for q, _ in self.prompts],
                              self.steps.done[f"generate:{a}"]["continuations"])
                kl = [k for k in kl if k == k]  # empty continuations have no tokens
                rec["token_kl"], rec["token_kl_ci"] = float(np.mean(kl)) if kl else None, list(bootstrap_ci(kl))
            out[a] = rec
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="cpu")
    ap.add_argument("--archive", help="an existing text_feedback campaign to take the best texts from")
    ap.add_argument("--work", help="working folder (default runs/rm_selfplay_<size>)")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kl-coef", type=float, help="the anchored arm's kl_coef (default: the size's)")
    ap.add_argument("--budget-s", type=float, default=None, help="start no new step after this many seconds")
    ap.add_argument("--fresh", action="store_true", help="discard finished steps and start over")
    a = ap.parse_args(argv)
    if a.kl_coef is not None and a.kl_coef <= 0:
        print("error: --kl-coef must be above 0 (the other arm is the kl_coef 0 one)", file=sys.stderr)
        return 2
    if a.archive and not (Path(a.archive) / "campaign.sqlite").is_file():
        print(f"error: {a.archive} is not a campaign directory (no campaign.sqlite)", file=sys.stderr)
        return 2
    work = Path(a.work or ROOT / "runs" / f"rm_selfplay_{a.size}")
    try:
        exp = SelfPlay(a.size, work, Path(a.results), a.seed, a.fresh, a.archive,
                       {"kl_coef": a.kl_coef} if a.kl_coef else None)
        done = exp.steps.run(exp.plan(), time.time() + a.budget_s if a.budget_s is not None else None)
    except EvoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(("finished: " if done else "unfinished, run again to resume: ") + str(exp.steps.md_path), flush=True)
    return 0 if done else 3


if __name__ == "__main__":
    sys.exit(main())

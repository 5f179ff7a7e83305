"""Self-improvement, answered (issue 17): does fine-tuning on the archive beat fine-tuning on the
same amount of plain-sampled data? Haluptzok et al.'s experiment at 135M scale.

Usage:
    python experiments/self_improve.py --size cpu     # ~70-90 min on an idle 2-core box (README)
    python experiments/self_improve.py --size gpu     # all 228 test families, n = k = 100
    python experiments/self_improve.py --size tiny    # plumbing check (gpu_suite --dry-run)

Arms, each one fine-tune round from the same base and the same archive (a base campaign of
``base_iters`` iterations), every trained arm on exactly ``train_examples`` examples:
  1. ``base``: no training;
  2. ``seeds``: real seed examples only (the P3 *train* families the seeds come from);
  3. ``elites``: the archive's evolved elites + seed examples filling up to the same count;
  4. ``best_of_n``: as many valid best-of-N samples (plain sampling from seeds, the first
     valid new item of N per prompt) as arm 3 has elite examples + the same seed examples.
  3b. ``elites_own``: arm 3 with the elites its data diagnosis (self_improve_data.py) points
     at left out: those of fitness 0 (no difficulty shown) and those whose solution is a
     fresh solve attempt's (``own_solutions_only``); seed examples fill up to the same count;
  3c. ``elites_drop``: 3b's control, as many elites as 3b keeps, drawn at random.
Then rounds 2..``rounds`` of arm 3, anchors on (accumulation, seed share, KL to the base)
and off (the current elites alone), each round followed by an evolution phase.

Measures, per generator: held-out P3 pass@k (unbiased, ``evo.evalsolve.evaluate``) with 95%
bootstrap intervals over puzzles on a fixed, seeded set of *test* families; valid rate per
generated sample and QD-score gained per 1,000 samples in an evolution phase of
``phase_iters`` iterations from the same starting archive (the base arm's phase is the
"before"). Paired comparisons (same puzzles) in the Markdown report. Every step's result is
written when it ends to experiments/results/self_improve_<size>.json (.md beside it); a rerun
skips finished steps (``--fresh`` starts over). Nothing here is tuned on test families: the
prompt style defaults to the campaign's own completion prompt (choose_solve_prompt.py picks
styles on train families only).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_flags, cpu_model, load_average
from self_improve_report import write_report

from domains.p3.heldout import PROMPT_STYLES
from evo.campaign import Campaign
from evo.config import CampaignConfig
from evo.descriptor import Embedder
from evo.domain import ParseError
from evo.finetune import archive_examples, finetune_and_swap
from evo.finetune.data import Example, item_examples
from evo.finetune.rounds import current_adapter
from evo.finetune.train import token_counter
from evo.heldout import evaluate
from evo.llm import SamplingParams, load_generator
from evo.llm.embedded import cache_dir

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
# A session's work tree is laid anew (its ignored runs/ gone), so the campaign dirs live beside
# the model cache, which a kept machine keeps; the small parts that cost the most to redo (the
# base campaign's snapshot, held-out chunk counts) are also mirrored into a tracked folder next
# to the results (<results>/self_improve_<size>.state), which a fresh machine restores from.
MIRROR_MAX_BYTES = 20 << 20  # a snapshot with a LoRA adapter (~37 MB for the 1.5B) is not mirrored

SIZES: dict[str, dict[str, Any]] = {
    # ~75 min on an idle 2-core AVX-512 box: 6 evaluations of 800 samples (~7 min each) and a
    # 512-sample base campaign (at the 135M model's ~1% valid rate, 64 samples gave no evolved
    # elite at all, so arms 2-4 trained on the same data); 40 test families, n = k = 20, two
    # rounds; generation with CTranslate2 int8 (every arm alike; training stays TRL)
    "cpu": dict(backend="ctranslate2", eval_limit=40, n=20, ks=[1, 10, 20], base_iters=8, phase_iters=1, prompts=16, samples=4,
                max_seeds=16, solve_attempts=2, solve_tokens=80, max_new_tokens=128, train_examples=48,
                epochs=1.0, max_steps=-1, train_batch=4, max_length=320, lr=5e-4, rounds=2, bon_n=4,
                bon_batches=4, batch_size=32, workers=2, seed_share=0.1, kl_coef=0.05, device="auto"),
    # Haluptzok's measurement: all 228 test families at n = k = 100, larger campaigns, 3 rounds
    # (every step ~2-4 min on one H100 by estimate, not yet measured: docs/gpu_suite.md)
    "gpu": dict(backend="transformers", eval_limit=None, n=100, ks=[1, 10, 100], base_iters=6, phase_iters=2, prompts=64,
                samples=4, max_seeds=None, solve_attempts=4, solve_tokens=80, max_new_tokens=160,
                train_examples=160, epochs=2.0, max_steps=-1, train_batch=16, max_length=384, lr=2e-4,
                rounds=3, bon_n=8, bon_batches=4, batch_size=1024, workers=15, seed_share=0.1,
                kl_coef=0.05, device="auto"),
    # Issue 31: the experiment with a generator that can write the data, Qwen2.5-Coder-1.5B
    # on vLLM's CPU build (the demo's engine; LoRA swapped in without a restart). All 228 test
    # families at n = 10 (pass@1, pass@5, pass@10), a 512-sample base campaign (the 1.5B writes
    # ~17% valid puzzles: ~85 valid, ~40 evolved elites expected), 96 examples per trained arm,
    # LoRA at batch 2 x 4 accumulation with checkpointing (batch 8 ran out of 24 GiB), 3 rounds.
    # Every step is resumable inside (held-out chunks, the base campaign's iterations, training
    # before measuring): hours in the background, over several sessions. Expected minutes per
    # step on an idle 2-core AVX-512 box are in EXPECTED_MIN; they double with another job beside.
    "cpu-1.5b": dict(backend="vllm", model="qwen2.5-coder-1.5b", eval_limit=None, n=10, ks=[1, 5, 10], base_iters=8,
                     phase_iters=2, prompts=16, samples=4, max_seeds=None, solve_attempts=4, solve_tokens=96,
                     max_new_tokens=160, train_examples=96, epochs=2.0, max_steps=-1, train_batch=2, grad_accum=4,
                     max_length=384, lr=3e-4, rounds=3, bon_n=4, bon_batches=8, batch_size=32, workers=2,
                     seed_share=0.1, kl_coef=0.05, device="auto"),
    # the plumbing at the smallest size that still runs every step (gpu_suite --dry-run, CI)
    "tiny": dict(backend="transformers", eval_limit=1, n=2, ks=[1, 2], base_iters=1, phase_iters=1, prompts=1, samples=1,
                 max_seeds=2, solve_attempts=1, solve_tokens=16, max_new_tokens=32, train_examples=4,
                 search_budget=100,
                 epochs=1.0, max_steps=1, train_batch=2, max_length=256, lr=5e-4, rounds=2, bon_n=2,
                 bon_batches=1, batch_size=8, workers=2, seed_share=0.1, kl_coef=0.05, device="auto"),
}


# Expected minutes per step (idle 2-core AVX-512 box), printed before each step starts:
# held-out 2,280 samples at ~60 tok/s (~70 tokens each) plus judging; a phase is 128 samples with
# their solve attempts; LoRA 96 examples x 2 epochs at ~0.15 examples/s.
EXPECTED_MIN: dict[str, dict[str, float]] = {
    "cpu-1.5b": {"campaign:base": 45, "heldout": 45, "phase": 12, "train": 25, "best_of_n": 40},
}


# Arm 3b's elites: fitness above 0 (some difficulty shown), with their author's own solution
OWN_FILTERS = {"fitness_above": 0.0, "own_solutions_only": True}


FIXED_STEPS = ("campaign:base", "arm:base", "arm:elites", "arm:best_of_n", "arm:seeds", "arm:elites_own",
               "check:best_of_n", "arm:elites_drop")


def step_names(p: dict[str, Any]) -> list[str]:
    """The plan's steps in run order: the fixed arms, then rounds 2.. of the anchored and unanchored runs."""
    return [*FIXED_STEPS, *(f"round:{v}:{r}" for v in ("on", "off") for r in range(2, p["rounds"] + 1))]


def make_config(p: dict[str, Any], seed: int) -> CampaignConfig:
    """The base campaign; every arm's campaign is a copy of it (fine-tuning is driven here)."""
    return CampaignConfig(
        name="self-improve", seed=seed, max_seeds=p["max_seeds"], iterations=p["base_iters"],
        prompts_per_iteration=p["prompts"], samples_per_prompt=p["samples"],
        domain_options={"solve_attempts": p["solve_attempts"], "solve_max_tokens": p["solve_tokens"],
                        **({"search_budget": p["search_budget"]} if p.get("search_budget") else {})},
        generator={"backend": p["backend"], "model": p.get("model", "smollm2-135m"),
                   "max_new_tokens": p["max_new_tokens"], "batch_size": p["batch_size"], "device": p["device"]},
        sandbox={"workers": p["workers"]}, operators={"parents": 2}, archive={"dims": [20, 20]},
        finetune=anchors(p, on=True, round1=True))


def anchors(p: dict[str, Any], *, on: bool, round1: bool = False) -> dict[str, Any]:
    """The trainer settings. Round 1 gets exactly the examples built here (no extra seed mix,
    no KL: every arm the same); later rounds of arm 3 get the anchors on or off."""
    base = {"epochs": p["epochs"], "max_steps": p["max_steps"], "lr": p["lr"], "batch_size": p["train_batch"],
            "max_length": p["max_length"], "solve_examples": True, "every": 0, "grad_accum": p.get("grad_accum", 1),
            "max_examples": max(1, p["train_examples"] // 2)}
    if round1:
        return {**base, "seed_share": 0.0, "accumulate": False, "kl_coef": 0.0}
    if on:
        return {**base, "seed_share": p["seed_share"], "accumulate": True, "kl_coef": p["kl_coef"]}
    return {**base, "seed_share": 0.0, "accumulate": False, "kl_coef": 0.0}


class Experiment:
    """The steps, their shared pieces (base model, embedder, puzzles) and the results file."""

    def __init__(self, size: str, work: Path, results: Path, seed: int = 0, prompt_style: str = "completion",
                 overrides: dict[str, Any] | None = None, lora_serving: str = "request") -> None:
        self.size, self.work, self.seed, self.style = size, work, seed, prompt_style
        self.lora_serving = lora_serving  # how vLLM serves an arm's adapter; not in the plan (same function)
        self.p = {**SIZES[size], **(overrides or {})}
        self.cfg = make_config(self.p, seed)
        self.json_path, self.md_path = results / f"self_improve_{size}.json", results / f"self_improve_{size}.md"
        self.state = results / f"self_improve_{size}.state"
        plan = {"size": size, "seed": seed, "prompt_style": prompt_style, **self.p}
        old = json.loads(self.json_path.read_text()) if self.json_path.is_file() else None
        new_machine = (old is not None and old.get("plan") == plan and "campaign:base" in old["steps"]
                       and not (work / "snap" / "s0").is_dir())
        if new_machine:
            self.restore()  # what the tracked mirror kept
        if old is None or old.get("plan") != plan or (new_machine and not (work / "snap" / "s0").is_dir()):
            old = {"plan": plan, "steps": {}, "started": date.today().isoformat()}
            shutil.rmtree(work, ignore_errors=True)  # campaign dirs of another plan cannot resume
            shutil.rmtree(self.state, ignore_errors=True)
            reset = True
        else:
            reset = False
        work.mkdir(parents=True, exist_ok=True)
        if "campaign:base" not in old["steps"] and not (work / "base").is_dir() and (self.state / "base").is_dir():
            print(f"restoring the unfinished base campaign from {self.state / 'base'}", flush=True)
            shutil.copytree(self.state / "base", work / "base")  # it resumes after its last mirrored iteration
        old.setdefault("partial", {})  # finished parts of unfinished steps (see part())
        self.res = old
        if new_machine:
            self.drop_lost_steps()
        self._llm = self._embedder = None
        self.count = token_counter(self.cfg.generator.model)
        if reset:  # at once: results of the old run must not sit beside this run's mirror
            self.write()

    # -- shared pieces ----------------------------------------------------------------------
    def base_llm(self):
        if self._llm is None:
            g = self.cfg.generator
            # vLLM: one engine for every arm, LoRA enabled from the start so adapters swap in
            # without a restart (the base arm runs on the same LoRA-enabled engine: same speed)
            lora = ({"lora_rank": self.cfg.finetune.lora_r, "lora_serving": self.lora_serving}
                    if g.backend == "vllm" else {})
            self._llm = load_generator(g.backend, g.model, batch_size=g.batch_size, device=g.device, **lora)
        return self._llm

    def embedder(self) -> Embedder:
        if self._embedder is None:
            import torch

            self._embedder = Embedder(self.cfg.descriptor.embedder, "cuda" if torch.cuda.is_available() else "cpu")
        return self._embedder

    def campaign(self, name: str, src: str | None = None, *, fresh: bool = True) -> Campaign:
        """Arm ``name``'s campaign dir, restored from snapshot ``src`` (what an interrupted step
        left there is discarded), on the base generator until it fine-tunes."""
        d = self.work / name
        if fresh and d.exists():
            shutil.rmtree(d)
        if src is not None:
            shutil.copytree(self.work / "snap" / src, d)
        llm = self.base_llm()
        if hasattr(llm, "set_adapter"):  # the shared engine serves this dir's newest adapter, or the base
            found = current_adapter(d)
            llm.set_adapter(*(found or (None, 0)))
            return Campaign(self.cfg.model_copy(deep=True), d, generator=llm, embedder=self.embedder())
        found = current_adapter(d)
        if found:  # an engine without hot-swap: this arm's tuned generator, loaded from its adapter
            g = self.cfg.generator
            llm = load_generator(g.backend, g.model, adapter=found[0], version=found[1], batch_size=g.batch_size,
                                 device=g.device)
        return Campaign(self.cfg.model_copy(deep=True), d, generator=llm, embedder=self.embedder())

    def part(self, step: str, part: str, fn: Any) -> dict[str, Any]:
        """Part ``part`` of step ``step``: its saved result, or ``fn()`` run and saved at once,
        so that a step of hours resumes after its last finished part."""
        done = self.res["partial"].setdefault(step, {})
        if part not in done:
            self.expect(f"{step}/{part}", part)
            t = time.time()
            done[part] = {**fn(), "part_s": time.time() - t}
            self.write()
            print(f"[{time.strftime('%H:%M:%S')}] {step}/{part} done", flush=True)
        return done[part]

    def expect(self, what: str, kind: str) -> None:
        minutes = EXPECTED_MIN.get(self.size, {}).get(kind)
        if minutes:
            print(f"[{time.strftime('%H:%M:%S')}] {what}: expected ~{minutes:.0f} min on an idle 2-core box",
                  flush=True)

    def snapshot(self, name: str, as_: str) -> None:
        self._copy(self.work / name, as_)

    # -- surviving a new machine ------------------------------------------------------------
    def mirror(self, snap: Path) -> None:
        """Copies snapshot ``snap`` into the tracked state folder if it is small (whole or not
        at all: one without its adapter would measure the base)."""
        if sum(f.stat().st_size for f in snap.rglob("*") if f.is_file()) > MIRROR_MAX_BYTES:
            return
        dst, tmp = self.state / "snap" / snap.name, self.state / "snap" / f".{snap.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(snap, tmp)
        shutil.rmtree(dst, ignore_errors=True)
        tmp.rename(dst)

    def mirror_campaign(self, name: str) -> None:
        """The running campaign ``name``'s dir into the state folder, between two iterations: the
        store through SQLite's backup API (a consistent copy while it is open), the rest as files."""
        src, tmp, dst = self.work / name, self.state / f".{name}.tmp", self.state / name
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in src.iterdir():
            if f.suffix == ".sqlite":
                with sqlite3.connect(f) as db, sqlite3.connect(tmp / f.name) as out:
                    db.backup(out)
            elif f.is_file() and f.name != "writer.lock" and not f.name.endswith(("-wal", "-shm")):
                shutil.copy2(f, tmp / f.name)
        shutil.rmtree(dst, ignore_errors=True)
        tmp.rename(dst)

    def restore(self) -> None:
        if (self.state / "snap").is_dir():
            print(f"restoring the campaign snapshots from {self.state}", flush=True)
            shutil.copytree(self.state / "snap", self.work / "snap", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".*.tmp"))

    def drop_lost_steps(self) -> None:
        """Steps whose snapshot went with an old machine are done again: an unfinished step
        whose trained snapshot is gone is retrained, and a finished step whose snapshot a
        later step starts from is redone (its adapter cannot be measured again otherwise)."""
        snaps = self.work / "snap"
        for step in list(self.res["partial"]):
            if "train" in self.res["partial"][step] and not (snaps / f"{step.replace(':', '_')}@trained").is_dir():
                print(f"{step}: its trained snapshot is lost; training again", flush=True)
                self.res["partial"].pop(step)
                self.progress_file(step).unlink(missing_ok=True)
        needs = {"round:on:2": "elites@1", "round:off:2": "elites@1"}
        needs |= {f"round:{v}:{r}": f"{v}@{r - 1}" for v in ("on", "off") for r in range(3, self.p["rounds"] + 1)}
        makers = {"elites@1": "arm:elites"} | {f"{v}@{r}": f"round:{v}:{r}" for v in ("on", "off")
                                               for r in range(2, self.p["rounds"] + 1)}
        for step, snap in needs.items():
            if step not in self.res["steps"] and not (snaps / snap).is_dir() and makers[snap] in self.res["steps"]:
                print(f"{makers[snap]}: snapshot {snap} is lost; done again for {step}", flush=True)
                self.res.setdefault("redone", []).append(makers[snap])
                self.res["steps"].pop(makers[snap])
                self.progress_file(makers[snap]).unlink(missing_ok=True)

    def snapshot_of(self, src: str, as_: str) -> None:
        self._copy(self.work / "snap" / src, as_)

    def _copy(self, src: Path, as_: str) -> None:
        """Copies to a temporary name, then renames: a crash never leaves half a snapshot."""
        dst, tmp = self.work / "snap" / as_, self.work / "snap" / f".{as_}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("writer.lock"))
        shutil.rmtree(dst, ignore_errors=True)
        tmp.rename(dst)
        self.mirror(dst)  # once, when the snapshot is made

    def save(self, step: str, value: dict[str, Any]) -> None:
        self.res["steps"][step] = value
        self.res["partial"].pop(step, None)
        self.write()
        print(f"[{time.strftime('%H:%M:%S')}] {step}: {short(value)}", flush=True)

    def write(self) -> None:
        """The results file, whole or not at all (a crash mid-write keeps the previous one)."""
        self.res.update(date=date.today().isoformat(), machine=machine())
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.res, indent=1))
        tmp.replace(self.json_path)
        write_report(self.res, self.md_path)

    # -- measures ---------------------------------------------------------------------------
    def heldout(self, c: Campaign, step: str) -> dict[str, Any]:
        """Held-out pass@k; chunks of 16 puzzles are kept in the state's progress/ as they finish
        (cleared when the step's generator is trained again)."""
        bench = c.domain.benchmark("test", self.p["eval_limit"], 0, self.style)
        r = evaluate(c.generator.llm, bench, c.sandbox, n=self.p["n"], ks=self.p["ks"], seed=self.seed,
                     progress=self.progress_file(step))
        r["ids"] = bench.ids
        if getattr(c.generator.llm, "adapter", None):
            r["lora_serving"] = self.lora_serving  # recorded: request and merge round differently
        return r

    def phase(self, c: Campaign) -> dict[str, Any]:
        """``phase_iters`` more iterations: valid rate and QD gained per 1,000 samples."""
        start_qd = c.archive.stats()["qd_score"]
        first = (c.store.iterations() or [{"iteration": 0}])[-1]["iteration"] + 1
        c.config.iterations = first + self.p["phase_iters"] - 1
        t = time.time()
        c.run()
        its = [i for i in c.store.iterations() if i["iteration"] >= first]
        n, valid = sum(i["candidates"] for i in its), sum(i["valid"] for i in its)
        end = c.archive.stats()
        return {"samples": n, "valid": valid, "valid_rate": valid / n if n else 0.0, "qd_start": start_qd,
                "qd_end": end["qd_score"], "qd_per_1000": (end["qd_score"] - start_qd) / n * 1000 if n else 0.0,
                "num_elites": end["num_elites"], "wall_s": time.time() - t}

    # -- data -------------------------------------------------------------------------------
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

    # -- one trained arm ----------------------------------------------------------------------
    def train_arm(self, c: Campaign, current: list[Example], source: str, finetune: dict[str, Any]) -> dict[str, Any]:
        # The cpu-1.5b run's first arms trained on TRL's joint tokenization, and every arm of a
        # run trains the same way (set here, not in the campaign's config: its stores resume)
        finetune = {**finetune, "tokenize_apart": False}
        c.config = c.config.model_copy(update={"finetune": c.config.finetune.model_copy(update=finetune)})
        rec = finetune_and_swap(c, current, source) if current is not None else finetune_and_swap(c)
        out: dict[str, Any] = {"round": rec.get("round")}
        if "skipped" in rec:
            out["skipped"] = rec["skipped"]
            return out
        out["train"] = {k: rec[k] for k in ("n_examples", "n_new_examples", "mix", "anchors", "data_hash", "metrics")}
        out["rescore"] = rec.get("rescore")
        return out

    def progress_file(self, step: str) -> Path:
        """Held-out chunk counts, written straight into the tracked state folder (chunks of
        minutes each survive a new machine, if the snapshot they were measured on does)."""
        return self.state / "progress" / f"{step.replace(':', '_')}.jsonl"

    def measured(self, step: str, arm_dir: str, src: str, after: str | None = None) -> dict[str, Any]:
        """The held-out and phase parts of ``step`` on the campaign in snapshot ``src``; the
        campaign after its phase is snapshotted as ``after`` (the next round starts there)."""
        def heldout() -> dict[str, Any]:
            c = self.campaign(arm_dir, src)
            try:
                return self.heldout(c, step)
            finally:
                c.close()

        def phase() -> dict[str, Any]:
            c = self.campaign(arm_dir, src)
            try:
                out = self.phase(c)
            finally:
                c.close()
            if after:
                self.snapshot(arm_dir, after)
            return out

        return {"heldout": self.part(step, "heldout", heldout), "phase": self.part(step, "phase", phase)}

    def trained(self, step: str, arm_dir: str, src: str, build: Any, after: str | None = None) -> dict[str, Any]:
        """One trained arm: ``build(c)`` gives (examples or None for the archive's, source,
        trainer settings, extra record); trained once into a snapshot, then measured there."""
        snap = f"{step.replace(':', '_')}@trained"

        def train() -> dict[str, Any]:
            c = self.campaign(arm_dir, src)
            try:
                data, source, finetune, extra = build(c)
                self.progress_file(step).unlink(missing_ok=True)  # a new adapter: old counts are void
                out = {**self.train_arm(c, data, source, finetune), **extra}
            finally:
                c.close()
            self.snapshot(arm_dir, snap)
            return out

        out = dict(self.part(step, "train", train))
        out.pop("part_s", None)
        if "skipped" in out:
            if after:  # nothing trained: the next round starts from this round's source
                self.snapshot_of(src, after)
            return out
        return {**out, **self.measured(step, arm_dir, snap, after)}

    # -- the steps --------------------------------------------------------------------------
    def steps(self) -> list[tuple[str, Any]]:
        fixed = {"campaign:base": self.step_base, "arm:base": self.step_arm_base, "arm:elites": self.step_elites,
                 "arm:best_of_n": self.step_best_of_n, "arm:seeds": self.step_seeds,
                 "arm:elites_own": self.step_elites_own, "check:best_of_n": self.step_serving_check,
                 "arm:elites_drop": self.step_elites_drop}
        rounds = [(f"round:{v}:{r}", lambda v=v, r=r: self.step_round(v, r))
                  for v in ("on", "off") for r in range(2, self.p["rounds"] + 1)]
        s = [(name, fixed[name]) for name in FIXED_STEPS] + rounds
        assert [name for name, _ in s] == step_names(self.p)
        return s

    def step_base(self) -> dict[str, Any]:
        self.expect("campaign:base", "campaign:base")
        c = self.campaign("base", fresh=False)  # an interrupted campaign resumes from its store
        try:
            t = time.time()
            c.run(on_iteration=lambda _: self.mirror_campaign("base"))  # hours: mirrored as it goes
            its = [i for i in c.store.iterations() if i["iteration"] >= 1]  # generated, not the seeds
            n, valid = sum(i["candidates"] for i in its), sum(i["valid"] for i in its)
            ids = [e["candidate_id"] for e in c.archive.elites()]
            evolved = sum(not cand.is_seed for cand in c.store.get(ids).values())
            out = {"samples": n, "valid": valid, "valid_rate": valid / n if n else 0.0, **c.archive.stats(),
                   "evolved_elites": evolved, "wall_s": time.time() - t}
        finally:
            c.close()
        self.snapshot("base", "s0")
        shutil.rmtree(self.state / "base", ignore_errors=True)  # s0 is mirrored in its place
        return out

    def step_arm_base(self) -> dict[str, Any]:
        return {"round": 0, **self.measured("arm:base", "arm-base", "s0")}

    def step_elites(self, filters: dict[str, Any] | Any = None, step: str = "arm:elites",
                    arm_dir: str = "arm-elites", after: str | None = "elites@1") -> dict[str, Any]:
        """Arm 3 and its variants: ``filters`` (FinetuneConfig fields, or a function of the
        campaign giving them) choose the elites; seed examples fill up to the same count."""
        def build(c: Campaign):
            n = self.budget(c)
            chosen = (filters(c) if callable(filters) else filters) or {}
            cfg = c.config.finetune.model_copy(update=chosen)
            elites = archive_examples(c.store, c.archive, c.domain, cfg, 1, self.seed, self.count)
            elites = elites[: n - max(1, int(np.ceil(self.p["seed_share"] * n)))]  # a seed share stays
            data = elites + self.seed_examples(c, n - len(elites))
            return data, "archive", anchors(self.p, on=True, round1=True), {
                "data": {"elite_examples": len(elites), "seed_examples": n - len(elites), **chosen}}

        return self.trained(step, arm_dir, "s0", build, after=after)

    def step_elites_own(self) -> dict[str, Any]:
        return self.step_elites(OWN_FILTERS, "arm:elites_own", "arm-elites_own", after=None)

    def step_elites_drop(self) -> dict[str, Any]:
        """Arm 3b's control: as many elites as 3b keeps, drawn at random (seeded) instead of by
        the filters, so that 3b and this arm hold the same numbers of elite and seed examples."""
        def filters(c: Campaign) -> dict[str, Any]:
            own = archive_examples(c.store, c.archive, c.domain, c.config.finetune.model_copy(update=OWN_FILTERS),
                                   1, self.seed, self.count)
            return {"max_examples": max(1, len({e.candidate_id for e in own}))}

        return self.step_elites(filters, "arm:elites_drop", "arm-elites_drop", after=None)

    def step_best_of_n(self) -> dict[str, Any]:
        n_elite_ex = self.res["steps"]["arm:elites"]["data"]["elite_examples"]

        def sample() -> dict[str, Any]:
            c = self.campaign("arm-best_of_n", "s0")
            try:
                items, stats = self.best_of_n(c, (n_elite_ex + 1) // 2) if n_elite_ex else ([], {"items": 0})
            finally:
                c.close()
            return {"items": items, "stats": stats}

        if n_elite_ex:
            self.expect("arm:best_of_n/sample", "best_of_n")
        drawn = self.part("arm:best_of_n", "sample", sample)

        def build(c: Campaign):
            n = self.budget(c)
            rng = np.random.default_rng([self.seed, 1, 1])
            bon = item_examples(c.domain, [(None, it) for it in drawn["items"]], "best_of_n", seeds=c.domain.seeds(),
                                n_shots=1, solve=True, max_length=self.p["max_length"], rng=rng, count=self.count,
                                round=1)[:n_elite_ex]
            data = bon + self.seed_examples(c, n - len(bon))
            return data, "best_of_n", anchors(self.p, on=True, round1=True), {
                "data": {"best_of_n_examples": len(bon), "seed_examples": n - len(bon), "sampling": drawn["stats"]}}

        return self.trained("arm:best_of_n", "arm-best_of_n", "s0", build)

    def step_serving_check(self) -> dict[str, Any]:
        """Arm 4's trained adapter measured again, served as this run serves it now: a control
        for the arms measured after the switch to ``--lora-serving merge`` (the merged weights
        and the LoRA request compute the same function, up to bfloat16 rounding)."""
        def heldout() -> dict[str, Any]:
            c = self.campaign("arm-best_of_n-check", "arm_best_of_n@trained")
            try:
                return self.heldout(c, "check:best_of_n")
            finally:
                c.close()

        return {"round": 1, "heldout": self.part("check:best_of_n", "heldout", heldout)}

    def step_seeds(self) -> dict[str, Any]:
        def build(c: Campaign):
            n = self.budget(c)
            return self.seed_examples(c, n), "seed", anchors(self.p, on=True, round1=True), {
                "data": {"seed_examples": n}}

        return self.trained("arm:seeds", "arm-seeds", "s0", build)

    def step_round(self, variant: str, r: int) -> dict[str, Any]:
        src = "elites@1" if r == 2 else f"{variant}@{r - 1}"

        def build(c: Campaign):
            return None, "archive", anchors(self.p, on=variant == "on"), {"anchors": variant}

        return self.trained(f"round:{variant}:{r}", f"arm-elites-{variant}", src, build, after=f"{variant}@{r}")

    def run(self, deadline: float | None = None) -> bool:
        """Runs the unfinished steps in order; stops before a step once ``deadline`` (a
        ``time.time()``) has passed. True when every step is done."""
        for name, fn in self.steps():
            if name in self.res["steps"]:
                continue
            if deadline is not None and time.time() > deadline:
                print(f"paused before {name} (time budget)", flush=True)
                return False
            t = time.time()
            value = fn()
            value["step_s"] = time.time() - t
            self.save(name, value)
        return True


def machine() -> str:
    try:
        import torch

        gpu = f"; GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "; no GPU"
    except ImportError:
        gpu = ""
    return f"{cpu_model()}, flags: {cpu_flags()}, load {load_average()}{gpu}"


def short(v: dict[str, Any]) -> str:
    h = v.get("heldout") or {}
    return json.dumps({k: v[k] for k in ("valid_rate", "num_elites", "skipped", "step_s") if k in v}
                      | {k: h[k] for k in h if k.startswith("pass@") and not k.endswith("_ci")})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="cpu")
    ap.add_argument("--work", help="campaign dirs (default $EVO_CACHE_DIR/runs/self_improve_<size>, "
                                   "~/.cache/evo when unset: outside the work tree)")
    ap.add_argument("--results", default=str(RESULTS), help="folder for self_improve_<size>.json/.md")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompt-style", default="completion", choices=list(PROMPT_STYLES))
    ap.add_argument("--backend", choices=["transformers", "ctranslate2", "vllm"], help="generation engine (default: the size's)")
    ap.add_argument("--budget-s", type=float, default=None, help="start no new step after this many seconds")
    ap.add_argument("--lora-serving", choices=["request", "merge"], default="request",
                    help="vLLM: serve a trained arm as a LoRA request, or merged into a copy of the weights "
                         "(3.5-4x faster generation on CPU; recorded per held-out step)")
    ap.add_argument("--fresh", action="store_true", help="discard finished steps and start over")
    a = ap.parse_args(argv)
    work = Path(a.work or cache_dir() / "runs" / f"self_improve_{a.size}")
    results = Path(a.results)
    if a.fresh:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(results / f"self_improve_{a.size}.state", ignore_errors=True)
        (results / f"self_improve_{a.size}.json").unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    exp = Experiment(a.size, work, results, a.seed, a.prompt_style, {"backend": a.backend} if a.backend else None,
                     a.lora_serving)
    done = exp.run(time.time() + a.budget_s if a.budget_s is not None else None)
    print(("finished: " if done else "unfinished, run again to resume: ") + str(exp.md_path), flush=True)
    return 0 if done else 3


if __name__ == "__main__":
    sys.exit(main())

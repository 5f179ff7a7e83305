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
and off (the current elites alone), each round followed by an evolution phase. Then data
*added* to the seeds instead of swapped in (arms 2-4 trade seed examples for generated ones):
  5. ``seeds+elites_own``: every seed example of arm 2 + arm 3b's elite examples;
  6. ``seeds+best_of_n``: every seed example of arm 2 + as many of arm 4's examples, by item.

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
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from peft.utils import SAFETENSORS_WEIGHTS_NAME
from self_improve_plan import (
    OWN_FILTERS,
    SIZES,
    anchors,
    make_config,
    step_names,
)
from self_improve_sources import ArmSources, by_item
from self_improve_state import MIRROR_MAX_BYTES

from domains.p3.heldout import PROMPT_STYLES
from evo.campaign import Campaign
from evo.descriptor import Embedder
from evo.errors import EvoError
from evo.finetune import archive_examples, finetune_and_swap
from evo.finetune.data import Example, item_examples
from evo.finetune.rounds import ADAPTERS, current_adapter
from evo.finetune.train import token_counter
from evo.heldout import evaluate
from evo.llm import load_generator
from evo.llm.embedded import cache_dir

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
__all__ = ["MIRROR_MAX_BYTES", "SIZES", "Experiment", "by_item", "main", "step_names"]


class Experiment(ArmSources):
    """The steps, their shared pieces (base model, embedder, puzzles) and the results file."""

    def __init__(self, size: str, work: Path, results: Path, seed: int = 0, prompt_style: str = "completion",
                 overrides: dict[str, Any] | None = None, lora_serving: str = "request",
                 steps: list[str] | None = None) -> None:
        p = {**SIZES[size], **(overrides or {})}
        self.seed, self.style = seed, prompt_style
        self.lora_serving = lora_serving  # how vLLM serves an arm's adapter; not in the plan (same function)
        self.cfg = make_config(p, seed)
        plan = {"size": size, "seed": seed, "prompt_style": prompt_style, **p}
        check_steps(p, steps)
        # wanted: the named steps (plus what a lost snapshot makes them need, added by RunState)
        super().__init__(size, work, results, plan, p, set(steps) if steps else None)
        self._llm = self._embedder = None
        self.count = token_counter(self.cfg.generator.model)

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
            if "skipped" not in out:
                self.keep_data(step)
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
        """The plan's steps (``step_names``) with the method that runs each."""
        fixed = {"campaign:base": self.step_base, "arm:base": self.step_arm_base, "arm:elites": self.step_elites,
                 "arm:best_of_n": self.step_best_of_n, "arm:seeds": self.step_seeds,
                 "arm:elites_own": self.step_elites_own, "check:best_of_n": self.step_serving_check,
                 "arm:elites_drop": self.step_elites_drop}

        def runner(name: str) -> Any:
            if name.startswith("round:"):
                _, variant, r = name.split(":")
                return lambda: self.step_round(variant, int(r))
            if name.startswith("arm:seeds+"):
                return lambda: self.step_seeds_plus(name.removeprefix("arm:seeds+"))
            return fixed[name]

        return [(name, runner(name)) for name in step_names(self.p)]

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

    def elite_examples(self, c: Campaign, filters: dict[str, Any], *, capped: bool = True) -> list[Example]:
        """The archive's elite examples that ``filters`` (FinetuneConfig fields) keep, as arm 3
        and its variants take them: capped, a seed share of the budget stays for seed examples."""
        elites = archive_examples(c.store, c.archive, c.domain, c.config.finetune.model_copy(update=filters), 1,
                                  self.seed, self.count)
        n = self.budget(c)
        return elites[: n - max(1, int(np.ceil(self.p["seed_share"] * n)))] if capped else elites

    def step_elites(self, filters: dict[str, Any] | Any = None, step: str = "arm:elites",
                    arm_dir: str = "arm-elites", after: str | None = "elites@1") -> dict[str, Any]:
        """Arm 3 and its variants: ``filters`` (FinetuneConfig fields, or a function of the
        campaign giving them) choose the elites; seed examples fill up to the same count."""
        def build(c: Campaign):
            n = self.budget(c)
            chosen = (filters(c) if callable(filters) else filters) or {}
            elites = self.elite_examples(c, chosen)
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
            own = self.elite_examples(c, OWN_FILTERS, capped=False)
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
        if not (self.work / "snap" / "arm_best_of_n@trained" / ADAPTERS / "round-1" / SAFETENSORS_WEIGHTS_NAME).is_file():
            # the snapshot (or its weights) did not come to this machine: nothing to measure again
            return {"round": 1, "skipped": "arm 4's adapter went with its machine"}

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

    def step_seeds_plus(self, added: str) -> dict[str, Any]:
        """Arms 5 and 6: arm 2's seed examples, all of them, with generated data *added* instead
        of swapped in: arm 3b's elite examples (``elites_own``), or as many of arm 4's best-of-N
        examples, drawn by item (``best_of_n``). Arms 2-4 trade seed examples for generated ones,
        and a seed example is worth more; here both arms keep every seed example and add the same
        number of examples, so against arm 2 they ask whether the data adds anything to the real
        examples, and against each other whose data adds more."""
        def build(c: Campaign):
            n = self.budget(c)
            own = self.elite_examples(c, OWN_FILTERS)  # as arm 3b took them
            if added == "elites_own":
                extra = own
            else:
                bon = [e for e in self.arm_data("arm:best_of_n") if e.source == "best_of_n"]
                extra = by_item(bon, len({e.key for e in own}), [self.seed, 5, 6])[: len(own)]
            data = self.seed_examples(c, n) + extra
            return data, "archive" if added == "elites_own" else "best_of_n", anchors(self.p, on=True, round1=True), {
                "data": {"seed_examples": n, f"{added}_examples": len(extra)}}

        return self.trained(f"arm:seeds+{added}", f"arm-seeds+{added}", "s0", build)

    def step_round(self, variant: str, r: int) -> dict[str, Any]:
        src = "elites@1" if r == 2 else f"{variant}@{r - 1}"

        def build(c: Campaign):
            return None, "archive", anchors(self.p, on=variant == "on"), {"anchors": variant}

        return self.trained(f"round:{variant}:{r}", f"arm-elites-{variant}", src, build, after=f"{variant}@{r}")

    def run(self, deadline: float | None = None) -> bool:
        """Runs the unfinished steps in order (only the wanted ones, where ``--steps`` named
        some); stops before a step once ``deadline`` (a ``time.time()``) has passed. True when
        every step it was to run is done."""
        for name, fn in self.steps():
            if name in self.res["steps"] or (self.wanted is not None and name not in self.wanted):
                continue
            if deadline is not None and time.time() > deadline:
                print(f"paused before {name} (time budget)", flush=True)
                return False
            t = time.time()
            value = fn()
            value["step_s"] = time.time() - t
            self.save(name, value)
        return True


def check_steps(p: dict[str, Any], steps: list[str] | None) -> None:
    """One clear error for a step name that is not in the plan of settings ``p``."""
    unknown = sorted(set(steps or ()) - set(step_names(p)))
    if unknown:
        raise EvoError(f"unknown step {', '.join(unknown)}; the plan's steps: {', '.join(step_names(p))}")


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
    ap.add_argument("--steps", type=lambda v: [x for x in v.split(",") if x],
                    help="comma-separated steps to run now, in plan order (default: every unfinished one); "
                         "a finished step they need whose snapshot is lost is done again first")
    ap.add_argument("--fresh", action="store_true", help="discard finished steps and start over")
    a = ap.parse_args(argv)
    try:  # before --fresh deletes anything
        check_steps(SIZES[a.size], a.steps)
    except EvoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    work = Path(a.work or cache_dir() / "runs" / f"self_improve_{a.size}")
    results = Path(a.results)
    if a.fresh:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(results / f"self_improve_{a.size}.state", ignore_errors=True)
        (results / f"self_improve_{a.size}.json").unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    exp = Experiment(a.size, work, results, a.seed, a.prompt_style, {"backend": a.backend} if a.backend else None,
                     a.lora_serving, a.steps)
    done = exp.run(time.time() + a.budget_s if a.budget_s is not None else None)
    print(("finished: " if done else "unfinished, run again to resume: ") + str(exp.md_path), flush=True)
    return 0 if done else 3


if __name__ == "__main__":
    sys.exit(main())

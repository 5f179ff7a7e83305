"""LMSI on math (issue 33, item 1): Huang et al.'s "Large Language Models Can Self-Improve"
at small scale, measured on a labelled held-out set with exact answers.

Usage:
    python experiments/lmsi_math.py --size cpu    # the real run: ~1.75-2.5 h on an idle 2-core box
    python experiments/lmsi_math.py --size tiny   # plumbing only (smollm2-135m), ~2-3 min idle

The real run: generator ``qwen2.5-coder-1.5b`` on vLLM's CPU build (~60 tokens/s batched);
128 train questions x 8 chains (~25 min), threshold choice (instant), test evaluation of the
base on 200 questions, greedy + 4 samples each (~25 min), one LoRA round on at most 160
kept chains (batch 2 x grad_accum 4, ~0.1-0.2 examples/s: ~15-30 min), test evaluation of
the tuned model (~30 min, vLLM with LoRA is slower). Each step prints its own estimate; they add
to ~100 min at those speeds, and the LoRA speed range and the LoRA engine's slowdown are the
uncertainty. The tiny size took ~25 min on this box under a load average of 10-16 (other
experiments), where the 135M generated a few tokens per second.

Steps (results written to experiments/results/lmsi_math[_tiny].json/.md after each; a rerun
continues, ``--fresh`` restarts; every sampling step is chunked and resumes mid-step):
  1. ``data``: train questions (unlabelled for the loop) and test questions from the
     templated held-out set (domains/math_sc/wordgen.py), checked disjoint from each other
     and from the math_sc seeds by normalised text;
  2. ``sample:train``: ``samples`` chain-of-thought answers per train question from the base
     generator (the math domain's few-shot solve prompt, temperature 0.7 as Huang et al.);
  3. ``threshold``: the vote-share threshold chosen on *train* questions against their true
     labels (domains/math_sc/selfconsistency.py: max correct - wrong labels kept);
  4. ``eval:base``: test accuracy of the base: greedy (``evo.heldout.evaluate``, n = 1,
     temperature 0), sampled pass@1 and self-consistency (majority of ``test_samples``);
  5. ``train``: one LoRA round (``train_lora``) on the chains agreeing with the majority on
     questions at or above the threshold (at most ``max_per_question`` each);
  6. ``eval:tuned``: step 4 with the adapter.
The report adds 95% bootstrap intervals over questions and paired comparisons (tuned minus
base, same questions: experiments/stats.py). The test split's labels are read only by the
evaluation steps; the train labels only by step 3.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_flags, cpu_model, load_average
from resumable import Steps, sample_chunked
from stats import bootstrap_ci, paired_bootstrap

from domains.math_sc import MathDomain
from domains.math_sc.exact import solve_prompt
from domains.math_sc.selfconsistency import Vote, choose_threshold, keep_chains, vote
from domains.math_sc.wordgen import normalise, problems
from evo.config import FinetuneConfig
from evo.errors import EvoError
from evo.finetune.data import Example
from evo.heldout import evaluate
from evo.llm import SamplingParams, load_generator

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"

SIZES: dict[str, dict[str, Any]] = {
    "cpu": dict(model="qwen2.5-coder-1.5b", backend="vllm", batch_size=32, train_questions=128, samples=8,
                temperature=0.7, test=200, test_samples=4, max_new_tokens=128, chunk=16, max_per_question=4,
                max_train=160, epochs=1.0, max_steps=-1, train_batch=2, grad_accum=4, lr=2e-4, max_length=384,
                check_steps=True, fallback=False, tok_s=60.0, train_ex_s=0.12, chain_tokens=80, load_s=90),
    "tiny": dict(model="smollm2-135m", backend="transformers", batch_size=8, train_questions=4, samples=3,
                 temperature=0.7, test=4, test_samples=2, max_new_tokens=40, chunk=2, max_per_question=2,
                 max_train=4, epochs=1.0, max_steps=1, train_batch=2, grad_accum=1, lr=5e-4, max_length=320,
                 check_steps=True, fallback=True, tok_s=40.0, train_ex_s=2.0, chain_tokens=40, load_s=15),
}


def machine() -> str:
    return f"{cpu_model()}, flags: {cpu_flags()}, load {load_average()}"


class LMSI:
    def __init__(self, size: str, work: Path, results: Path, seed: int = 0, fresh: bool = False,
                 overrides: dict[str, Any] | None = None) -> None:
        self.size, self.work, self.seed = size, work, seed
        self.p = {**SIZES[size], **(overrides or {})}
        self.domain = MathDomain()
        self.shots = self.domain.seeds()[: self.domain.solve_shots]
        stem = "lmsi_math" if size == "cpu" else f"lmsi_math_{size}"
        self.steps = Steps(results / f"{stem}.json", results / f"{stem}.md", {"size": size, "seed": seed, **self.p},
                           work, report=write_report, machine=machine, fresh=fresh)
        self._llm: Any = None
        self._llm_key: str | None = None

    # -- the generator, loaded once per (model, adapter) and dropped before training ----------
    def llm(self, adapter: str | None = None) -> Any:
        if self._llm is None or self._llm_key != (adapter or ""):
            self.release()
            self._llm = load_generator(self.p["backend"], self.p["model"], adapter=adapter,
                                       batch_size=self.p["batch_size"])
            self._llm_key = adapter or ""
        return self._llm

    def release(self) -> None:
        if self._llm is not None:
            from evo.finetune.train import free_memory

            self._llm = None
            gc.collect()
            free_memory()

    # -- expected times, from the size's measured speeds ---------------------------------------
    def gen_s(self, questions: int, n: int) -> float:
        return self.p["load_s"] + questions * n * self.p["chain_tokens"] / self.p["tok_s"]

    def plan(self) -> list[tuple[str, Any, float]]:
        p = self.p
        eval_s = self.gen_s(p["test"], 1 + p["test_samples"])
        return [("data", self.step_data, 5), ("sample:train", self.step_sample, self.gen_s(p["train_questions"], p["samples"])),
                ("threshold", self.step_threshold, 1), ("eval:base", lambda: self.step_eval(None), eval_s),
                ("train", self.step_train, p["load_s"] + p["max_train"] * p["epochs"] / p["train_ex_s"]),
                ("eval:tuned", lambda: self.step_eval(str(self.work / "adapter")), eval_s * 1.2)]

    # -- steps -------------------------------------------------------------------------------
    def train_items(self) -> list[dict[str, Any]]:
        return problems("train", self.p["train_questions"], self.seed)

    def step_data(self) -> dict[str, Any]:
        train, test = problems("train"), problems("test")
        seeds = {normalise(s["question"]) for s in self.domain.seeds()}
        tr, te = {normalise(x["question"]) for x in train}, {normalise(x["question"]) for x in test}
        overlaps = {"train_test": len(tr & te), "train_seeds": len(tr & seeds), "test_seeds": len(te & seeds),
                    "shared_instances": len({x["key"] for x in train} & {x["key"] for x in test})}
        if any(overlaps.values()):
            raise EvoError(f"the held-out splits overlap: {overlaps}")
        used = self.train_items()
        return {"train_pool": len(train), "test_pool": len(test), "train_questions": len(used),
                "test_questions": self.p["test"], "overlaps": overlaps,
                "steps_histogram": {str(k): sum(x["steps"] == k for x in used) for k in (2, 3, 4)}}

    def chains(self) -> list[list[str]]:
        items, p = self.train_items(), self.p
        params = SamplingParams(n=p["samples"], temperature=p["temperature"], top_p=0.95,
                                max_new_tokens=p["max_new_tokens"], stop=self.domain.stop, seed=self.seed)
        prompts = [solve_prompt(x["question"], "completion", self.shots) for x in items]
        return sample_chunked(_Lazy(self.llm), prompts, [x["id"] for x in items], params, self.work / "train_chains.jsonl",
                              p["chunk"])

    def step_sample(self) -> dict[str, Any]:
        t = time.time()
        votes = [vote(c) for c in self.chains()]
        return {"votes": [v.to_json() for v in votes], "labelled": sum(v.label is not None for v in votes),
                "unreadable_chains": sum(a is None for v in votes for a in v.answers), "sample_s": time.time() - t}

    def votes(self) -> list[Vote]:
        return [Vote(**v) for v in self.steps.done["sample:train"]["votes"]]

    def step_threshold(self) -> dict[str, Any]:
        return choose_threshold(self.votes(), [x["answer"] for x in self.train_items()])

    def examples(self) -> tuple[list[Example], dict[str, Any]]:
        items, votes, chains = self.train_items(), self.votes(), self.chains()
        threshold = self.steps.done["threshold"]["threshold"]
        ex, kept_q, right_q, right_c = [], 0, 0, 0
        for item, v, cs in zip(items, votes, chains):
            kept = keep_chains(cs, v, threshold, check_steps=self.p["check_steps"],
                               max_per_question=self.p["max_per_question"])
            if kept:
                kept_q += 1
                right_q += v.label == item["answer"]  # diagnostics only: the loop never reads these
                right_c += len(kept) * (v.label == item["answer"])
            prompt = solve_prompt(item["question"], "completion", self.shots)
            ex += [Example(prompt, " " + c + "\n\n", "solve", "lmsi", normalise(item["question"])) for c in kept]
        info = {"threshold": threshold, "questions_kept": kept_q, "label_precision": right_q / kept_q if kept_q else None,
                "chains_kept": len(ex), "chain_precision": right_c / len(ex) if ex else None}
        if not ex and self.p["fallback"]:  # tiny only: exercise training even when nothing agrees
            ex = [Example(solve_prompt(it["question"], "completion", self.shots), " " + c[0].strip() + "\n\n",
                          "solve", "fallback", normalise(it["question"])) for it, c in zip(items, chains)]
            info["fallback"] = "plumbing only: no chain reached the threshold, trained on the first chain of each"
        rng = np.random.default_rng([self.seed, 33])
        order = rng.permutation(len(ex))
        return [ex[i] for i in order][: self.p["max_train"]], info

    def step_train(self) -> dict[str, Any]:
        from evo.finetune.train import train_lora

        ex, info = self.examples()
        if not ex:
            return {**info, "skipped": "no chain reached the threshold"}
        self.release()  # the engine's memory goes back before the trainer loads the model
        p = self.p
        cfg = FinetuneConfig(epochs=p["epochs"], max_steps=p["max_steps"], lr=p["lr"], batch_size=p["train_batch"],
                             grad_accum=p["grad_accum"], max_length=p["max_length"], kl_coef=0.0)
        out = self.work / "adapter"
        if out.exists():
            shutil.rmtree(out)
        rec = train_lora(p["model"], ex, out, cfg, seed=self.seed)
        return {**info, "n_examples": len(ex), **rec}

    def step_eval(self, adapter: str | None) -> dict[str, Any]:
        if adapter is not None and "skipped" in self.steps.done.get("train", {}):
            return {"skipped": "nothing was trained"}
        p, tag = self.p, "tuned" if adapter else "base"
        bench = self.domain.benchmark("test", p["test"], 0, "completion")
        gold = bench.meta["answers"]
        llm = self.llm(adapter)
        greedy = evaluate(llm, bench, None, n=1, ks=[1], temperature=0.0, seed=self.seed,
                          max_new_tokens=p["max_new_tokens"], progress=self.work / f"{tag}_greedy.jsonl", chunk=p["chunk"])
        params = SamplingParams(n=p["test_samples"], temperature=p["temperature"], top_p=0.95,
                                max_new_tokens=p["max_new_tokens"], stop=bench.stop, seed=self.seed + 1)
        texts = sample_chunked(llm, bench.prompts, bench.ids, params, self.work / f"{tag}_sampled.jsonl", p["chunk"])
        checks = bench.check(texts, None)
        per_q = [sum(row) / len(row) for row in checks]
        votes = [vote(row) for row in texts]
        maj = [float(v.label is not None and v.label == g) for v, g in zip(votes, gold)]
        g = [float(c) for c in greedy["correct"]]
        return {"ids": bench.ids, "greedy": {"acc": float(np.mean(g)), "ci": list(bootstrap_ci(g)), "correct": g},
                "sampled": {"pass@1": float(np.mean(per_q)), "ci": list(bootstrap_ci(per_q)), "per_question": per_q,
                            "n": p["test_samples"]},
                "self_consistency": {"acc": float(np.mean(maj)), "ci": list(bootstrap_ci(maj)), "correct": maj,
                                     "no_label": sum(v.label is None for v in votes)},
                "unreadable": sum(a is None for v in votes for a in v.answers)}


class _Lazy:
    """Loads the generator on the first generate(): reading back finished chunks loads nothing."""

    def __init__(self, load: Any) -> None:
        self.load = load

    def generate(self, prompts: list[str], params: SamplingParams) -> Any:
        return self.load().generate(prompts, params)


# -- the report ----------------------------------------------------------------------------------
MEASURES = [("greedy", "acc", "correct", "greedy accuracy (n = 1, temperature 0)"),
            ("sampled", "pass@1", "per_question", "sampled pass@1"),
            ("self_consistency", "acc", "correct", "self-consistency (majority of the samples)")]


def write_report(res: dict[str, Any], path: Path) -> None:
    s, p = res["steps"], res["plan"]
    lines = [f"# LMSI on math ({p['size']})", "",
             f"Generator `{p['model']}` ({p['backend']}); {p['train_questions']} unlabelled train questions x "
             f"{p['samples']} chains; test: {p['test']} questions of the templated held-out set, greedy + "
             f"{p['test_samples']} samples at temperature {p['temperature']}. {res.get('date', '')}; {res.get('machine', '')}.", ""]
    if "threshold" in s:
        t = s["threshold"]
        lines += ["## Threshold (chosen on train questions)", "", f"Rule: {t['rule']}. Chosen: **{t['threshold']}**.", "",
                  "| threshold | labels kept | correct | precision | net |", "|---|---|---|---|---|"]
        for r in t["table"]:
            prec = "-" if r["precision"] is None else f"{r['precision']:.3f}"
            lines.append(f"| {r['threshold']:.3f} | {r['kept']} | {r['correct']} | {prec} | {r['net']} |")
        lines.append("")
    if "train" in s:
        tr = s["train"]
        m = tr.get("metrics", {})
        lines += ["## Training data", "", f"{tr.get('chains_kept', 0)} chains from {tr.get('questions_kept', 0)} questions "
                  f"(label precision {tr.get('label_precision')}, chain precision {tr.get('chain_precision')}); "
                  + (tr.get("skipped") or tr.get("fallback") or
                     f"trained on {tr.get('n_examples')}, loss {m.get('first_loss')} -> {m.get('last_loss')}, "
                     f"{m.get('train_s', 0):.0f} s"), ""]
    rows = [(name, s.get(step)) for name, step in (("base", "eval:base"), ("tuned", "eval:tuned"))]
    rows = [(n, v) for n, v in rows if v and "skipped" not in v]
    if rows:
        lines += ["## Test accuracy (95% bootstrap intervals over questions)", "",
                  "| model | " + " | ".join(m[3] for m in MEASURES) + " |", "|---" * (len(MEASURES) + 1) + "|"]
        for name, v in rows:
            cells = [f"{v[k][stat]:.3f} [{v[k]['ci'][0]:.3f}, {v[k]['ci'][1]:.3f}]" for k, stat, _, _ in MEASURES]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if len(rows) == 2:
        base, tuned = rows[0][1], rows[1][1]
        lines += ["## Paired: tuned - base (same questions)", "", "| measure | difference [95% CI] | p (bootstrap) | "
                  "wins / losses |", "|---|---|---|---|"]
        for k, _, per, label in MEASURES:
            d = paired_bootstrap(tuned[k][per], base[k][per])
            lines.append(f"| {label} | {d['mean_diff']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] | "
                         f"{d['p_boot']:.3f} | {d['wins']} / {d['losses']} |")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="cpu")
    ap.add_argument("--work", help="working folder (default runs/lmsi_math_<size>)")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", choices=["transformers", "vllm", "ctranslate2"], help="default: the size's")
    ap.add_argument("--budget-s", type=float, default=None, help="start no new step after this many seconds")
    ap.add_argument("--fresh", action="store_true", help="discard finished steps and start over")
    a = ap.parse_args(argv)
    work = Path(a.work or ROOT / "runs" / f"lmsi_math_{a.size}")
    try:
        exp = LMSI(a.size, work, Path(a.results), a.seed, a.fresh, {"backend": a.backend} if a.backend else None)
        done = exp.steps.run(exp.plan(), time.time() + a.budget_s if a.budget_s is not None else None)
    except EvoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(("finished: " if done else "unfinished, run again to resume: ") + str(exp.steps.md_path), flush=True)
    return 0 if done else 3


if __name__ == "__main__":
    sys.exit(main())

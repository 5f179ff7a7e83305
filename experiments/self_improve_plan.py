"""The plan of experiments/self_improve.py: the sizes (every setting a run's results are keyed
by), the expected minutes per step, the steps in order, and the campaign and trainer settings
every arm shares."""

from __future__ import annotations

from typing import Any

from evo.config import CampaignConfig

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


# Arms 5 and 6, after the rounds: every seed example of arm 2 plus generated data of each kind
ADDED_TO_SEEDS = ("elites_own", "best_of_n")


def step_names(p: dict[str, Any]) -> list[str]:
    """The plan's steps in run order: the fixed arms, rounds 2.. of the anchored and unanchored
    runs, then the arms that add generated data to the seeds."""
    return [*FIXED_STEPS, *(f"round:{v}:{r}" for v in ("on", "off") for r in range(2, p["rounds"] + 1)),
            *(f"arm:seeds+{a}" for a in ADDED_TO_SEEDS)]


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

"""Search as a policy-improvement operator: best-of-N, beam search and best-first search at
equal generated tokens (issue 33, loop 3).

Usage (resumable: each finished run is appended to the results at once and skipped by a
rerun; an unfinished run's campaign directory is resumed, not restarted):
    python experiments/search_operators.py --config experiments/configs/p3_cpu.yaml --tokens 40000 --seeds 0 1 2 3 4

Every arm runs the same config (model, archive, operators, ``prompts_per_iteration x
samples_per_prompt`` samples per iteration) and differs only in ``strategy``:

- ``best_of_n``: N = ``samples_per_prompt`` samples of each seed-parented prompt, the fittest kept;
- ``beam``: ``strategy.kind=beam`` (:mod:`evo.search`), width ``prompts_per_iteration / 2``,
  ``samples_per_prompt`` expansions per node, depth 2 (the same samples per iteration), or
  ``--shape W E D``;
- ``best_first``: value-guided best-first search of the same shape (value: fitness plus the
  child's QD-score increment, with a UCB bonus);
- ``plain`` (``--arms ... plain``): best-of-N's prompts with every valid sample kept, which
  separates "search" from "keeping more" (the search arms offer every valid child).

**Equal generated tokens.** A run stops after the first iteration at which the tokens its
generator produced (proposals, ``tokens``, plus solve attempts, ``score_tokens``; the seeds'
scoring, the same in every arm, not counted) reach ``--tokens``. Numbers "at T" are read off
each run's curve by linear interpolation between iterations at exactly T tokens: QD-score
gained over the seed archive, the best fitness of an evolved (non-seed) valid child so far,
and the valid rate; the tokens a run really spent are reported beside them. Per arm: mean
and 95% bootstrap interval over seeds; against best-of-N: mean paired difference, wins/losses
and the exact sign-flip p over seeds (5 seeds: smallest possible p 0.0625), Wilcoxon's p from
5 seeds up (experiments/stats.py).

Written: ``experiments/results/search_operators[_TAG].md`` and ``.json`` (one row per run,
with its curve).

**The real run** (not run yet): ``python experiments/search_operators.py --config
experiments/configs/p3_cpu.yaml --tokens 40000 --seeds 0 1 2 3 4`` (the config's
``generator.model=qwen2.5-coder-1.5b`` on vllm). Expected time: about 3 hours on the 2-core
machine: the 1.5B makes ~60 tokens/s, and the demo config's 8 iterations took 655 s (about
80 s and ~5,000 generated tokens an iteration, solve attempts included), so a 40,000-token
run is ~8 iterations, ~11 minutes; 3 arms x 5 seeds = 15 runs, one model load. A smoke run of
the plumbing (135M, one iteration, four prompts; a minute or two):
``python experiments/search_operators.py --tokens 1 --max-iterations 1 --seeds 0 --tag smoke
--results /tmp/search_smoke --out /tmp/search_smoke/runs --set generator.model=smollm2-135m
--set generator.backend=transformers --set prompts_per_iteration=4 --set max_seeds=8
--set domain_options.solve_attempts=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np
from machine import cpu_flags, cpu_model, load_average
from stats import bootstrap_ci, paired_test

from evo.campaign import Campaign
from evo.config import load_config, merge_overrides, parse_overrides
from evo.descriptor import Embedder
from evo.errors import EvoError
from evo.llm import load_from_config

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("best_of_n", "beam", "best_first", "plain")
DEFAULT_ARMS = ("best_of_n", "beam", "best_first")
BASELINE = "best_of_n"


def shape_for(cfg, shape: list[int] | None) -> dict[str, int]:
    """The search arms' width, expansions and depth: ``--shape``, else (P/2, S, 2)."""
    per = cfg.prompts_per_iteration * cfg.samples_per_prompt
    w, e, d = shape or (cfg.prompts_per_iteration // 2, cfg.samples_per_prompt, 2)
    if w * e * d != per or min(w, e, d) < 1:
        raise EvoError(f"search shape {w}x{e}x{d} must multiply to prompts_per_iteration x samples_per_prompt "
                       f"= {per}; pass --shape W E D")
    return {"beam_width": w, "beam_expansions": e, "beam_depth": d}


def strategy_for(arm: str, shape: dict[str, int]) -> dict:
    return {"kind": arm, **shape} if arm in ("beam", "best_first") else {"kind": arm}


def spent(iterations: list[dict]) -> int:
    """Generated tokens after the seeds: proposals plus solve attempts."""
    return sum(i["tokens"] + i.get("score_tokens", 0) for i in iterations if i["iteration"] > 0)


def run_arm(args, arm: str, seed: int, shape: dict, shared: dict, generator, embedder) -> dict:
    overrides = merge_overrides(shared, {"seed": seed, "strategy": strategy_for(arm, shape),
                                         "iterations": args.max_iterations})
    cfg = load_config(args.config, overrides)
    out = Path(args.out) / args.name / f"{arm}-{seed}"
    try:  # an unfinished run resumes; a directory of another config starts over
        campaign = Campaign(cfg, out, generator=generator, embedder=embedder)
    except EvoError as exc:
        if "different config" not in str(exc):
            raise
        shutil.rmtree(out)
        campaign = Campaign(cfg, out, generator=generator, embedder=embedder)

    def stop_at_budget(_stats: dict) -> None:
        campaign.stop_requested = spent(campaign.store.iterations()) >= args.tokens

    try:
        stop_at_budget({})
        if not campaign.stop_requested or not campaign.store.iterations():
            campaign.run(on_iteration=stop_at_budget)
        return summarize_run(arm, seed, campaign, args.tokens)
    finally:
        campaign.close()


def summarize_run(arm: str, seed: int, campaign: Campaign, budget: int) -> dict:
    """The run's curve against generated tokens, and its numbers at exactly ``budget`` tokens."""
    iters = campaign.store.iterations()
    best, valid, cands = 0.0, 0, 0
    curve = []  # per iteration: cumulative tokens, QD gained, best evolved fitness, valid, candidates
    for i in iters:
        if i["iteration"] > 0:
            fit = [c.fitness for c in campaign.store.candidates(
                "iteration = ? AND is_seed = 0 AND verdict = 'valid'", (i["iteration"],))]
            best = max([best, *fit])
            valid, cands = valid + i["valid"], cands + i["candidates"]
        curve.append([spent(iters[: len(curve) + 1]), i["qd_score"] - iters[0]["qd_score"], best, valid, cands])
    c = np.asarray(curve, dtype=float)
    at = [float(np.interp(budget, c[:, 0], c[:, k])) for k in range(1, 5)]
    by_depth: dict[str, list[int]] = {}  # depth -> [valid, total] of the search arms' children
    for ch in campaign.store.candidates("is_seed = 0 AND depth IS NOT NULL"):
        v = by_depth.setdefault(str(ch.depth), [0, 0])
        v[0], v[1] = v[0] + (ch.verdict == "valid"), v[1] + 1
    return {"arm": arm, "seed": seed, "budget": budget, "iterations": iters[-1]["iteration"],
            "tokens": int(c[-1, 0]), "gain": at[0], "best": at[1], "valid_rate": at[2] / at[3] if at[3] else 0.0,
            "gain_final": float(c[-1, 1]), "wall_s": sum(i["wall_s"] for i in iters[1:]),
            "by_depth": by_depth, "curve": curve}


def ci(values: list[float], fmt: str, scale: float = 1.0) -> str:
    a = np.asarray(values, dtype=float) * scale
    lo, hi = bootstrap_ci(a) if len(a) > 1 else (a.mean(), a.mean())
    return f"{format(a.mean(), fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def versus(by: dict, arm: str, key: str, seeds: list[int]) -> str:
    paired = [s for s in seeds if (arm, s) in by and (BASELINE, s) in by]
    if arm == BASELINE or not paired:
        return "-"
    t = paired_test([by[arm, s][key] for s in paired], [by[BASELINE, s][key] for s in paired])
    return (f"{t['mean_diff']:+.3f} ({t['wins']}/{t['losses']}, p={t['p_perm']:.2f}"
            + (f", W p={t['p_wilcoxon']:.3f}" if t["p_wilcoxon"] is not None else "") + ")")


def write_results(results: list[dict], args, shape: dict, res_dir: Path) -> None:
    arms = [a for a in ARMS if any(r["arm"] == a for r in results)]
    seeds = sorted({r["seed"] for r in results})
    by = {(r["arm"], r["seed"]): r for r in results}
    flags = "".join(f" --set '{s}'" for s in args.set)
    lines = [
        f"# Search operators at equal generated tokens: {args.name}", "",
        f"Machine: {os.cpu_count()} cores, {cpu_model()}, flags: {cpu_flags()}; load average after: "
        f"{load_average()}. Date: {date.today().isoformat()}.", "",
        f"Command: `python experiments/search_operators.py --config {os.path.relpath(args.config, ROOT)} "
        f"--tokens {args.tokens} --seeds {' '.join(map(str, seeds))} --arms {' '.join(arms)}"
        + (f" --shape {' '.join(map(str, args.shape))}" if args.shape else "") + flags
        + (f" --tag {args.tag}" if args.tag else "") + "`", "",
        f"Search shape: width {shape['beam_width']} x expansions {shape['beam_expansions']} x depth "
        f"{shape['beam_depth']} per iteration. Values at exactly {args.tokens} generated tokens (proposals "
        "and solve attempts), interpolated between iterations; mean [95% bootstrap interval over seeds]. "
        "*vs best-of-N*: mean paired difference over seeds (wins/losses, exact sign-flip p, Wilcoxon p "
        "from 5 seeds up). *best fitness*: the fittest evolved valid child so far.", "",
        "| arm | seeds | QD gained | vs best-of-N | best fitness | vs best-of-N | valid rate | tokens spent "
        "| iterations | valid/total by depth | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        rs = [by[arm, s] for s in seeds if (arm, s) in by]
        depth: dict[str, list[int]] = {}
        for r in rs:
            for d, (v, n) in r["by_depth"].items():
                depth.setdefault(d, [0, 0])
                depth[d][0] += v
                depth[d][1] += n
        lines.append(
            f"| {arm} | {len(rs)} | {ci([r['gain'] for r in rs], '.3f')} | {versus(by, arm, 'gain', seeds)} "
            f"| {ci([r['best'] for r in rs], '.3f')} | {versus(by, arm, 'best', seeds)} "
            f"| {ci([r['valid_rate'] for r in rs], '.1f', 100)}% | {np.mean([r['tokens'] for r in rs]):.0f} "
            f"| {np.mean([r['iterations'] for r in rs]):.1f} "
            f"| {', '.join(f'd{d}: {v}/{n}' for d, (v, n) in sorted(depth.items())) or '-'} "
            f"| {np.mean([r['wall_s'] for r in rs]):.0f} |")
    (res_dir / f"search_operators{args.suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "experiments" / "configs" / "p3_cpu.yaml"))
    ap.add_argument("--tokens", type=int, required=True, help="generated tokens per run (proposals + solve attempts)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(DEFAULT_ARMS))
    ap.add_argument("--shape", type=int, nargs=3, metavar=("W", "E", "D"), default=None,
                    help="search arms' beam_width, beam_expansions, beam_depth (default: P/2, S, 2)")
    ap.add_argument("--max-iterations", type=int, default=200, help="a run stops here even short of --tokens")
    ap.add_argument("--out", default=str(ROOT / "runs" / "search_operators"))
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results"))
    ap.add_argument("--fresh", action="store_true", help="forget finished runs in the results file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every arm")
    ap.add_argument("--tag", default="", help="names this variant: search_operators_<tag>.*")
    args = ap.parse_args()
    args.suffix = f"_{args.tag}" if args.tag else ""
    shared = parse_overrides(args.set)
    base = load_config(args.config, shared)
    args.name = base.domain + args.suffix
    shape = shape_for(base, args.shape)
    res_dir = Path(args.results)
    res_dir.mkdir(parents=True, exist_ok=True)
    path = res_dir / f"search_operators{args.suffix}.json"
    kept = [] if args.fresh or not path.exists() else json.loads(path.read_text())
    other = [r for r in kept if r["budget"] != args.tokens]  # another budget: kept in the file, not compared
    results = [r for r in kept if r["budget"] == args.tokens]
    done = {(r["arm"], r["seed"]) for r in results}
    todo = [(s, a) for s in args.seeds for a in args.arms if (a, s) not in done]
    if todo:
        generator, embedder = load_from_config(base), Embedder(base.descriptor.embedder)
    t0 = time.time()
    for seed, arm in todo:
        r = run_arm(args, arm, seed, shape, shared, generator, embedder)
        results.append(r)
        path.write_text(json.dumps(other + results, indent=1))
        print(json.dumps({k: v for k, v in r.items() if k != "curve"}), flush=True)
    print(f"{len(todo)} runs in {(time.time() - t0) / 60:.1f} min; {len(done)} were already done", flush=True)
    write_results([r for r in results if r["seed"] in args.seeds and r["arm"] in args.arms], args, shape, res_dir)


if __name__ == "__main__":
    main()

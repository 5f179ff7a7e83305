"""Does evolution make better data? MAP-Elites and the baselines at equal sample budgets.

Usage (one domain per invocation; resumable: finished runs are skipped):
    python experiments/compare.py --config experiments/configs/text_feedback_cpu.yaml --samples 512 --seeds 0 1 2
    python experiments/compare.py --config experiments/configs/math_cpu.yaml --samples 512 --seeds 0 1 2
    python experiments/compare.py --config experiments/configs/p3_cpu.yaml --samples 256 --seeds 0 1 2

Every arm runs the same config (model, archive, ``--samples`` generated samples) and differs
only in ``strategy`` (see :mod:`evo.strategy`). One row is one command:
``evo run --config CONFIG --set seed=S --set strategy.kind=K [--set strategy.selection=...]
--set iterations=I``. Each finished run is appended to
``experiments/results/compare_<domain>.json`` at once, so a killed invocation resumes where it
stopped. Written per domain: ``compare_<domain>.md`` (mean and 95% bootstrap interval over
seeds, a paired test of every arm against best-of-N and against the best baseline on the same
seeds, diversity of each arm's
data: mean pairwise embedding distance, Vendi score, distinct items after exact and near
dedup), ``compare_<domain>.png`` (QD-score gained against samples, band: 95% bootstrap
interval of the mean over seeds) and, for text_feedback, ``compare_<domain>_samples.md``
(10 elites of the best MAP-Elites arm beside 10 best-of-N picks, for reading).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from datetime import date
from pathlib import Path

import matplotlib
import numpy as np
from machine import cpu_flags, cpu_model, load_average
from stats import bootstrap_ci, mean_pairwise_distance, paired_test, vendi_score

from archives import CampaignStore
from evo.campaign import Campaign
from evo.config import load_config, merge_overrides, parse_overrides
from evo.descriptor import Embedder
from evo.export import exact_dedup, near_dedup
from evo.llm import load_from_config

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARMS = {  # name -> strategy overrides
    "map_elites": {"kind": "map_elites", "selection": "uniform"},
    "map_elites_curiosity": {"kind": "map_elites", "selection": "curiosity"},
    "map_elites_sparse": {"kind": "map_elites", "selection": "sparse"},
    "plain": {"kind": "plain"},
    "best_of_n": {"kind": "best_of_n"},
    "novelty": {"kind": "novelty"},
}
BASELINE = "best_of_n"
NEAR_DUP = 0.95  # cosine above which two kept items count as one
SHOWN = 10  # items per arm in the hand-check sample


def iterations_for(cfg, samples: int | None) -> int:
    per = cfg.prompts_per_iteration * cfg.samples_per_prompt
    return max(1, math.ceil(samples / per)) if samples else cfg.iterations


def run_arm(config_path: str, arm: str, seed: int, iterations: int, out: Path, generator,
            embedder: Embedder, shared: dict | None = None) -> dict:
    overrides = merge_overrides(shared or {}, {"seed": seed, "strategy": ARMS[arm], "iterations": iterations})
    cfg = load_config(config_path, overrides)
    shutil.rmtree(out, ignore_errors=True)
    campaign = Campaign(cfg, out, generator=generator, embedder=embedder)
    try:
        summary = campaign.run()
        data = final_data(campaign, embedder, seed)
    finally:
        campaign.close()
    store = CampaignStore.open(out)
    iters = store.iterations()
    store.close()
    samples = np.cumsum([i["candidates"] if i["iteration"] > 0 else 0 for i in iters])
    curve = [[int(s), i["qd_score"]] for s, i in zip(samples, iters)]
    return {"arm": arm, "seed": seed, "iterations": iterations, **{k: summary[k] for k in (
        "qd_score", "coverage", "valid_rate", "obj_max", "evolved_elites", "wall_s")},
        "samples": curve[-1][0], "gain": curve[-1][1] - curve[0][1], **data, "curve": curve}


def final_data(campaign: Campaign, embedder: Embedder, seed: int) -> dict:
    """The arm's data beyond the seeds: every valid non-seed item its strategy kept. Diversity
    of it, and a seeded pick of items (archive elites and kept items) for reading."""
    dom = campaign.domain
    kept = list(campaign.store.candidates("is_seed = 0 AND verdict = 'valid' AND add_status >= 0"))
    exact, _ = exact_dedup(kept, dom.key)
    emb = embedder.embed([dom.text(c.item) for c in exact]) if exact else np.zeros((0, 1))
    elite_ids = {e["candidate_id"] for e in campaign.archive.elites()}
    elites = [c for c in kept if c.id in elite_ids]
    rng = np.random.default_rng(seed)

    def pick(cands: list) -> list[dict]:
        idx = sorted(rng.choice(len(cands), size=min(SHOWN, len(cands)), replace=False)) if cands else []
        return [{"text": dom.render(cands[i].item).strip(), "fitness": cands[i].fitness} for i in idx]

    return {"kept": len(kept), "distinct_exact": len(exact),
            "distinct": len(near_dedup(emb, NEAR_DUP)) if exact else 0,
            "mean_distance": mean_pairwise_distance(emb) if exact else 0.0,
            "vendi": vendi_score(emb) if exact else 0.0,
            "shown_elites": pick(elites), "shown_kept": pick(kept)}


def set_flags(overrides: list[str]) -> str:
    """``--set`` flags as a shell command line takes them (quoted: values may hold spaces)."""
    return "".join(f" --set '{s}'" for s in overrides)


def command(config: str, arm: str, iterations: int, shared: list[str], tag: str) -> str:
    sets = set_flags(shared) + "".join(f" --set strategy.{k}={v}" for k, v in ARMS[arm].items())
    return (f"evo run --config {config} --set seed=S{sets} --set iterations={iterations} "
            f"--out runs/compare/{tag}/{arm}-S")


def ci(values: list[float], fmt: str, scale: float = 1.0) -> str:
    a = np.asarray(values, dtype=float) * scale
    lo, hi = bootstrap_ci(a) if len(a) > 1 else (a.mean(), a.mean())
    return f"{format(a.mean(), fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def write_results(results: list[dict], domain: str, args: argparse.Namespace, res_dir: Path) -> None:
    """``domain`` here is the results' name: the domain, plus ``_TAG`` for a ``--tag`` variant."""
    arms = [a for a in ARMS if any(r["arm"] == a for r in results)]
    seeds = sorted({r["seed"] for r in results})
    by = {(r["arm"], r["seed"]): r for r in results}
    config = os.path.relpath(args.config, ROOT)
    iters = results[0]["iterations"]
    baselines = [a for a in arms if a in ("plain", "best_of_n", "novelty")]
    mean_gain = {a: np.mean([by[a, s]["gain"] for s in seeds if (a, s) in by]) for a in arms}
    # the best baseline is picked among arms that ran every seed: a mean over fewer seeds is another sample
    full = [a for a in baselines if all((a, s) in by for s in seeds)]
    best = max(full or baselines, key=mean_gain.get, default=None)
    lines = [
        f"# MAP-Elites against the baselines: {domain}", "",
        f"Machine: {os.cpu_count()} cores, {cpu_model()}, flags: {cpu_flags()}; load average after: "
        f"{load_average()}. Date: {date.today().isoformat()}.", "",
        f"Command: `python experiments/compare.py --config {config} --samples {results[0]['samples']} "
        f"--seeds {' '.join(map(str, seeds))}"
        + set_flags(args.set) + (f" --tag {args.tag}" if args.tag else "") + "`", "",
        *([f"Every arm with: {', '.join(f'`{s}`' for s in args.set)}.", ""] if args.set else []),
        f"{len(seeds)} seeds per arm (an arm that ran fewer names its seeds); every arm generates {results[0]['samples']} samples ({iters} iterations) "
        "with the same model into the same archive. Mean [95% bootstrap interval over seeds]. "
        "*QD gained*: QD-score at the end minus the seed archive's. *vs best-of-N*: mean per-seed "
        "difference in QD gained, wins/losses over seeds, exact paired sign-flip p (with 3 seeds the "
        "smallest possible p is 0.25), Wilcoxon p from 5 seeds up. *×best baseline*: the arm's mean gain "
        f"over the best baseline arm's (plain, best-of-N, novelty; here: {best or 'none run'}); *vs best "
        "baseline*: the same paired test against that arm. Diversity is measured on each arm's "
        f"kept non-seed data: distinct after exact and near (cosine > {NEAR_DUP}) dedup, mean pairwise "
        "cosine distance, Vendi score (effective number of distinct items).", "",
        "| arm | QD gained | ×best baseline | vs best-of-N | vs best baseline | coverage | valid rate "
        "| max fitness | kept | distinct (exact / near) | mean distance | Vendi | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    best_base = mean_gain[best] if best else 0.0
    for arm in arms:
        rs = [by[arm, s] for s in seeds if (arm, s) in by]
        col = {k: [r[k] for r in rs] for k in ("gain", "coverage", "valid_rate", "obj_max", "kept",
                                               "distinct_exact", "distinct", "mean_distance", "vendi", "wall_s")}
        ratio = f"{np.mean(col['gain']) / best_base:.2f}" if best_base > 0 else "-"
        lines.append(
            f"| {arm}{'' if len(rs) == len(seeds) else ' (seeds ' + ', '.join(str(r['seed']) for r in rs) + ')'} "
            f"| {ci(col['gain'], '.2f')} | {ratio} | {versus(by, arm, BASELINE, seeds)} "
            f"| {versus(by, arm, best, seeds)} | {ci(col['coverage'], '.1f', 100)}% "
            f"| {ci(col['valid_rate'], '.1f', 100)}% | {np.mean(col['obj_max']):.2f} | {np.mean(col['kept']):.1f} "
            f"| {np.mean(col['distinct_exact']):.1f} / {np.mean(col['distinct']):.1f} "
            f"| {ci(col['mean_distance'], '.3f')} | {ci(col['vendi'], '.1f')} | {np.mean(col['wall_s']):.0f} |")
    lines += ["", "One command per row (S = seed):", ""]
    lines += [f"- {arm}: `{command(config, arm, iters, args.set, domain)}`" for arm in arms]
    lines += ["", f"![QD-score gained against samples](compare_{domain}.png)", ""]
    (res_dir / f"compare_{domain}.md").write_text("\n".join(lines))
    plot_curves(results, arms, domain, res_dir / f"compare_{domain}.png")
    evolved = max((a for a in arms if a.startswith("map_elites")), key=mean_gain.get, default=None)
    if domain.startswith("text_feedback") and evolved and (BASELINE, seeds[0]) in by and (evolved, seeds[0]) in by:
        write_samples(by[evolved, seeds[0]], by[BASELINE, seeds[0]], res_dir / f"compare_{domain}_samples.md")
    print("\n".join(lines))


def versus(by: dict, arm: str, other: str | None, seeds: list[int]) -> str:
    """The paired test of ``arm``'s QD gain against ``other``'s on the seeds both ran; "-" when
    there is none (no such arm, or it is the arm itself)."""
    paired = [s for s in seeds if (arm, s) in by and (other, s) in by]
    if other is None or arm == other or not paired:
        return "-"
    t = paired_test([by[arm, s]["gain"] for s in paired], [by[other, s]["gain"] for s in paired])
    return (f"{t['mean_diff']:+.2f} ({t['wins']}/{t['losses']}, p={t['p_perm']:.2f}"
            + (f", W p={t['p_wilcoxon']:.3f}" if t["p_wilcoxon"] is not None else "") + ")")


def plot_curves(results: list[dict], arms: list[str], domain: str, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for arm in arms:
        curves = [np.asarray(r["curve"], dtype=float) for r in results if r["arm"] == arm]
        n = min(len(c) for c in curves)
        x = curves[0][:n, 0]
        y = np.array([c[:n, 1] - c[0, 1] for c in curves])  # gain over the seed archive
        lo, hi = zip(*(bootstrap_ci(y[:, j]) for j in range(n))) if len(y) > 1 else (y[0], y[0])
        ax.plot(x, y.mean(0), label=arm)
        ax.fill_between(x, lo, hi, alpha=0.2)
    ax.set_xlabel("generated samples")
    ax.set_ylabel("QD-score gained over the seeds\n(mean; band: 95% bootstrap CI)")
    ax.set_title(domain)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def write_samples(elite_run: dict, bon_run: dict, out: Path) -> None:
    """Side by side: what MAP-Elites' archive holds and what best-of-N kept (same seed)."""
    def cell(x: dict | None) -> str:
        if x is None:
            return ""
        text = " ".join(x["text"].split()).replace("|", "\\|")
        return f"{text} *(fitness {x['fitness']:.2f})*"

    a, b = elite_run["shown_elites"], bon_run["shown_kept"]
    lines = [f"# Hand-check sample (seed {elite_run['seed']}): {SHOWN} archive elites beside {SHOWN} "
             "best-of-N picks", "", "Seeded random picks from each arm's non-seed data, not the best ones.", "",
             f"| # | {elite_run['arm']} archive elite | best-of-N pick |", "|---|---|---|"]
    for i in range(max(len(a), len(b))):
        lines.append(f"| {i + 1} | {cell(a[i] if i < len(a) else None)} | {cell(b[i] if i < len(b) else None)} |")
    out.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "experiments" / "configs" / "p3_cpu.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samples", type=int, default=None,
                    help="generated samples per run (sets iterations; default: the config's iterations)")
    ap.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    ap.add_argument("--out", default=str(ROOT / "runs" / "compare"))
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results"))
    ap.add_argument("--fresh", action="store_true", help="forget finished runs in the results file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every arm (e.g. the operator mix); use with --tag")
    ap.add_argument("--tag", default="", help="names this variant's results: compare_<domain>_<tag>.*")
    args = ap.parse_args()
    shared = parse_overrides(args.set)
    base = load_config(args.config, shared)
    domain, iterations = base.domain + (f"_{args.tag}" if args.tag else ""), iterations_for(base, args.samples)
    res_dir = Path(args.results)
    res_dir.mkdir(parents=True, exist_ok=True)
    path = res_dir / f"compare_{domain}.json"
    results = [] if args.fresh or not path.exists() else json.loads(path.read_text())
    results = [r for r in results if r.get("iterations") == iterations]  # another budget: not comparable
    done = {(r["arm"], r["seed"]) for r in results}
    todo = [(s, a) for s in args.seeds for a in args.arms if (a, s) not in done]
    if todo:
        generator, embedder = load_from_config(base), Embedder(base.descriptor.embedder)
    t0 = time.time()
    for seed, arm in todo:
        r = run_arm(args.config, arm, seed, iterations, Path(args.out) / domain / f"{arm}-{seed}", generator,
                    embedder, shared)
        results.append(r)
        path.write_text(json.dumps(results, indent=1))
        print(json.dumps({k: v for k, v in r.items() if k not in ("curve", "shown_elites", "shown_kept")}), flush=True)
    print(f"{len(todo)} runs in {(time.time() - t0) / 60:.1f} min; {len(done)} were already done", flush=True)
    write_results([r for r in results if r["seed"] in args.seeds and r["arm"] in args.arms], domain, args, res_dir)


if __name__ == "__main__":
    main()

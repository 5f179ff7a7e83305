"""Does evolution beat plain sampling? MAP-Elites and the baselines, several seeds each.

Usage:
    python experiments/compare.py [--config experiments/p3_cpu.yaml] [--seeds 0 1 2]
                                  [--iterations N] [--arms map_elites plain ...]

Every arm runs the same config (same model, same sample budget, same archive) and differs
only in ``strategy`` (see :mod:`evo.strategy`). One row of the table is one command:
``evo run --config CONFIG --set seed=S --set strategy.kind=K [--set strategy.selection=...]``.
The model and embedder load once and serve every run. Writes
``experiments/results/compare.md`` (mean and spread over seeds) and ``compare.png``
(QD-score against generated samples).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import date
from pathlib import Path

import matplotlib
import numpy as np
from machine import cpu_model, load_average

from archives import CampaignStore
from evo.campaign import Campaign
from evo.config import load_config
from evo.descriptor import Embedder
from evo.export import exact_dedup, near_dedup
from evo.llm import load_from_config

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARMS = {  # name -> strategy overrides
    "map_elites": {"kind": "map_elites", "selection": "uniform"},
    "map_elites_curiosity": {"kind": "map_elites", "selection": "curiosity"},
    "plain": {"kind": "plain"},
    "best_of_n": {"kind": "best_of_n"},
    "novelty": {"kind": "novelty"},
}
NEAR_DUP = 0.95  # cosine above which two kept items count as one


def run_arm(config_path: str, arm: str, seed: int, iterations: int | None, out: Path,
            generator, embedder: Embedder) -> dict:
    overrides = {"seed": seed, "strategy": ARMS[arm]}
    if iterations:
        overrides["iterations"] = iterations
    cfg = load_config(config_path, overrides)
    shutil.rmtree(out, ignore_errors=True)
    campaign = Campaign(cfg, out, generator=generator, embedder=embedder)
    try:
        summary = campaign.run()
        distinct = distinct_items(campaign, embedder)
    finally:
        campaign.close()
    store = CampaignStore.open(out)
    iters = store.iterations()
    store.close()
    samples = np.cumsum([i["candidates"] if i["iteration"] > 0 else 0 for i in iters])
    return {"arm": arm, "seed": seed, **{k: summary[k] for k in (
        "qd_score", "coverage", "valid_rate", "obj_max", "evolved_elites", "wall_s")},
        "distinct": distinct, "curve": [[int(s), i["qd_score"]] for s, i in zip(samples, iters)]}


def distinct_items(campaign: Campaign, embedder: Embedder) -> int:
    """Valid non-seed candidates the strategy kept, after exact (domain key) and near
    (embedding cosine > NEAR_DUP) dedup: what an export would hold beyond the seeds."""
    kept = list(campaign.store.candidates("is_seed = 0 AND verdict = 'valid' AND add_status >= 0"))
    kept, _ = exact_dedup(kept, campaign.domain.key)
    if not kept:
        return 0
    emb = embedder.embed([campaign.domain.text(c.item) for c in kept])
    return len(near_dedup(emb, NEAR_DUP))


def command(config: str, arm: str, iterations: int | None) -> str:
    sets = " ".join(f"--set strategy.{k}={v}" for k, v in ARMS[arm].items())
    it = f" --set iterations={iterations}" if iterations else ""
    return f"evo run --config {config} --set seed=S {sets}{it} --out runs/compare/{arm}-S"


def mean_sd(values: list[float], fmt: str) -> str:
    a = np.asarray(values, dtype=float)
    return f"{format(a.mean(), fmt)} ± {format(a.std(ddof=1) if len(a) > 1 else 0.0, fmt)}"


def write_results(results: list[dict], args: argparse.Namespace, total_s: float) -> None:
    res_dir = Path(args.results)
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / "compare.json").write_text(json.dumps(results, indent=1))
    arms = list(dict.fromkeys(r["arm"] for r in results))
    config = os.path.relpath(args.config, ROOT)
    lines = [
        "# MAP-Elites against the baselines", "",
        f"Machine: {os.cpu_count()} cores, {cpu_model()}; load average after: {load_average()}. "
        f"Date: {date.today().isoformat()}. This invocation: {total_s / 60:.0f} min.", "",
        f"Command: `python experiments/compare.py --config {config} --seeds "
        f"{' '.join(map(str, args.seeds))}" + (f" --iterations {args.iterations}`" if args.iterations else "`"), "",
        f"Mean ± standard deviation over {len(args.seeds)} seeds; every arm generates the same number "
        "of samples with the same model into the same archive. QD-score and elites include the "
        "seed puzzles every arm starts from; *distinct* counts the kept valid non-seed items after "
        f"exact and near (cosine > {NEAR_DUP}) dedup.", "",
        "| arm | QD-score | QD gained over the seeds | coverage | valid rate | max fitness | evolved elites "
        "| distinct | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        rs = [r for r in results if r["arm"] == arm]
        col = {k: [r[k] for r in rs] for k in rs[0] if k not in ("arm", "curve")}
        gain = [r["curve"][-1][1] - r["curve"][0][1] for r in rs]
        lines.append(f"| {arm} | {mean_sd(col['qd_score'], '.2f')} | {mean_sd(gain, '.2f')} "
                     f"| {mean_sd([100 * c for c in col['coverage']], '.1f')}% "
                     f"| {mean_sd([100 * v for v in col['valid_rate']], '.1f')}% | {mean_sd(col['obj_max'], '.2f')} "
                     f"| {mean_sd(col['evolved_elites'], '.1f')} | {mean_sd(col['distinct'], '.1f')} "
                     f"| {mean_sd(col['wall_s'], '.0f')} |")
    lines += ["", "One command per row (S = seed):", ""]
    lines += [f"- {arm}: `{command(config, arm, args.iterations)}`" for arm in arms]
    lines += ["", "![QD-score gained against samples](compare.png)", ""]
    (res_dir / "compare.md").write_text("\n".join(lines))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for arm in arms:
        curves = np.array([r["curve"] for r in results if r["arm"] == arm], dtype=float)
        x, y = curves[0, :, 0], curves[:, :, 1] - curves[:, :1, 1]  # gain over the seed archive
        ax.plot(x, y.mean(0), label=arm)
        ax.fill_between(x, y.min(0), y.max(0), alpha=0.2)
    ax.set_xlabel("generated samples")
    ax.set_ylabel("QD-score gained over the seeds\n(mean; band: min-max over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(res_dir / "compare.png", dpi=120)
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "experiments" / "p3_cpu.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--iterations", type=int, default=None, help="override the config's iterations")
    ap.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    ap.add_argument("--out", default=str(ROOT / "runs" / "compare"))
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results"))
    ap.add_argument("--keep-other-arms", action="store_true",
                    help="rerun only --arms; keep the other arms' rows from the existing compare.json")
    args = ap.parse_args()
    base = load_config(args.config)
    generator, embedder = load_from_config(base), Embedder(base.descriptor.embedder)
    t0, results = time.time(), []
    old = Path(args.results) / "compare.json"
    if args.keep_other_arms and old.exists():
        results = [r for r in json.loads(old.read_text()) if r["arm"] not in args.arms and r["seed"] in args.seeds]
    for seed in args.seeds:
        for arm in args.arms:
            r = run_arm(args.config, arm, seed, args.iterations, Path(args.out) / f"{arm}-{seed}", generator, embedder)
            print(json.dumps({k: v for k, v in r.items() if k != "curve"}), flush=True)
            results.append(r)
    write_results(results, args, time.time() - t0)


if __name__ == "__main__":
    main()

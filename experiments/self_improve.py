"""Self-improvement experiment: archive-data fine-tuning vs a plain-sampling control.

Usage (CPU default, small; ~40-60 min on a busy 2-core machine):
    python experiments/self_improve.py --out /tmp/selfimprove [--phase-iters 2] [--eval-limit 30]

Arm "archive": a P3 campaign on the base generator (phase 0), then two rounds of
finetune_and_swap (LoRA on the elites + seed anchor + accumulation, swap, re-score), each
followed by a phase of evolution with the tuned generator.
Arm "control": the same base phase (copied), then per round the same number of training
examples drawn by plain sampling from the current control generator (few-shot from seeds,
best-of-N: the first valid, non-duplicate sample of N per prompt; no archive), the same
anchors and trainer, the same swap + re-score and evolution phases.
Measured per generator: valid-candidate rate per generated sample and QD-score gained per
1,000 samples in its evolution phase, and held-out P3 pass@k (test families, sandbox-verified).
Writes DIR/results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np

from archives.store import STORE_FILE
from evo.campaign import MEASURES_FILE, Campaign
from evo.config import CampaignConfig
from evo.domain import ParseError
from evo.evalsolve import eval_solve, load_puzzles
from evo.finetune import archive_examples, finetune_and_swap, latest_round, run_round
from evo.finetune.data import item_examples
from evo.finetune.rescore import rescore_elites
from evo.finetune.train import token_counter
from evo.llm import SamplingParams, load_generator


def make_config(a) -> CampaignConfig:
    return CampaignConfig(
        name="self-improve", seed=a.seed, max_seeds=a.max_seeds, iterations=a.base_iters,
        prompts_per_iteration=a.prompts, samples_per_prompt=a.samples,
        domain_options={"solve_attempts": a.solve_attempts, "solve_max_tokens": a.solve_tokens},
        generator={"max_new_tokens": a.max_new_tokens, "batch_size": 16},
        operators={"parents": 2}, archive={"dims": [20, 20]},
        finetune={"epochs": a.epochs, "lr": a.lr, "batch_size": 4, "max_length": a.max_length,
                  "seed_share": a.seed_share, "accumulate": True, "kl_coef": a.kl_coef,
                  "max_examples": a.max_items, "solve_examples": True})


def phase(campaign: Campaign, iters: int) -> dict:
    """Runs ``iters`` more iterations; valid rate and QD gained per 1,000 samples."""
    start_qd = campaign.archive.stats()["qd_score"]
    first = (campaign.store.iterations() or [{"iteration": 0}])[-1]["iteration"] + 1
    campaign.config.iterations = first + iters - 1
    t = time.time()
    campaign.run()
    its = [i for i in campaign.store.iterations() if i["iteration"] >= first]
    n = sum(i["candidates"] for i in its)
    valid = sum(i["valid"] for i in its)
    end = campaign.archive.stats()
    return {"samples": n, "valid": valid, "valid_rate": valid / n if n else 0.0,
            "qd_start": start_qd, "qd_end": end["qd_score"],
            "qd_per_1000": (end["qd_score"] - start_qd) / n * 1000 if n else 0.0,
            "num_elites": end["num_elites"], "coverage": end["coverage"],
            "generator_version": campaign.generator.version, "wall_s": time.time() - t}


def heldout(llm, puzzles, sandbox, a) -> dict:
    r = eval_solve(llm, puzzles, sandbox, k=a.k, max_new_tokens=a.solve_tokens, seed=a.seed)
    return {k: v for k, v in r.items() if k not in ("correct",)}


def plain_samples(campaign: Campaign, llm, n_items: int, a, round_n: int) -> tuple[list, dict]:
    """Best-of-N plain sampling from seeds (no archive): the first valid, new item per prompt."""
    dom, seeds = campaign.domain, campaign.domain.seeds()
    rng = np.random.default_rng([a.seed, round_n, 99])
    seen = {dom.key(s) for s in seeds}
    items, drawn, valid_n = [], 0, 0
    for attempt in range(a.control_max_batches):
        prompts = []
        for _ in range(a.prompts):
            picks = rng.choice(len(seeds), size=2, replace=False)
            prompts.append(dom.preamble + "".join(dom.render(seeds[i]) for i in picks) + dom.open_prefix)
        params = SamplingParams(n=a.control_n, temperature=0.8, top_p=0.95, max_new_tokens=a.max_new_tokens,
                                stop=dom.stop, seed=a.seed * 31 + round_n * 1000 + attempt)
        outs = llm.generate(prompts, params)
        for samples in outs:
            parsed = []
            for s in samples:
                drawn += 1
                try:
                    parsed.append(dom.parse(dom.open_prefix + s.text))
                except ParseError:
                    pass
            verdicts = dom.verify(parsed, campaign.sandbox) if parsed else []
            valid_n += sum(v.valid for v in verdicts)
            best = next((it for it, v in zip(parsed, verdicts) if v.valid and dom.key(it) not in seen), None)
            if best is not None:
                seen.add(dom.key(best))
                items.append(best)
        if len(items) >= n_items:
            break
    return items[:n_items], {"drawn": drawn, "valid": valid_n, "valid_rate": valid_n / drawn if drawn else 0,
                             "items": min(len(items), n_items), "wanted": n_items}


def snapshot(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    shutil.copy(src / MEASURES_FILE, dst / MEASURES_FILE)
    with sqlite3.connect(src / STORE_FILE) as a, sqlite3.connect(dst / STORE_FILE) as b:
        a.backup(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/selfimprove")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base-iters", type=int, default=3)
    ap.add_argument("--max-seeds", type=int, default=16)
    ap.add_argument("--solve-attempts", type=int, default=3)
    ap.add_argument("--phase-iters", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--max-length", type=int, default=320)
    ap.add_argument("--max-items", type=int, default=40)
    ap.add_argument("--seed-share", type=float, default=0.1)
    ap.add_argument("--kl-coef", type=float, default=0.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--eval-limit", type=int, default=30)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--solve-tokens", type=int, default=80)
    ap.add_argument("--control-n", type=int, default=4)
    ap.add_argument("--control-max-batches", type=int, default=6)
    ap.add_argument("--no-control", action="store_true")
    ap.add_argument("--control-from", default=None, help="run only the control arm beside this archive run")
    a = ap.parse_args()
    if a.control_from:
        return control_only(a)
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    res: dict = {"args": vars(a), "machine": f"{platform.node()} {platform.machine()} "
                 f"{platform.processor() or ''}".strip(), "date": time.strftime("%Y-%m-%d %H:%M"), "rows": []}
    save = lambda: (out / "results.json").write_text(json.dumps(res, indent=2))  # noqa: E731
    t0 = time.time()
    cfg = make_config(a)
    puzzles = load_puzzles(split="test", limit=a.eval_limit, seed=a.seed)
    arm_a = out / "archive"
    campaign = Campaign(cfg, arm_a)
    count = token_counter(cfg.generator.model)
    try:
        base_eval = heldout(campaign.generator.llm, puzzles, campaign.sandbox, a)
        p0 = phase(campaign, a.base_iters)
        res["rows"].append({"arm": "base", "round": 0, "phase": p0, "heldout": base_eval})
        print("base", json.dumps(res["rows"][-1]), flush=True)
        save()
        snapshot(arm_a, out / "control")
        n_items = []
        for r in range(1, a.rounds + 1):
            before = len(archive_examples(campaign.store, campaign.archive, campaign.domain,
                                          cfg.finetune, r, cfg.seed, count))
            rec = finetune_and_swap(campaign)
            n_items.append(rec["n_new_examples"])
            ev = heldout(campaign.generator.llm, puzzles, campaign.sandbox, a)
            ph = phase(campaign, a.phase_iters)
            res["rows"].append({"arm": "archive", "round": r, "phase": ph, "heldout": ev, "examples_current": before,
                                "round_record": {k: rec[k] for k in ("n_examples", "n_new_examples", "mix", "anchors",
                                                                     "data_hash", "metrics", "rescore")}})
            print("archive", r, json.dumps(res["rows"][-1]), flush=True)
            save()
    finally:
        campaign.close()
    if not a.no_control:
        run_control(a, cfg, out, puzzles, count, lambda r: n_items[r - 1], res, save)
    res["wall_s"] = time.time() - t0
    save()
    print(table(res))


def wait_for(path: Path, poll: float = 20.0) -> Path:
    while not path.exists():
        time.sleep(poll)
    return path


def control_only(a) -> None:
    """--control-from RUN: the control arm in its own process, beside a running archive arm
    (it starts from RUN's base-phase snapshot and matches RUN's example counts per round)."""
    src, out = Path(a.control_from), Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    res: dict = {"args": vars(a), "machine": f"{platform.node()} {platform.machine()}",
                 "date": time.strftime("%Y-%m-%d %H:%M"), "rows": []}
    save = lambda: (out / "results.json").write_text(json.dumps(res, indent=2))  # noqa: E731
    t0 = time.time()
    wait_for(src / "control" / MEASURES_FILE)
    time.sleep(5)
    shutil.copytree(src / "control", out / "control")
    cfg = make_config(a)
    puzzles = load_puzzles(split="test", limit=a.eval_limit, seed=a.seed)

    def n_items(r: int) -> int:
        f = wait_for(src / "archive" / "adapters" / f"round-{r}" / "round.json")
        time.sleep(2)
        return json.loads(f.read_text())["n_new_examples"]

    run_control(a, cfg, out, puzzles, token_counter(cfg.generator.model), n_items, res, save)
    res["wall_s"] = time.time() - t0
    save()


def run_control(a, cfg, out, puzzles, count, n_items, res, save) -> None:
    """The control arm: plain-sampling data (as many examples as the archive arm's round), same trainer."""
    ctrl = Campaign(cfg, out / "control",
                    generator=load_generator("transformers", cfg.generator.model, batch_size=16))
    try:
        for r in range(1, a.rounds + 1):
            # as many new examples as the archive arm's round r added (2 per item: generate + solve)
            n_new = n_items(r)
            want_items = (n_new + 1) // 2
            items, stats = plain_samples(ctrl, ctrl.generator.llm, want_items, a, r)
            rng = np.random.default_rng([a.seed, r, 1])
            ex = item_examples(ctrl.domain, [(None, it) for it in items], "control", seeds=ctrl.domain.seeds(),
                               n_shots=1, solve=True, max_length=a.max_length, rng=rng, count=count, round=r)
            ex = ex[:n_new]
            rec = run_round(ctrl.dir, ctrl.domain, ex, cfg.finetune, base_model=cfg.generator.model,
                            round_n=latest_round(ctrl.dir) + 1, seed=cfg.seed, count=count, source="control")
            ctrl.generator.llm = None
            ctrl.generator.llm = load_generator("transformers", cfg.generator.model, adapter=rec["adapter"],
                                                version=r, batch_size=16)
            rs = rescore_elites(ctrl.store, ctrl.archive, ctrl.domain, ctrl.generator, ctrl.sandbox,
                                seed=cfg.seed * 7919 + 1_000_000 * r)
            ctrl.generator.take_seconds()
            ev = heldout(ctrl.generator.llm, puzzles, ctrl.sandbox, a)
            ph = phase(ctrl, a.phase_iters)
            res["rows"].append({"arm": "control", "round": r, "phase": ph, "heldout": ev, "sampling": stats,
                                "round_record": {"n_examples": rec["n_examples"],
                                                 "n_new_examples": rec["n_new_examples"], "mix": rec["mix"],
                                                 "anchors": rec["anchors"], "data_hash": rec["data_hash"],
                                                 "metrics": rec["metrics"], "rescore": rs}})
            print("control", r, json.dumps(res["rows"][-1]), flush=True)
            save()
    finally:
        ctrl.close()


def table(res: dict) -> str:
    k = res["args"]["k"]
    lines = ["| arm | round | train examples (seed share) | valid rate | QD per 1k samples | "
             f"held-out pass@1 | pass@{k} |", "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        rr = r.get("round_record")
        ex = f"{rr['n_examples']} ({rr['mix']['seed_share']:.0%})" if rr else "-"
        ph, h = r["phase"], r["heldout"]
        lines.append(f"| {r['arm']} | {r['round']} | {ex} | {ph['valid_rate']:.1%} ({ph['valid']}/{ph['samples']}) | "
                     f"{ph['qd_per_1000']:.1f} | {h['pass@1']:.3f} | {h[f'pass@{k}']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

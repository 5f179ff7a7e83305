"""Benchmark of the demo campaign: candidates/s, valid rate, where the wall time goes.

Usage: python experiments/bench_demo.py [--config experiments/configs/p3_cpu.yaml] [--out runs/bench-demo]
                                        [--set KEY=VALUE ...] [--results FILE]

``--set pipeline.staleness=1`` measures the async pipeline (generation overlaps evaluation).

Runs the demo config on the real defaults (SmolLM2-135M, MiniLM, bwrap sandbox, SQLite)
and writes a markdown table to experiments/results/bench_demo.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from datetime import date
from pathlib import Path

from machine import cpu_model, load_average

from archives import CampaignStore
from evo.campaign import Campaign
from evo.config import load_config, parse_overrides

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "experiments" / "configs" / "p3_cpu.yaml"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-demo"))
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "bench_demo.md"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    t0 = time.time()
    campaign = Campaign(load_config(args.config, parse_overrides(args.overrides)), args.out)
    load_s = time.time() - t0
    try:
        summary = campaign.run(lambda s: print(f"iteration {s['iteration']}: valid {s['valid']}/{s['candidates']}, "
                                                f"elites {s['num_elites']}, {s['wall_s']:.0f} s", flush=True))
    finally:
        campaign.close()
    wall = time.time() - t0
    iters = CampaignStore.open(args.out).iterations()
    evolved = [i for i in iters if i["iteration"] > 0]
    parts = {k: sum(i[k] for i in iters) for k in ("gen_s", "score_gen_s", "verify_s", "describe_s")}
    tokens = sum(i["tokens"] for i in iters)
    n = summary["candidates"]
    rows = [
        ("machine", f"{os.cpu_count()} cores, {cpu_model()}; load average after: {load_average()}"),
        ("date", date.today().isoformat()),
        ("config", Path(args.config).name + "".join(f" --set {o}" for o in args.overrides)),
        ("wall time (incl. loading models)", f"{wall:.0f} s (loading {load_s:.0f} s)"),
        ("generated candidates", str(n)),
        ("candidates/s (generated, over the evolution iterations)",
         f"{n / sum(i['wall_s'] for i in evolved):.3f}" if evolved else "-"),
        ("valid rate (generated)", f"{summary['valid_rate']:.1%} ({summary['valid']}/{n})"),
        ("verdicts", ", ".join(f"{k} {v}" for k, v in sorted(summary["verdicts"].items()))),
        ("evolved elites / all elites", f"{summary['evolved_elites']} / {summary['num_elites']}"),
        ("QD-score / coverage", f"{summary['qd_score']:.2f} / {summary['coverage']:.1%}"),
        ("share of wall time the generator is busy (campaign loop)", f"{summary['generator_busy']:.1%}"),
        ("generator seconds", f"proposals {parts['gen_s']:.0f} s, solve attempts {parts['score_gen_s']:.0f} s"),
        ("rescued by a fresh solve attempt", str(sum(i.get("resolved", 0) for i in iters))),
        ("sandbox verification / embedding", f"{parts['verify_s']:.1f} s / {parts['describe_s']:.1f} s"),
        ("generated tokens/s (proposals)", f"{tokens / parts['gen_s']:.0f}" if parts["gen_s"] else "-"),
    ]
    table = "| measure | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(f"# Demo campaign benchmark\n\n`python experiments/bench_demo.py{''.join(' --set ' + o for o in args.overrides)}`\n\n{table}")
    print(table)


if __name__ == "__main__":
    main()

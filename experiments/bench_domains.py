"""One short CPU campaign per domain on the embedded defaults: how often the generator
writes a valid item, and what the archive holds afterwards.

Usage: python experiments/bench_domains.py [--configs experiments/configs/code_tests_cpu.yaml ...]
                                           [--set generator.model=qwen2.5-coder-1.5b --results FILE]

Writes experiments/results/domains.md (P3, the demo, is measured by bench_demo.py); with
``--set`` (the same dotted overrides as ``evo run --set``, applied to every config) pass
``--results`` too, so the defaults' table is not overwritten by another model's rows. The model and the embedder load once and serve
every campaign (configs that name another model or embedder load their own).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import date
from pathlib import Path

from machine import cpu_flags, cpu_model, load_average

from evo.campaign import Campaign
from evo.config import load_config, parse_overrides
from evo.descriptor import Embedder
from evo.llm import load_from_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["code_tests_cpu.yaml", "math_cpu.yaml", "text_feedback_cpu.yaml"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=[str(ROOT / "experiments" / "configs" / c) for c in CONFIGS])
    ap.add_argument("--out", default=str(ROOT / "runs" / "domains"))
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "domains.md"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override for every config (dotted keys, as evo run --set)")
    args = ap.parse_args()
    overrides = parse_overrides(args.overrides)
    loaded: dict[tuple, object] = {}
    rows = []
    for path in args.configs:
        cfg = load_config(path, overrides)
        key = (cfg.generator.backend, cfg.generator.model, cfg.descriptor.embedder)
        if key not in loaded:
            loaded.clear()  # one model in memory at a time
            loaded[key] = (load_from_config(cfg), Embedder(cfg.descriptor.embedder))
        generator, embedder = loaded[key]
        out = Path(args.out) / cfg.domain
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.time()
        campaign = Campaign(cfg, out, generator=generator, embedder=embedder)
        try:
            s = campaign.run()
        finally:
            campaign.close()
        n_samples = cfg.iterations * cfg.prompts_per_iteration * cfg.samples_per_prompt
        rows.append((cfg.domain, Path(path).name, cfg.generator.model, f"{s['valid_rate']:.1%} ({s['valid']}/{s['candidates']})",
                     ", ".join(f"{k} {v}" for k, v in sorted(s["verdicts"].items())),
                     f"{s['evolved_elites']} / {s['num_elites']}", f"{s['qd_score']:.2f}",
                     f"{s['coverage']:.1%}", f"{time.time() - t0:.0f}", str(n_samples)))
        print(" | ".join(rows[-1]), flush=True)
    head = ("| domain | config | generator | valid rate (generated) | verdicts | evolved / all elites | QD-score "
            "| coverage | wall s | samples |\n|---|---|---|---|---|---|---|---|---|---|\n")
    table = head + "".join("| " + " | ".join(r) + " |\n" for r in rows)
    command = " ".join(["python experiments/bench_domains.py", *sys.argv[1:]])
    text = (f"# One short campaign per domain\n\n`{command}`\n\n"
            f"Machine: {os.cpu_count()} cores, {cpu_model()}; CPU flags: {cpu_flags()}; "
            f"load average after: {load_average()}. Date: {date.today().isoformat()}.\n\n{table}")
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(text)
    print(table)


if __name__ == "__main__":
    main()

"""One short CPU campaign per domain on the embedded defaults: how often the 135M model
writes a valid item, and what the archive holds afterwards.

Usage: python experiments/bench_domains.py [--configs experiments/configs/code_tests_cpu.yaml ...]

Writes experiments/results/domains.md (P3, the demo, is measured by bench_demo.py). The model and the embedder load once and serve
every campaign (configs that name another model or embedder load their own).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from datetime import date
from pathlib import Path

from machine import cpu_model, load_average

from evo.campaign import Campaign
from evo.config import load_config
from evo.descriptor import Embedder
from evo.llm import load_from_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["code_tests_cpu.yaml", "math_cpu.yaml", "text_feedback_cpu.yaml"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=[str(ROOT / "experiments" / "configs" / c) for c in CONFIGS])
    ap.add_argument("--out", default=str(ROOT / "runs" / "domains"))
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "domains.md"))
    args = ap.parse_args()
    loaded: dict[tuple, object] = {}
    rows = []
    for path in args.configs:
        cfg = load_config(path)
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
        rows.append((cfg.domain, Path(path).name, f"{s['valid_rate']:.1%} ({s['valid']}/{s['candidates']})",
                     ", ".join(f"{k} {v}" for k, v in sorted(s["verdicts"].items())),
                     f"{s['evolved_elites']} / {s['num_elites']}", f"{s['qd_score']:.2f}",
                     f"{s['coverage']:.1%}", f"{time.time() - t0:.0f}", str(n_samples)))
        print(" | ".join(rows[-1]), flush=True)
    head = ("| domain | config | valid rate (generated) | verdicts | evolved / all elites | QD-score "
            "| coverage | wall s | samples |\n|---|---|---|---|---|---|---|---|---|\n")
    table = head + "".join("| " + " | ".join(r) + " |\n" for r in rows)
    text = (f"# One short campaign per domain\n\n`python experiments/bench_domains.py`\n\n"
            f"Machine: {os.cpu_count()} cores, {cpu_model()}; load average after: {load_average()}. "
            f"Date: {date.today().isoformat()}. Generator: the embedded SmolLM2-135M-Instruct.\n\n{table}")
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(text)
    print(table)


if __name__ == "__main__":
    main()

"""GPU benchmark: candidates per minute with vLLM, and the loop's generation throughput as
a share of vLLM's raw throughput on the same prompts (target: at least 80%).

Usage (a CUDA machine, ``pip install -e '.[gpu]'``; or vLLM's CPU build, which ``make install``
puts in ``.venv``: ``.venv/bin/python experiments/bench_vllm.py --config experiments/configs/p3_cpu.yaml``):

    python experiments/bench_vllm.py [--config experiments/configs/p3_gpu.yaml] [--iterations 10]
                                     [--model Qwen/Qwen2.5-Coder-1.5B-Instruct] [--out runs/bench-vllm]

It runs the campaign (default: the P3 GPU config, Qwen2.5-Coder-1.5B-Instruct) with the
vLLM generator and records every generate call the loop makes (proposals and the P3
solve attempts). Then it replays exactly those calls -- same prompts, same sampling
parameters -- straight into the same engine, back to back, with the prefix cache reset
first. Loop throughput = tokens generated / loop wall time (the evolution iterations,
verification, scoring, embedding and storage included); raw throughput = the same tokens /
replay time. Writes a markdown table to experiments/results/bench_vllm.md. The engine has
LoRA enabled only when the config fine-tunes (``finetune.every > 0``), as in a campaign; the
table says which. Exits 2 when vllm is missing, or is a GPU build with no CUDA device.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import time
from datetime import date
from pathlib import Path

from evo.llm.timing import TimedLLM

ROOT = Path(__file__).resolve().parents[1]


class Recording(TimedLLM):
    """The loop's timed LLM wrapper, also remembering every (prompts, params) asked for."""

    def __init__(self, llm) -> None:
        super().__init__(llm)
        self.calls = []

    def generate(self, prompts, params):
        self.calls.append((list(prompts), params))
        return super().generate(prompts, params)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "experiments" / "configs" / "p3_gpu.yaml"))
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--model", default=None, help="override generator.model")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-vllm"))
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "bench_vllm.md"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config overrides, e.g. pipeline.staleness=1 (the async pipeline)")
    args = ap.parse_args()

    import torch

    on_cpu = False
    if importlib.util.find_spec("vllm") is not None:
        from vllm.platforms import current_platform

        on_cpu = bool(current_platform.is_cpu())
    if importlib.util.find_spec("vllm") is None or not (on_cpu or torch.cuda.is_available()):
        print("bench_vllm needs vllm with a CUDA GPU (pip install -e '.[gpu]') or vLLM's CPU build "
              f"(make install); cuda available: {torch.cuda.is_available()}, vllm installed: "
              f"{importlib.util.find_spec('vllm') is not None}", file=sys.stderr)
        return 2

    from machine import cpu_flags, cpu_model, load_average, nproc

    from evo.campaign import Campaign
    from evo.config import load_config, parse_overrides
    from evo.llm import load_from_config

    overrides = parse_overrides([f"iterations={args.iterations}", "generator.backend=vllm", *args.overrides]
                                + ([f"generator.model={args.model}"] if args.model else []))
    config = load_config(args.config, overrides)
    shutil.rmtree(args.out, ignore_errors=True)

    t0 = time.time()
    llm = load_from_config(config)
    load_s = time.time() - t0
    rec = Recording(llm)
    campaign = Campaign(config, args.out, generator=rec)
    try:
        if not campaign.seeds:
            campaign._insert_seeds()  # seeds (and their solve attempts) are not the loop
        rec.calls.clear()
        rec.tokens = 0
        iters, t = [], time.time()

        def progress(stats: dict) -> None:
            iters.append(stats)
            print(f"iteration {stats['iteration']}: {stats['candidates']} candidates, {stats['wall_s']:.1f} s", flush=True)

        summary = campaign.run(progress)  # sequential or the async pipeline, as configured
        loop_s = time.time() - t
    finally:
        campaign.close()
    loop_tokens, calls = rec.tokens, list(rec.calls)

    engine = llm.engine
    if hasattr(engine, "reset_prefix_cache"):
        engine.reset_prefix_cache()
    t = time.time()
    raw_tokens = 0
    for prompts, params in calls:
        raw_tokens += sum(g.num_tokens for row in llm.generate(prompts, params) for g in row)
    raw_s = time.time() - t

    candidates = sum(i["candidates"] for i in iters)
    loop_tps, raw_tps = loop_tokens / loop_s, raw_tokens / raw_s
    where = (f"vLLM CPU build on {cpu_model()}, {nproc()} cores, flags {cpu_flags()}" if on_cpu
             else torch.cuda.get_device_name(0))
    rows = [
        ("machine", f"{where}; load average after: {load_average()}"),
        ("engine", f"LoRA {'on (max rank ' + str(llm.max_lora_rank) + ')' if llm.max_lora_rank else 'off'}"
                   f"{', eager (CPU: no seeds)' if on_cpu else ''}"),
        ("date", date.today().isoformat()),
        ("config", f"{Path(args.config).name}, model {config.generator.model}, {len(iters)} iterations x "
                   f"{config.prompts_per_iteration} prompts x {config.samples_per_prompt} samples"),
        ("engine load", f"{load_s:.0f} s"),
        ("candidates per minute (loop)", f"{candidates / loop_s * 60:.0f} ({candidates} in {loop_s:.1f} s)"),
        ("valid rate", f"{summary['valid_rate']:.1%}"),
        ("loop generation throughput", f"{loop_tps:.0f} tokens/s ({loop_tokens} tokens, {len(calls)} generate calls)"),
        ("raw vLLM throughput, same calls", f"{raw_tps:.0f} tokens/s ({raw_tokens} tokens in {raw_s:.1f} s)"),
        ("loop / raw", f"{loop_tps / raw_tps:.1%} (target >= 80%)"),
        ("generator busy (share of loop wall time)", f"{summary['generator_busy']:.1%}"),
        ("time split (loop)", ", ".join(f"{k} {sum(i[k] for i in iters):.1f} s"
                                         for k in ("gen_s", "verify_s", "score_s", "score_gen_s", "describe_s"))),
    ]
    table = "| measure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows) + "\n"
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text("# vLLM benchmark\n\n`python experiments/bench_vllm.py "
                                  + " ".join(sys.argv[1:]) + "`\n\n" + table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""LoRA fine-tuning throughput per embedded generator on campaign-sized examples.

    python experiments/bench_lora.py [--models smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b]
                                     [--examples 16] [--steps 2] [--batch 8] [--accum 1]
                                     [--dtype auto] [--checkpointing auto]

The examples are what a fine-tune round trains on: P3 generate and solve examples built from
the train-family seeds by ``evo.finetune.data.item_examples`` (two few-shot parents, the
default ``max_length`` 384 tokens counted by each model's tokenizer), trained by
``evo.finetune.train_lora`` with the default FinetuneConfig (r 16, all-linear, batch 8; dtype
auto: bfloat16 weights and autocast on CPUs with native bf16, float32 elsewhere; gradient
checkpointing auto: on above 1B parameters) unless ``--batch``, ``--accum``, ``--dtype`` or
``--checkpointing`` say otherwise. A row records the peak RSS of its process. Each model runs in a fresh process; results are appended to
``experiments/results/bench_lora.jsonl`` as they come (a rerun skips models already there)
and tabled in ``bench_lora.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import cpu_flags, cpu_model, load_average  # noqa: E402

MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]


def worker(model: str, n_examples: int, steps: int, batch: int, accum: int = 1, dtype: str = "auto",
           checkpointing: bool | None = None) -> dict:
    import numpy as np

    from domains.p3 import P3Domain
    from evo.config import FinetuneConfig
    from evo.finetune.data import item_examples
    from evo.finetune.train import token_counter, train_lora

    cfg = FinetuneConfig(every=1, max_steps=steps, batch_size=batch, grad_accum=accum, dtype=dtype,
                         gradient_checkpointing=checkpointing)
    domain = P3Domain()
    seeds = domain.seeds()
    count = token_counter(model)
    examples = item_examples(domain, list(enumerate(seeds)), "archive", seeds=seeds, n_shots=2, solve=True,
                             max_length=cfg.max_length, rng=np.random.default_rng(0), count=count)[:n_examples]
    tokens = [count(e.prompt + e.completion) for e in examples]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = train_lora(model, examples, Path(tmp) / "adapter", cfg, device="cpu")
    m = res["metrics"]
    per_step = cfg.batch_size * cfg.grad_accum
    return {"model": model, "examples": len(examples), "mean_tokens": sum(tokens) / len(tokens),
            "steps": m["steps"], "batch": cfg.batch_size, "accum": cfg.grad_accum,
            "dtype": res["trainer"]["bf16"] and "bfloat16" or "float32",
            "checkpointing": res["trainer"]["gradient_checkpointing"], "peak_rss_gb": _peak_rss_gb(),
            "train_s": round(m["train_s"], 1), "total_s_incl_load": round(time.perf_counter() - t0, 1),
            "examples_per_s": round(m["steps"] * per_step / m["train_s"], 3),
            "tokens_per_s": round(m["steps"] * per_step * sum(tokens) / len(tokens) / m["train_s"], 1),
            "date": dt.date.today().isoformat(), "cpu": cpu_model(), "flags": cpu_flags(), "load": load_average()}


def _peak_rss_gb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # KiB on Linux


def _label(r: dict) -> str:
    """One row's settings (rows from before these columns existed: float32, no checkpointing)."""
    ck = "checkpointing" if r.get("checkpointing") else "no checkpointing"
    return f"{r['model']} ({r.get('dtype', 'float32')}, {ck})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--examples", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="FinetuneConfig.batch_size (8, the default, "
                    "ran out of 24 GiB for the 1.5B: float32 logits over 151,936 tokens)")
    ap.add_argument("--accum", type=int, default=1, help="FinetuneConfig.grad_accum")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"], help="FinetuneConfig.dtype")
    ap.add_argument("--checkpointing", choices=["auto", "on", "off"], default="auto",
                    help="FinetuneConfig.gradient_checkpointing (auto: on above 1B parameters on CPU)")
    ap.add_argument("--out", default="experiments/results/bench_lora")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        ck = {"auto": None, "on": True, "off": False}[args.checkpointing]
        print(json.dumps(worker(args.worker, args.examples, args.steps, args.batch, args.accum, args.dtype, ck)))
        return
    path = Path(f"{args.out}.jsonl")
    settings = [str(args.batch), str(args.accum), args.dtype, args.checkpointing]
    done = ({tuple(json.loads(line).get("settings", [])) for line in path.read_text().splitlines()}
            if path.exists() else set())
    for model in args.models:
        if (model, *settings) in done:  # a rerun skips what is measured already
            continue
        proc = subprocess.run([sys.executable, __file__, "--worker", model, "--examples", str(args.examples),
                               "--steps", str(args.steps), "--batch", str(args.batch), "--accum", str(args.accum),
                               "--dtype", args.dtype, "--checkpointing", args.checkpointing],
                              capture_output=True, text=True)
        if proc.returncode != 0:  # -9: the kernel's out-of-memory killer
            raise SystemExit(f"{model} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        row = next(line for line in reversed(proc.stdout.splitlines()) if line.startswith("{"))
        row = json.dumps({**json.loads(row), "settings": [model, *settings]})
        with path.open("a") as fh:
            fh.write(row + "\n")
        print(row, flush=True)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    lines = ["# LoRA throughput on campaign-sized P3 examples (`python experiments/bench_lora.py`)", "",
             "| model (weights, activations) | date | CPU, flags | load | examples (mean tokens) | "
             "steps x batch x accumulation | peak RSS GB | train s | incl. load s | examples/s | tokens/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {_label(r)} | {r['date']} | {r['cpu']}, {r['flags']} | {r['load']} | {r['examples']} "
              f"({r['mean_tokens']:.0f}) | {r['steps']} x {r['batch']} x {r.get('accum', 1)} | "
              f"{r.get('peak_rss_gb', '-')} | {r['train_s']} | {r['total_s_incl_load']} "
              f"| {r['examples_per_s']} | {r['tokens_per_s']} |" for r in rows]
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

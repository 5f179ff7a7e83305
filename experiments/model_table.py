"""The generator issue's table, rerun: the three embedded generators side by side on P3.

Usage:
    python experiments/model_table.py [--models smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b]
                                      [--parts passk campaign lora] [--limit 30] [--n 10]

Per model, on evo's default engine (vLLM's CPU build) and evo's own benchmark, sandbox and
trainer, each part in a fresh process (one model's memory never carries into the next):

- ``passk``: pass@1 and pass@10 on ``--limit`` P3 *train* families (n = ``--n``), with the
  solve prompt that ``choose_solve_prompt.py`` chose for the model on train families
  (results/solve_prompt_<model>.json; the completion prompt where none was chosen), and the
  generated tokens per second of that workload;
- ``campaign``: the demo config (experiments/configs/p3_cpu.yaml) on this model for ``--iterations``
  iterations: valid rate per generated sample, evolved elites, generated tokens per second
  (the campaign's own count over its generation time) and wall time;
- ``lora``: LoRA examples per second on campaign-sized examples (``bench_lora.worker``: P3
  generate-and-solve examples of up to 384 tokens, batch 2 x 4 accumulation, the settings
  that fit the 1.5B in 24 GiB).

Rows go to experiments/results/model_table.jsonl as each part ends (a rerun skips parts
already there: ~45 min in all on an idle 2-core AVX-512 box, most of it the 1.5B), tabled in
model_table.md with the machine, flags, load and date of every row.
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
PARTS = ["passk", "campaign", "lora"]


def solve_style(model: str) -> str:
    """The style choose_solve_prompt.py picked on train families (highest pass@n, then pass@1)."""
    f = RESULTS / f"solve_prompt_{model}.json"
    return json.loads(f.read_text()).get("chosen") or "completion" if f.is_file() else "completion"


class CountingLLM:
    """Wraps a generator to count what it generates and how long that takes (the tok/s column)."""

    def __init__(self, llm, count) -> None:
        self.llm, self.count, self.tokens, self.seconds = llm, count, 0, 0.0

    def generate(self, prompts, params):
        t = time.perf_counter()
        out = self.llm.generate(prompts, params)
        self.seconds += time.perf_counter() - t
        self.tokens += sum(g.num_tokens or self.count(g.text) for row in out for g in row)
        return out

    def __getattr__(self, name):  # chat templates, tokenizer: the wrapped generator's own
        return getattr(self.llm, name)


def part_passk(model: str, limit: int, n: int) -> dict:
    from domains.p3 import P3Domain
    from evo.finetune.train import token_counter
    from evo.heldout import evaluate
    from evo.llm import load_generator
    from evo.sandbox import Sandbox

    style = solve_style(model)
    llm = CountingLLM(load_generator("vllm", model, batch_size=32), token_counter(model))
    bench = P3Domain().benchmark("train", limit, 0, style)
    with Sandbox() as sandbox:
        r = evaluate(llm, bench, sandbox, n=n, ks=[1, n], seed=0)
    return {"style": style, "puzzles": r["n_puzzles"], "n": n, "pass@1": r["pass@1"], "pass@1_ci": r["pass@1_ci"],
            f"pass@{n}": r[f"pass@{n}"], f"pass@{n}_ci": r[f"pass@{n}_ci"], "solved": len(r["solved"]),
            "tok_s": llm.tokens / llm.seconds if llm.seconds else 0.0, "wall_s": r["wall_s"]}


def part_campaign(model: str, iterations: int) -> dict:
    from evo.campaign import Campaign
    from evo.config import load_config

    cfg = load_config(ROOT / "experiments" / "configs" / "p3_cpu.yaml", {"generator": {"model": model}, "iterations": iterations})
    with tempfile.TemporaryDirectory() as tmp:
        c = Campaign(cfg, Path(tmp) / "run")
        try:
            t = time.time()
            c.run()
            wall = time.time() - t
            its = [i for i in c.store.iterations() if i["iteration"] >= 1]  # generated, not the seeds
            samples, valid = sum(i["candidates"] for i in its), sum(i["valid"] for i in its)
            tokens, gen_s = sum(i.get("tokens", 0) for i in its), sum(i.get("gen_s", 0.0) for i in its)
            ids = [e["candidate_id"] for e in c.archive.elites()]
            evolved = sum(not cand.is_seed for cand in c.store.get(ids).values())
        finally:
            c.close()
    return {"iterations": iterations, "samples": samples, "valid": valid, "valid_rate": valid / samples if samples else 0.0,
            "evolved_elites": evolved, "tok_s": tokens / gen_s if gen_s else 0.0, "wall_s": wall}


def part_lora(model: str) -> dict:
    from bench_lora import worker

    r = worker(model, n_examples=16, steps=2, batch=2, accum=4)
    return {k: r[k] for k in ("examples_per_s", "tokens_per_s", "mean_tokens", "dtype", "checkpointing",
                              "peak_rss_gb", "train_s")}


def run_part(model: str, part: str, a: argparse.Namespace) -> dict:
    out = {"passk": lambda: part_passk(model, a.limit, a.n), "campaign": lambda: part_campaign(model, a.iterations),
           "lora": lambda: part_lora(model)}[part]()
    return {"model": model, "part": part, **out, "date": dt.date.today().isoformat(), "cpu": cpu_model(),
            "flags": cpu_flags(), "load": load_average()}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def table(all_rows: list[dict], n: int) -> str:
    by = {(r["model"], r["part"]): r for r in all_rows}
    models = [m for m in MODELS if any(k[0] == m for k in by)] + sorted({k[0] for k in by} - set(MODELS))

    def cell(m: str, part: str, fmt) -> str:
        r = by.get((m, part))
        return fmt(r) if r else "not run"

    def ci(r: dict, k: str) -> str:
        lo, hi = r[f"{k}_ci"]
        return f"{r[k]:.2f} [{lo:.2f}, {hi:.2f}]"

    lines = ["# The embedded generators side by side — `python experiments/model_table.py`", "",
             "P3 on vLLM's CPU build. pass@k: train families, the solve prompt chosen on train families, 95% "
             "bootstrap intervals over puzzles. Campaign: the demo config (experiments/configs/p3_cpu.yaml). LoRA: "
             "campaign-sized P3 examples, batch 2 x 4 accumulation.", "",
             f"| generator | pass@1 | pass@{n} | solve tok/s | campaign valid rate | evolved elites | campaign tok/s "
             "| campaign wall | LoRA examples/s |", "|---|---|---|---|---|---|---|---|---|"]
    for m in models:
        lines.append(" | ".join([
            f"| {m}",
            cell(m, "passk", lambda r: f"{ci(r, 'pass@1')} ({r['style']}, {r['puzzles']} families)"),
            cell(m, "passk", lambda r: f"{ci(r, 'pass@' + str(r['n']))} ({r['solved']} solved)"),
            cell(m, "passk", lambda r: f"{r['tok_s']:.0f}"),
            cell(m, "campaign", lambda r: f"{r['valid_rate']:.1%} ({r['valid']}/{r['samples']})"),
            cell(m, "campaign", lambda r: str(r["evolved_elites"])),
            cell(m, "campaign", lambda r: f"{r['tok_s']:.0f}"),
            cell(m, "campaign", lambda r: f"{r['wall_s'] / 60:.1f} min"),
            cell(m, "lora", lambda r: f"{r['examples_per_s']:.3f} ({r['dtype']})"),
        ]) + " |")
    lines += ["", "Machine per row (model, part: CPU, flags, load, date):", ""]
    lines += [f"- {r['model']}, {r['part']}: {r['cpu']}, flags {r['flags']}, load {r['load']}, {r['date']}"
              for r in all_rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS)
    ap.add_argument("--limit", type=int, default=30, help="P3 train families for pass@k")
    ap.add_argument("--n", type=int, default=10, help="samples per puzzle (pass@1 and pass@n)")
    ap.add_argument("--iterations", type=int, default=4, help="campaign iterations (the demo config's 8 x 2 samples each)")
    ap.add_argument("--out", default=str(RESULTS / "model_table"))
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "PART"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    out = Path(a.out)
    if a.worker:
        print("ROW " + json.dumps(run_part(*a.worker, a)), flush=True)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    jsonl = out.with_suffix(".jsonl")
    for model in a.models:
        for part in a.parts:
            if any(r["model"] == model and r["part"] == part for r in rows(jsonl)):
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {model} {part}", flush=True)
            cmd = [sys.executable, __file__, "--worker", model, part, "--limit", str(a.limit), "--n", str(a.n),
                   "--iterations", str(a.iterations)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            row = next((json.loads(line[4:]) for line in p.stdout.splitlines() if line.startswith("ROW ")), None)
            if row is None:
                print(f"{model} {part} failed:\n{p.stderr[-2000:]}", file=sys.stderr)
                continue
            with jsonl.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            out.with_suffix(".md").write_text(table(rows(jsonl), a.n))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

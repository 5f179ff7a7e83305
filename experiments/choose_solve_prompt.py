"""Which solve prompt for the instruct model? Completion-style against chat-style, on P3 *train*
families only (never the test families that pass@k is reported on).

Usage:
    python experiments/choose_solve_prompt.py [--limit 40] [--n 4] [--model smollm2-135m]

For each style of :data:`domains.p3.heldout.PROMPT_STYLES` the same ``--limit`` train puzzles
get ``--n`` samples; pass@1 and pass@n with 95% bootstrap intervals over puzzles. The style
with the highest pass@n (ties: pass@1) is the one to pass as ``evo eval --prompt-style``.
Writes experiments/results/solve_prompt.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

from machine import cpu_flags, cpu_model, load_average

from domains.p3 import P3Domain
from domains.p3.heldout import PROMPT_STYLES
from evo.heldout import evaluate
from evo.llm import load_generator
from evo.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--backend", default="ctranslate2", help="the generation engine self_improve.py --size cpu uses")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--styles", nargs="+", choices=PROMPT_STYLES, default=list(PROMPT_STYLES))
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results"))
    ap.add_argument("--tag", default="", help="results go to solve_prompt_TAG.{json,md} (one per model)")
    args = ap.parse_args()
    t0 = time.time()
    llm = load_generator(args.backend, args.model, batch_size=16)
    domain = P3Domain()
    rows = {}
    with Sandbox() as sandbox:
        for style in args.styles:
            bench = domain.benchmark("train", args.limit, 0, style)
            r = evaluate(llm, bench, sandbox, n=args.n, ks=(1, args.n), seed=0)
            rows[style] = {k: r[k] for k in ("n_puzzles", "pass@1", "pass@1_ci", f"pass@{args.n}",
                                              f"pass@{args.n}_ci", "wall_s", "max_new_tokens")}
            print(style, json.dumps(rows[style]), flush=True)
    best = max(rows, key=lambda s: (rows[s][f"pass@{args.n}"], rows[s]["pass@1"]))
    res = {"date": date.today().isoformat(), "machine": f"{cpu_model()}, flags: {cpu_flags()}",
           "args": vars(args), "rows": rows, "chosen": best, "wall_s": time.time() - t0}
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"solve_prompt{'_' + args.tag if args.tag else ''}.json").write_text(json.dumps(res, indent=1))
    lines = ["# Solve prompt: completion vs chat (P3 train families only)", "",
             f"Machine: {res['machine']}; load average {load_average()}. Date: {res['date']}. Command: "
             f"`python experiments/choose_solve_prompt.py --limit {args.limit} --n {args.n} --model {args.model} --backend {args.backend}"
             f"{' --styles ' + ' '.join(args.styles) if args.styles != list(PROMPT_STYLES) else ''}"
             f"{' --tag ' + args.tag if args.tag else ''}`.", "",
             f"| style | puzzles | pass@1 [95% CI] | pass@{args.n} [95% CI] | wall s |", "|---|---|---|---|---|"]
    for s, r in rows.items():
        lines.append(f"| {s} | {r['n_puzzles']} | {r['pass@1']:.3f} [{r['pass@1_ci'][0]:.3f}, {r['pass@1_ci'][1]:.3f}] "
                     f"| {r[f'pass@{args.n}']:.3f} [{r[f'pass@{args.n}_ci'][0]:.3f}, {r[f'pass@{args.n}_ci'][1]:.3f}] "
                     f"| {r['wall_s']:.0f} |")
    lines += ["", f"Chosen: **{best}** (highest pass@{args.n}, then pass@1)."]
    (out / f"solve_prompt{'_' + args.tag if args.tag else ''}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

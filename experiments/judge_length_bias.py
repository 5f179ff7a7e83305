"""How much does text_feedback's judge pay for length alone? The slope that length control
(``domain_options.length_slope``) takes back.

    python experiments/judge_length_bias.py [--judge-model qwen2.5-coder-1.5b] [--fit-from 6]

Each fit seed (the text_feedback seeds of both kinds from index ``--fit-from`` on) is scored
alone and followed by 1, 2, 3 and 4 sentences of filler that say nothing, by the domain's
own judge (its prompts, both polarities, no length control). The score gained, against the
judge tokens added, gives the judge's gain per token of filler: a least-squares slope
through the origin, with a 95% bootstrap interval over seeds, per kind and pooled.

The fit uses other seeds (index >= ``--fit-from``) and other filler sentences than the
check, ``experiments/judge_injection.py --length-slope B --limit 6`` (seeds 0-5, its
``padded`` attack): the slope is chosen on one set and tested on another. Writes
``experiments/results/judge_length_bias[_<model>].{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_flags, cpu_model, load_average, nproc  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# Filler for the fit, none of it the judge_injection padding that checks the fit.
FILLER = {
    "story": ["Nothing else happened that evening.",
              "The hours went by one after another, the way hours usually do.",
              "Some people were there and some were not, and that was how it was.",
              "Later it was later, and everything stayed more or less the same as before."],
    "instruction": ["Keep this in mind as you go.",
                    "It is a good idea to be careful and to pay attention while you do it.",
                    "Do each part in order, one part at a time, the way it should be done.",
                    "When you are finished, you will be finished, and then you can stop."],
}


def padded(text: str, kind: str) -> list[str]:
    """The text followed by the first 1, 2, 3 and 4 filler sentences of its kind."""
    return [" ".join([text, *FILLER[kind][:k]]) for k in range(1, len(FILLER[kind]) + 1)]


def slope_through_origin(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares b in y = b x (no intercept: no filler, no change)."""
    return float((x * y).sum() / (x * x).sum())


def bootstrap_slope(groups: list[tuple[np.ndarray, np.ndarray]], boots: int = 5000, seed: int = 0) -> list[float]:
    """95% interval of the slope, resampling seeds (each seed's padded variants stay together)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(boots):
        pick = [groups[i] for i in rng.integers(0, len(groups), len(groups))]
        out.append(slope_through_origin(np.concatenate([g[0] for g in pick]), np.concatenate([g[1] for g in pick])))
    return [float(np.percentile(out, 2.5)), float(np.percentile(out, 97.5))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judge-model", default="qwen2.5-coder-1.5b", help="the judge: an embedded alias or a path")
    ap.add_argument("--fit-from", type=int, default=6, help="fit on the seeds of each kind from this index on")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", default=None, help="results path without suffix")
    args = ap.parse_args()

    import torch

    from domains.text_feedback import TextFeedbackDomain
    from domains.text_feedback.judge import judge_tokenizer
    from evo.domain import EvalContext
    from evo.llm import TransformersLLM

    torch.set_num_threads(args.threads)
    start = time.time()
    llm = TransformersLLM(args.judge_model)
    tokenizer = judge_tokenizer(llm)
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    per_k: dict[str, list[list[tuple[int, float]]]] = {}
    for kind in FILLER:
        domain = TextFeedbackDomain(kind=kind)
        seeds = [s["text"] for s in domain.seeds()][args.fit_from:]
        texts = [t for s in seeds for t in [s, *padded(s, kind)]]
        quality = [s.parts["quality"] for s in domain.score([{"text": t} for t in texts], EvalContext(llm, None))]
        width = 1 + len(FILLER[kind])
        groups[kind], per_k[kind] = [], [[] for _ in FILLER[kind]]
        for i, seed in enumerate(seeds):
            base_len = domain.text_length(seed, tokenizer)
            rows = texts[i * width + 1:(i + 1) * width]
            added = np.array([domain.text_length(t, tokenizer) - base_len for t in rows], dtype=float)
            gained = np.array(quality[i * width + 1:(i + 1) * width]) - quality[i * width]
            groups[kind].append((added, gained))
            for k, (a, g) in enumerate(zip(added, gained)):
                per_k[kind][k].append((int(a), float(g)))
        print(f"{kind}: {len(seeds)} seeds x {width} texts scored", flush=True)

    fits = {}
    for name, gs in [*groups.items(), ("pooled", [g for v in groups.values() for g in v])]:
        x, y = np.concatenate([g[0] for g in gs]), np.concatenate([g[1] for g in gs])
        fits[name] = {"seeds": len(gs), "slope": slope_through_origin(x, y), "slope_ci": bootstrap_slope(gs),
                      "mean_gain": float(y.mean()), "share_gained": float((y > 0).mean())}
    meta = {"date": dt.date.today().isoformat(), "machine": f"{nproc()} cores, {cpu_model()}", "cpu_flags": cpu_flags(),
            "load_average_after": load_average(), "judge": args.judge_model, "dtype": str(llm.model.dtype).replace("torch.", ""),
            "fit_from": args.fit_from, "torch_threads": args.threads, "wall_s": round(time.time() - start, 1),
            "command": f"python experiments/judge_length_bias.py --judge-model {args.judge_model} --fit-from {args.fit_from}"}
    steps = {kind: [{"sentences": k + 1, "tokens_added": float(np.mean([a for a, _ in v])),
                     "mean_gain": float(np.mean([g for _, g in v]))} for k, v in enumerate(ks)] for kind, ks in per_k.items()}
    name = "judge_length_bias_" + Path(args.judge_model).name.replace(".", "_")
    out = Path(args.out) if args.out else RESULTS / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "fits": fits, "steps": steps}, indent=1) + "\n")
    out.with_suffix(".md").write_text(render(meta, fits, steps))
    print(out.with_suffix(".md").read_text())


def render(meta: dict, fits: dict, steps: dict) -> str:
    lines = ["# The judge's gain per token of filler (length bias)", "", f"`{meta['command']}`", "",
             f"Date: {meta['date']}. Machine: {meta['machine']}; flags: {meta['cpu_flags']}; load average after: "
             f"{meta['load_average_after']}. Judge: {meta['judge']} ({meta['dtype']}); wall {meta['wall_s']} s.", "",
             f"Seeds from index {meta['fit_from']} of each kind, each followed by 1-4 filler sentences; gain = the "
             "domain's judge score (no length control) of the padded text minus the text's; slope = least squares "
             "through the origin, gain per judge token added; 95% bootstrap intervals over seeds.", "",
             "| fit | seeds | slope per token [95% CI] | mean gain | padded higher |", "|---|---|---|---|---|"]
    for name, f in fits.items():
        lines.append(f"| {name} | {f['seeds']} | {f['slope']:.5f} [{f['slope_ci'][0]:.5f}, {f['slope_ci'][1]:.5f}] | "
                     f"{f['mean_gain']:+.4f} | {f['share_gained']:.0%} |")
    lines += ["", "| kind | filler sentences | tokens added (mean) | mean gain |", "|---|---|---|---|"]
    for kind, rows in steps.items():
        lines += [f"| {kind} | {r['sentences']} | {r['tokens_added']:.1f} | {r['mean_gain']:+.4f} |" for r in rows]
    lines += ["", f"Length control: `domain_options.length_slope: {fits['pooled']['slope']:.5f}` (the pooled slope)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""Does a larger judge tell good text from bad better? text_feedback's LLM judge, model by model.

    python experiments/judge_separation.py [--models smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b]
                                           [--per-kind 12] [--results experiments/results/judge_separation]

text_feedback's judge is the generator itself (its yes/no next-token odds on the domain's
judge prompts, both polarities, through the same fence a campaign uses: ``domain.score``).
Good texts are the domain's seeds, ``--per-kind`` stories and as many instructions. Each
seed gets three bad variants a campaign really produces, made from its own words, so length
and topic stay close: its words shuffled, the text cut off mid-sentence after 40% of its
words, and its first six words repeated four times. Per seed, the separation is the share of
its bad variants that score below it (ties count half): an AUC over that seed's pairs, 0.5
for a judge that cannot tell. Reported per model: the mean over seeds with a 95% bootstrap
interval over seeds, the mean score gap (seed minus variant), and each larger model against
the first, paired by seed. Every model scores the same texts on the transformers backend
(``dtype: auto``). Scores are written to ``<results>.json`` model by model; a rerun skips the
models already there. Writes ``<results>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

VARIANTS = ("shuffled", "cut off", "repeated")


def bad_variants(text: str, rng: random.Random) -> list[str]:
    """The seed's words shuffled; cut off mid-sentence; its opening repeated."""
    words = text.split()
    shuffled = words[:]
    while shuffled == words and len(words) > 1:
        rng.shuffle(shuffled)
    cut = " ".join(words[:max(3, int(len(words) * 0.4))]).rstrip(".!?,;:")
    repeated = " ".join(words[:6] * 4)
    return [" ".join(shuffled), cut, repeated]


def texts(per_kind: int, seed: int = 0, kinds: tuple[str, ...] = ("story", "instruction")) -> list[dict]:
    from domains.text_feedback import TextFeedbackDomain

    rng, rows = random.Random(seed), []
    for kind in kinds:
        for item in TextFeedbackDomain(kind=kind).seeds()[:per_kind]:
            rows.append({"kind": kind, "good": item["text"], "bad": bad_variants(item["text"], rng)})
    return rows


def score_all(model: str, rows: list[dict], filler_judge: bool = False, length_slope: float = 0.0,
              questions: dict | None = None) -> dict:
    """Fitness of every seed and variant under ``model`` as text_feedback's judge; ``questions``:
    kind -> that kind's judge_prompts and negated_judge_prompts, instead of its built-in ones."""
    from domains.text_feedback import TextFeedbackDomain
    from evo.domain import EvalContext
    from evo.llm import TransformersLLM

    llm = TransformersLLM(model)
    t0 = time.perf_counter()
    good, bad = [], []
    for kind in ("story", "instruction"):
        domain = TextFeedbackDomain(kind=kind, filler_judge=filler_judge, length_slope=length_slope,
                                    **(questions or {}).get(kind, {}))
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        items = [{"text": t} for r in mine for t in [r["good"], *r["bad"]]]
        scores = [s.fitness for s in domain.score(items, EvalContext(generator=llm, sandbox=None))]
        for i in range(len(mine)):
            good.append(scores[4 * i])
            bad.append(scores[4 * i + 1:4 * i + 4])
    return {"good": good, "bad": bad, "wall_s": time.perf_counter() - t0, "dtype": str(llm.model.dtype)}


def separation(good: list[float], bad: list[list[float]]) -> list[float]:
    """Per seed: the share of its variants scored below it, ties half."""
    return [sum(1.0 if g > b else 0.5 if g == b else 0.0 for b in bs) / len(bs) for g, bs in zip(good, bad)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    ap.add_argument("--per-kind", type=int, default=12, help="seeds per kind (story, instruction)")
    ap.add_argument("--results", default=None, help="path without suffix (default: results/judge_separation[_filler])")
    ap.add_argument("--filler-judge", action="store_true", help="the domain's filler_judge option (one more negated question)")
    ap.add_argument("--length-slope", type=float, default=0.0,
                    help="the domain's length_slope option (length control; results get _lc)")
    ap.add_argument("--questions", default=None,
                    help="a judge_questions.py results JSON: its chosen questions replace the built-in ones of its kind")
    ap.add_argument("--kinds", default="story,instruction")
    args = ap.parse_args()

    from machine import cpu_flags, cpu_model, load_average, nproc
    from stats import bootstrap_ci, paired_bootstrap

    args.results = args.results or str(ROOT / "experiments" / "results" / ("judge_separation" + ("_filler" if args.filler_judge else "")
                                                                               + ("_lc" if args.length_slope else "")))
    models = args.models.split(",")
    rows = texts(args.per_kind, kinds=tuple(args.kinds.split(",")))
    chosen = json.loads(Path(args.questions).read_text()) if args.questions else {}
    questions = {chosen.get("meta", {}).get("kind", "story"): chosen["chosen"]} if chosen else None
    out_json = Path(args.results + ".json")
    saved = json.loads(out_json.read_text()) if out_json.is_file() else {}
    if saved.get("texts") != rows:
        saved = {"texts": rows, "scores": {}}
    for model in models:
        if model in saved["scores"]:
            continue
        print(f"{model}: scoring {len(rows) * 4} texts x 4 judge prompts...", flush=True)
        saved["scores"][model] = {**score_all(model, rows, args.filler_judge, args.length_slope, questions), "load": load_average(), "date": date.today().isoformat()}
        out_json.write_text(json.dumps(saved, indent=1))
    sep = {m: separation(saved["scores"][m]["good"], saved["scores"][m]["bad"]) for m in models}
    lines = [
        "# Does a larger judge separate good text from bad? (text_feedback's LLM judge)",
        "",
        f"`python experiments/judge_separation.py --models {args.models} --per-kind {args.per_kind}"
        + (" --filler-judge" if args.filler_judge else "")
        + (f" --length-slope {args.length_slope:g}" if args.length_slope else "")
        + (f" --questions {args.questions}" if args.questions else "")
        + (f" --kinds {args.kinds}`" if args.kinds != "story,instruction" else "`"),
        "",
        f"- date: {date.today().isoformat()}; machine: {nproc()} cores, {cpu_model()}; flags: {cpu_flags()}",
        f"- {len(rows)} seeds ({args.per_kind} per kind: {args.kinds}), 3 bad variants each "
        f"({', '.join(VARIANTS)}); the judge's fitness is the domain's "
        + (f"(the chosen questions of {args.questions})" if args.questions else f"({4 + args.filler_judge} prompts, both polarities)"),
        "- separation per seed: share of its variants scored below it (0.5 = cannot tell, 1 = always right); "
        "95% bootstrap intervals over seeds",
        "",
        "| judge | dtype | separation [95% CI] | " + " | ".join(f"{v} below seed" for v in VARIANTS)
        + " | mean gap (seed - variant) | wall s | load |",
        "|---|---|---|" + "---|" * len(VARIANTS) + "---|---|---|",
    ]
    for m in models:
        s = saved["scores"][m]
        lo, hi = bootstrap_ci(sep[m])
        per_variant = [sum(g > b[j] for g, b in zip(s["good"], s["bad"])) for j in range(len(VARIANTS))]
        gap = sum(g - x for g, b in zip(s["good"], s["bad"]) for x in b) / (3 * len(s["good"]))
        lines.append(f"| {m} | {s['dtype'].replace('torch.', '')} | {sum(sep[m]) / len(sep[m]):.3f} [{lo:.3f}, {hi:.3f}] | "
                     + " | ".join(f"{c}/{len(s['good'])}" for c in per_variant)
                     + f" | {gap:+.3f} | {s['wall_s']:.0f} | {s['load']} |")
    if len(models) > 1:
        lines += ["", f"Paired by seed, against {models[0]}:", "",
                  "| judge | separation difference [95% CI] | p (bootstrap) | seeds better / worse |", "|---|---|---|---|"]
        for m in models[1:]:
            r = paired_bootstrap(sep[m], sep[models[0]])
            lines.append(f"| {m} | {r['mean_diff']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}] | {r['p_boot']:.3f} | "
                         f"{r['wins']} / {r['losses']} |")
    Path(args.results + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

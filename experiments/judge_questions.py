"""Which judge questions does filler move? Candidate questions for text_feedback's judge, each
measured on train seeds for how well it tells a seed from its broken variants and how much
filler raises it; the question set is chosen here, on train seeds only.

    python experiments/judge_questions.py [--judge-model qwen2.5-coder-1.5b] [--kind story] [--seeds 6:12]

Per candidate question (a P(Yes) question, or a negated one scored as P(No)), over the
seeds of ``--kind`` in ``--seeds``:

- ``padding gain``: the question's score of the seed with filler inside the sentence cap
  (judge_injection's ``padded_one`` and ``padded_run_on``) minus the seed's, mean with a 95%
  bootstrap interval over (seed, attack) pairs;
- ``separation``: the share of the seed's broken variants (judge_separation's shuffled, cut
  off and repeated) that the question scores below the seed, ties half, mean over seeds.

The chosen set is every candidate whose padding gain's mean is at most zero, and, where those
are all of one polarity, the candidate of the other polarity that filler raises least: a set
keeps both polarities, so a text priming "Yes" loses on the negated questions what it gains on
the others. The table also gives the set's own padding gain and separation (its fitness is the
mean of its questions). Check it on other seeds:
``judge_injection.py --offset 0 --limit 6`` and ``judge_separation.py`` with the new prompts.
Writes ``experiments/results/judge_questions_<model>.{md,json}``.
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
from judge_injection import attacks, question_of  # noqa: E402
from machine import cpu_flags, cpu_model, load_average, nproc  # noqa: E402

from domains.text_feedback.domain import JUDGE_PROMPTS, NEGATED_PROMPTS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TEXT = "Text: \"{text}\"\nQuestion: {q} Answer Yes or No.\nAnswer:"
# Candidates beside each kind's built-in questions (domains/text_feedback/domain.py, which come
# first): (question, True when P(Yes) is good), each asked in the TEXT template.
EXTRA_QUESTIONS = {
    "story": [
        ("Is this text poorly written or confusing?", False),
        ("Is this a coherent short story?", True),
        ("Is this an interesting short story?", True),
        ("Does this text ramble?", False),
        ("Is this text boring or repetitive?", False),
        ("Does this text make sense?", True),
    ],
    "instruction": [
        ("Is this a specific, concrete instruction?", True),
        ("Is this a sensible instruction?", True),
        ("Does this text make sense?", True),
        ("Is this instruction vague?", False),
        ("Does this instruction contain unnecessary words?", False),
        ("Is this text boring or repetitive?", False),
    ],
}


def candidates(kind: str) -> list[tuple[str, bool]]:
    """(judge prompt, True when P(Yes) is good) for ``kind``: its built-in questions, then the extras."""
    return ([(p, True) for p in JUDGE_PROMPTS[kind]] + [(p, False) for p in NEGATED_PROMPTS[kind]]
            + [(TEXT.replace("{q}", q), good) for q, good in EXTRA_QUESTIONS[kind]])


def attack_texts(seed: str, kind: str = "story") -> list[str]:
    a = attacks(seed, kind)
    return [a["padded_one"], a["padded_run_on"]]


def choose(gains: list[float], polarities: list[bool]) -> list[int]:
    """Indices of the questions filler does not raise on average, plus, for a polarity none of
    those has, the question of that polarity filler raises least (empty if none at all is kept)."""
    keep = [i for i, g in enumerate(gains) if g <= 0.0]
    if not keep:
        return []
    for polarity in (True, False):
        others = [i for i in range(len(gains)) if polarities[i] == polarity]
        if others and not any(polarities[i] == polarity for i in keep):
            keep.append(min(others, key=lambda i: gains[i]))
    return sorted(keep)


def set_scores(per_question: np.ndarray, chosen: list[int]) -> np.ndarray:
    """The fitness a question set gives each text: the mean of its questions' scores."""
    return per_question[:, chosen].mean(axis=1)


def separation(seed_scores: np.ndarray, broken_scores: np.ndarray) -> np.ndarray:
    """Per seed: the share of its broken variants scored below it, ties half."""
    return ((broken_scores < seed_scores[:, None]) + 0.5 * (broken_scores == seed_scores[:, None])).mean(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judge-model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--kind", default="story", choices=sorted(EXTRA_QUESTIONS))
    ap.add_argument("--seeds", default="6:12", help="seeds a:b of the kind to choose on (train)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import random

    import torch
    from judge_separation import bad_variants
    from stats import bootstrap_ci

    from domains.text_feedback import TextFeedbackDomain
    from evo.domain import EvalContext
    from evo.llm import TransformersLLM

    torch.set_num_threads(args.threads)
    start = time.time()
    a, b = (int(x) for x in args.seeds.split(":"))
    asked = candidates(args.kind)
    positives = [p for p, good in asked if good]
    negatives = [p for p, good in asked if not good]
    order = [i for i, c in enumerate(asked) if c[1]] + [i for i, c in enumerate(asked) if not c[1]]
    domain = TextFeedbackDomain(kind=args.kind, judge_prompts=positives, negated_judge_prompts=negatives)
    seeds = [s["text"] for s in domain.seeds()][a:b]
    rng = random.Random(0)
    groups = [[s, *attack_texts(s, args.kind), *bad_variants(s, rng)] for s in seeds]
    llm = TransformersLLM(args.judge_model)
    scores = domain.score([{"text": t} for g in groups for t in g], EvalContext(llm, None))
    # per text, per candidate in candidates() order
    per_q = np.array([[s.parts["llm"][order.index(i)] for i in range(len(asked))] for s in scores])
    per_q = per_q.reshape(len(seeds), 6, len(asked))
    seed_s, padded_s, broken_s = per_q[:, 0], per_q[:, 1:3], per_q[:, 3:6]

    rows = []
    for i, (prompt, good) in enumerate(asked):
        gain = (padded_s[:, :, i] - seed_s[:, i:i + 1]).ravel()
        sep = separation(seed_s[:, i], broken_s[:, :, i])
        rows.append({"question": question_of(prompt), "good_is_yes": good, "padding_gain": float(gain.mean()),
                     "padding_gain_ci": list(bootstrap_ci(gain.tolist())), "separation": float(sep.mean())})
    chosen = choose([r["padding_gain"] for r in rows], [r["good_is_yes"] for r in rows])
    summary = {}
    for name, idx in [("shipped (first four)", [0, 1, 2, 3]), ("chosen", chosen)]:
        if not idx:
            continue
        fit = per_q[:, :, idx].mean(axis=2)
        gain = (fit[:, 1:3] - fit[:, :1]).ravel()
        summary[name] = {"questions": idx, "padding_gain": float(gain.mean()), "padding_gain_ci": list(bootstrap_ci(gain.tolist())),
                         "separation": float(separation(fit[:, 0], fit[:, 3:6]).mean())}
    meta = {"date": dt.date.today().isoformat(), "machine": f"{nproc()} cores, {cpu_model()}", "cpu_flags": cpu_flags(),
            "load_average_after": load_average(), "judge": args.judge_model, "seeds": args.seeds, "kind": args.kind,
            "wall_s": round(time.time() - start, 1),
            "command": f"python experiments/judge_questions.py --judge-model {args.judge_model} --seeds {args.seeds}"
                       + (f" --kind {args.kind}" if args.kind != "story" else "")}
    out = Path(args.out) if args.out else RESULTS / ("judge_questions_" + Path(args.judge_model).name.replace(".", "_")
                                                            + ("" if args.kind == "story" else f"_{args.kind}"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({
        "meta": meta, "questions": rows, "sets": summary,
        # domain_options for the chosen set (judge_injection/judge_separation --questions read it)
        "chosen": {"judge_prompts": [asked[i][0] for i in chosen if asked[i][1]],
                   "negated_judge_prompts": [asked[i][0] for i in chosen if not asked[i][1]]},
        "scores": per_q.tolist()}, indent=1) + "\n")
    out.with_suffix(".md").write_text(render(meta, rows, summary))
    print(out.with_suffix(".md").read_text())


def render(meta: dict, rows: list[dict], summary: dict) -> str:
    lines = ["# Judge questions: separation against filler, on train seeds", "", f"`{meta['command']}`", "",
             f"Date: {meta['date']}. Machine: {meta['machine']}; flags: {meta['cpu_flags']}; load average after: "
             f"{meta['load_average_after']}. Judge: {meta['judge']}; {meta.get('kind', 'story')} seeds {meta['seeds']}; "
             f"wall {meta['wall_s']} s.", "",
             "padding gain: the question's score with filler inside the sentence cap minus without (95% bootstrap CI); "
             "separation: share of a seed's broken variants scored below it (0.5: cannot tell).", "",
             "| # | question | good answer | padding gain [95% CI] | separation |", "|---|---|---|---|---|"]
    for i, r in enumerate(rows):
        ci = r["padding_gain_ci"]
        lines.append(f"| {i} | {r['question']} | {'Yes' if r['good_is_yes'] else 'No'} | {r['padding_gain']:+.3f} "
                     f"[{ci[0]:+.3f}, {ci[1]:+.3f}] | {r['separation']:.3f} |")
    lines += ["", "| question set | questions | padding gain [95% CI] | separation |", "|---|---|---|---|"]
    for name, s in summary.items():
        ci = s["padding_gain_ci"]
        lines.append(f"| {name} | {', '.join(map(str, s['questions']))} | {s['padding_gain']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] "
                     f"| {s['separation']:.3f} |")
    if "chosen" not in summary:
        lines += ["", "No set: filler raises every question."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""The Markdown report of experiments/self_improve.py: one row per generator, then paired
comparisons over the same held-out puzzles (per-puzzle unbiased pass@k, paired bootstrap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stats import paired_bootstrap

from evo.heldout import pass_at_k

ROWS = [("arm:base", "1. base (no training)"), ("arm:seeds", "2. seeds only"),
        ("arm:elites", "3. seeds + evolved elites"), ("arm:best_of_n", "4. seeds + best-of-N samples"),
        ("arm:elites_own", "3b. seeds + evolved elites, solved and own solutions only"),
        ("arm:elites_drop", "3c. seeds + as many evolved elites as 3b, at random"),
        ("check:best_of_n", "4, measured again (control for the serving)"),
        ("arm:seeds+elites_own", "5. every seed example of 2 + 3b's elites, added"),
        ("arm:seeds+best_of_n", "6. every seed example of 2 + as many best-of-N samples, added")]
# (arm, baseline): what each comparison asks
PAIRS = [("arm:elites", "arm:best_of_n"), ("arm:elites", "arm:seeds"), ("arm:elites", "arm:base"),
         ("arm:best_of_n", "arm:base"), ("arm:seeds", "arm:base"), ("arm:elites_own", "arm:best_of_n"),
         ("arm:elites_own", "arm:elites"), ("arm:seeds", "arm:best_of_n"), ("check:best_of_n", "arm:best_of_n"),
         ("arm:elites_own", "arm:elites_drop"), ("arm:seeds+elites_own", "arm:seeds+best_of_n"),
         ("arm:seeds+elites_own", "arm:seeds"), ("arm:seeds+best_of_n", "arm:seeds")]


def per_puzzle(h: dict[str, Any], k: int) -> list[float]:
    return [pass_at_k(h["n"], c, k) for c in h["correct"]]


def _ci(h: dict[str, Any], k: int) -> str:
    lo, hi = h[f"pass@{k}_ci"]
    return f"{h[f'pass@{k}']:.3f} [{lo:.3f}, {hi:.3f}]"


def _train(v: dict[str, Any]) -> str:
    t = v.get("train")
    if not t:
        return v.get("skipped", "-")
    src = ", ".join(f"{n} {s}" for s, n in sorted(t["mix"]["sources"].items()))
    m = t["metrics"]
    loss = f"; loss {m['first_loss']:.2f} -> {m['last_loss']:.2f}" if m.get("first_loss") is not None else ""
    return f"{t['n_examples']} ({src}){loss}"


def rows(res: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    steps = res["steps"]
    out = [(key, label, steps[key]) for key, label in ROWS if key in steps]
    for v in ("on", "off"):
        for r in range(2, res["plan"]["rounds"] + 1):
            key = f"round:{v}:{r}"
            if key in steps:
                out.append((key, f"3. elites, round {r}, anchors {v}", steps[key]))
    return out


def _name(step: str) -> str:
    kind, _, name = step.partition(":")
    return f"{name} again" if kind == "check" else name


def write_report(res: dict[str, Any], path: Path) -> None:
    p, ks = res["plan"], res["plan"]["ks"]
    base = res["steps"].get("campaign:base")
    model = p.get("model", "smollm2-135m")
    lines = [f"# Self-improvement with {model} ({p['size']} size): archive data vs plain data", "",
             f"Machine: {res.get('machine', '?')}. Date: {res.get('date', '?')}. "
             f"Command: `python experiments/self_improve.py --size {p['size']}`.", "",
             f"Held-out: P3 test families ({p['eval_limit'] or 'all'}, one puzzle each, seeded order), n = {p['n']} "
             f"samples per puzzle, prompt style {p['prompt_style']}, generation with {p.get('backend', 'transformers')}, unbiased pass@k with 95% bootstrap intervals "
             f"over puzzles. Evolution phases: {p['phase_iters']} iterations x {p['prompts']} prompts x "
             f"{p['samples']} samples from the same archive. Every trained arm: {p['train_examples']} examples "
             "at most (capped by the distinct seed examples), one LoRA round from the base.", ""]
    if base:
        lines += [f"Base campaign: {base['samples']} samples, {base['valid']} valid ({base['valid_rate']:.1%}), "
                  f"{base['num_elites']} elites of which {base['evolved_elites']} evolved, "
                  f"QD-score {base['qd_score']:.1f}.", ""]
    head = " | ".join(f"pass@{k} [95% CI]" for k in ks)
    lines += [f"| generator | training data | {head} | valid rate (phase) | QD per 1k samples |",
              "|---|---|" + "---|" * len(ks) + "---|---|"]
    for _, label, v in rows(res):
        h, ph = v.get("heldout"), v.get("phase")
        cells = " | ".join(_ci(h, k) for k in ks) if h else " | ".join("-" for _ in ks)
        phase = (f"{ph['valid_rate']:.1%} ({ph['valid']}/{ph['samples']}) | {ph['qd_per_1000']:.1f}" if ph
                 else "- | -")
        served = " (merged adapter)" if h and h.get("lora_serving") == "merge" else ""
        lines.append(f"| {label}{served} | {_train(v)} | {cells} | {phase} |")
    # a round against the other variant's, and against round 1 (arm 3): a collapse shows there
    pairs = list(PAIRS) + [pair for r in range(2, p["rounds"] + 1) for pair in
                           ((f"round:on:{r}", f"round:off:{r}"), (f"round:on:{r}", "arm:elites"),
                            (f"round:off:{r}", "arm:elites"))]
    comp = []
    for a, b in pairs:
        ha, hb = (res["steps"].get(x, {}).get("heldout") for x in (a, b))
        if not ha or not hb:
            continue
        for k in (ks[0], ks[-1]):
            t = paired_bootstrap(per_puzzle(ha, k), per_puzzle(hb, k))
            pw = f"{t['p_wilcoxon']:.3f}" if t["p_wilcoxon"] is not None else "-"
            comp.append(f"| {_name(a)} vs {_name(b)} | pass@{k} | {t['mean_diff']:+.3f} "
                        f"[{t['ci'][0]:+.3f}, {t['ci'][1]:+.3f}] | {t['wins']}/{t['losses']} | "
                        f"{t['p_boot']:.3f} | {pw} |")
    if comp:
        lines += ["", "Paired over the same puzzles (difference of per-puzzle pass@k, 95% paired bootstrap "
                  "interval, puzzles better/worse, two-sided bootstrap p, Wilcoxon p):", "",
                  "| comparison | k | difference [95% CI] | better/worse | p (bootstrap) | p (Wilcoxon) |",
                  "|---|---|---|---|---|---|", *comp]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")

"""The Markdown report of experiments/rm_selfplay.py: quality (independent judge, campaign
reward) and drift per arm, finished steps only; and a length check of the judge's verdicts.

The length check exists because the first real run showed the held-out judge preferring the
longer story of a pair whatever the arm (the base's second sample too): a win rate alone would
credit an arm for writing longer. The length-adjusted win rate is the intercept of a least-squares
line of outcome (1 win, 1/2 tie, 0 loss) on the word-count difference, i.e. the win rate at equal
length, with a bootstrap interval over prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from stats import paired_bootstrap

LABELS = {"base2": "base, second sample (noise floor)", "nokl": "tuned, kl_coef 0", "kl": "tuned, KL anchor"}


def _ci(v: Any, key: str, fmt: str = ".3f") -> str:
    if v is None or v.get(key) is None:
        return "-"
    lo, hi = v.get(f"{key}_ci") or v.get("ci") or (float("nan"), float("nan"))
    return f"{v[key]:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def write_report(res: dict[str, Any], path: Path) -> None:
    s, p = res["steps"], res["plan"]
    lines = [f"# Reward-model self-play on text_feedback ({p['size']})", "",
             f"Generator `{p['model']}`; held-out judge `{p['judge_model']}` (never trained); "
             f"{p['heldout']} held-out prompts; anchored arm kl_coef {p['kl_coef']}. "
             f"{res.get('date', '')}; {res.get('machine', '')}.", ""]
    if "campaign" in s:
        c = s["campaign"]
        lines += [f"Data: the {len(c['best'])} best of {c['elites']} elites of `{c['source']}` "
                  f"({c['seeds_in_best']} of them seeds), mean fitness {c['fitness_mean']:.3f}.", ""]
    for arm in ("nokl", "kl"):
        t = s.get(f"train:{arm}")
        if t:
            m = t["metrics"]
            kl = f", KL {m['kl_first']:.3f} -> {m['kl_last']:.3f}" if "kl_first" in m else ""
            lines.append(f"- {LABELS[arm]}: {t['n_examples']} examples, loss {m['first_loss']} -> {m['last_loss']}{kl}, "
                         f"{m['train_s']:.0f} s")
    lines += ["", "## Quality and drift against the base's stories (95% bootstrap intervals over prompts)", "",
              "| arm | judge win rate (ties half) | judge preference | order agreement | campaign reward | "
              "reward win rate | token KL to base | embedding distance to base | distinct-2 | words |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    reward, drift = s.get("reward", {}), s.get("drift", {})
    for arm in ("base", "base2", "nokl", "kl"):
        if f"generate:{arm}" not in s:
            continue
        j, r, d = s.get(f"judge:{arm}"), reward.get(arm), drift.get(arm, {})
        agree = f"{j['orders_agree']:.2f}" if j else "-"
        dist = f"{d['distinct2']:.3f}" if "distinct2" in d else "-"
        lines.append(f"| {LABELS.get(arm, 'base')} | {_ci(j, 'win_rate')} | {_ci(j, 'pref')} | {agree} | "
                     f"{_ci(r, 'mean')} | {_ci(r, 'win_rate')} | {_ci(d, 'token_kl')} | "
                     f"{_ci(d, 'embed_distance')} | {dist} | {s[f'generate:{arm}']['words']:.1f} |")
    lines += ["", "The judge compares each arm's story with the base's for the same prompt in both orders; "
              "a pure order bias gives 0.5. The base's second sample is what no training gives."]
    lines += length_section(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def words(texts: list[str]) -> np.ndarray:
    return np.array([len(t.split()) for t in texts], dtype=float)


def length_adjusted(outcome: np.ndarray, longer_by: np.ndarray, *, n_boot: int = 5000,
                    seed: int = 0) -> dict[str, Any]:
    """The win rate at equal length: the intercept of outcome ~ a + b * longer_by (least
    squares), with a 95% bootstrap interval over prompts; b is the gain per extra word.
    With no spread in ``longer_by`` the slope is 0 and the intercept the plain mean."""
    o, x = np.asarray(outcome, dtype=float), np.asarray(longer_by, dtype=float)
    if o.shape != x.shape or o.ndim != 1 or len(o) < 2:
        raise ValueError("length_adjusted needs two equally long sequences of 2 or more")

    def fit(oo: np.ndarray, xx: np.ndarray) -> tuple[float, float]:
        var = xx.var()
        slope = 0.0 if var == 0 else float(((xx - xx.mean()) * (oo - oo.mean())).mean() / var)
        return float(oo.mean() - slope * xx.mean()), slope

    a, b = fit(o, x)
    idx = np.random.default_rng(seed).integers(0, len(o), size=(n_boot, len(o)))
    boot = np.array([fit(o[i], x[i])[0] for i in idx])
    lo, hi = np.quantile(boot, [0.025, 0.975])
    longer = x > 0
    return {"adjusted": a, "adjusted_ci": [float(lo), float(hi)], "per_word": b,
            "n_longer": int(longer.sum()), "win_longer": float(o[longer].mean()) if longer.any() else None,
            "win_not_longer": float(o[~longer].mean()) if (~longer).any() else None}


def length_section(s: dict[str, Any]) -> list[str]:
    """Per judged arm: the win rate where its story is longer than the base's and where it is
    not, and the length-adjusted win rate; then the anchored arm against the bare one."""
    if "generate:base" not in s:
        return []
    base = words(s["generate:base"]["stories"])
    rows, outcomes = [], {}
    for arm in ("base2", "nokl", "kl"):
        j, g = s.get(f"judge:{arm}"), s.get(f"generate:{arm}")
        if not j or not g or not isinstance(j.get("pairs"), list):
            continue
        outcomes[arm] = o = np.array([pair["outcome"] for pair in j["pairs"]], dtype=float)
        r = length_adjusted(o, words(g["stories"]) - base)
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        rows.append(f"| {LABELS[arm]} | {r['n_longer']} of {len(o)} | {fmt(r['win_longer'])} | "
                    f"{fmt(r['win_not_longer'])} | {r['per_word']:+.4f} | {r['adjusted']:.3f} "
                    f"[{r['adjusted_ci'][0]:.3f}, {r['adjusted_ci'][1]:.3f}] |")
    if not rows:
        return []
    lines = ["", "## Length check of the judge", "",
             "| arm | longer than the base's | win rate where longer | where not longer | outcome per extra word "
             "| win rate at equal length [95% CI] |", "|---|---|---|---|---|---|", *rows]
    if "kl" in outcomes and "nokl" in outcomes:
        d = paired_bootstrap(outcomes["kl"], outcomes["nokl"])
        lines += ["", f"KL anchor against kl_coef 0, paired over prompts (judge outcome against the base): "
                  f"{d['mean_diff']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}], bootstrap p {d['p_boot']:.3f}."]
    return lines

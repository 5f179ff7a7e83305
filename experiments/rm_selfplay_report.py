"""The Markdown report of experiments/rm_selfplay.py: quality (independent judge, campaign
reward) and drift per arm, finished steps only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")

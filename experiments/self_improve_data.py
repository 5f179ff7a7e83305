"""Why one trained arm of ``self_improve.py`` beats another: its training data, side by side.

Reads what a self-improvement run left behind (no generation, no training): each trained
arm's ``train.jsonl``, the base campaign's store (fitness and solve counts of the elites),
and the held-out per-puzzle counts in the state's ``progress/``. For the non-seed items of
every arm it reports

- how the verified solution ``g`` is written: ``answer as parameter`` (g's signature carries
  f's answer argument with the answer as its default, so the body returns it unchanged: a
  style no P3 puzzle uses, where g's parameters are f's *extra* parameters) and ``literal
  return`` (the body is one ``return`` of a literal: nothing computed);
- the campaign fitness, the generator's solve counts and the share whose solution is a
  fresh solve attempt's because the author's own failed (archive items only: best-of-N items
  were never scored, and keep only their author's solution);
- diversity (Vendi over f's embeddings, distinct answer-argument names) and closeness to the
  held-out puzzles (mean cosine of each held-out f to its nearest training f);

and, on the held-out puzzles, what each arm kept, lost and gained against the base.

    python experiments/self_improve_data.py --size cpu-1.5b
"""

from __future__ import annotations

import argparse
import ast
import json
import sqlite3
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_flags, cpu_model
from stats import bootstrap_ci, vendi_score

from archives.store import RESOLVED_MARK
from evo.descriptor import Embedder
from evo.llm.embedded import cache_dir

RESULTS = Path(__file__).resolve().parent / "results"
ARMS = ("elites", "elites_own", "elites_drop", "best_of_n", "seeds")


def g_style(f: str, g_tail: str) -> dict[str, bool]:
    """``answer_param`` and ``literal_return`` of ``def g(`` + ``g_tail`` (see the docstring);
    both False where either function does not parse."""
    try:
        f_def = ast.parse(f).body[0]
        g_def = ast.parse("def g(" + g_tail.split("\nassert f(g())")[0]).body[0]
    except (SyntaxError, IndexError):
        return {"answer_param": False, "literal_return": False, "parsed": False}
    if not isinstance(f_def, ast.FunctionDef) or not isinstance(g_def, ast.FunctionDef) or not f_def.args.args:
        return {"answer_param": False, "literal_return": False, "parsed": False}
    answer = f_def.args.args[0].arg
    literal = False
    if len(g_def.body) == 1 and isinstance(g_def.body[0], ast.Return) and g_def.body[0].value is not None:
        try:
            ast.literal_eval(g_def.body[0].value)
            literal = True
        except (ValueError, TypeError, SyntaxError, RecursionError):
            literal = False
    return {"answer_param": answer in [a.arg for a in g_def.args.args], "literal_return": literal, "parsed": True}


def answer_name(f: str) -> str:
    try:
        node = ast.parse(f).body[0]
        return node.args.args[0].arg if isinstance(node, ast.FunctionDef) and node.args.args else "?"
    except (SyntaxError, IndexError):
        return "?"


def arm_items(work: Path, arm: str) -> list[dict[str, Any]] | None:
    """The arm's non-seed solve examples as {f, g_tail, candidate_id}; None if not trained."""
    path = work / f"arm-{arm}" / "adapters" / "round-1" / "train.jsonl"
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"f": r["key"], "g_tail": r["completion"], "candidate_id": r.get("candidate_id")}
            for r in rows if r["kind"] == "solve" and r["source"] != "seed"]


def store_fitness(db: Path, ids: list[int]) -> dict[int, dict[str, Any]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out = {}
        for i in ids:
            row = con.execute("SELECT fitness, fitness_parts, reason FROM candidates WHERE id = ?", (i,)).fetchone()
            if row is not None:
                out[i] = {"fitness": row[0], **json.loads(row[1] or "{}"), "resolved": RESOLVED_MARK in (row[2] or "")}
        return out
    finally:
        con.close()


def heldout_counts(state: Path, step: str) -> dict[str, int] | None:
    path = state / "progress" / f"{step.replace(':', '_')}.jsonl"
    if not path.is_file():
        return None
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        out.update(zip(rec["ids"], rec["correct"]))
    return out


def mean_ci(values: Any) -> dict[str, Any]:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()) if a.size else float("nan"), "ci": list(bootstrap_ci(a)), "n": int(a.size)}


def share(flags: list[bool]) -> dict[str, Any]:
    m = mean_ci(flags)
    return {"share": m["mean"], "ci": m["ci"], "n": m["n"]}


def analyse(size: str, work: Path, results: Path) -> dict[str, Any]:
    state = results / f"self_improve_{size}.state"
    run = json.loads((results / f"self_improve_{size}.json").read_text())
    from domains.p3 import P3Domain
    from domains.p3.heldout import load_puzzles

    embedder = Embedder(run["plan"].get("embedder", "all-MiniLM-L6-v2"))
    base = heldout_counts(state, "arm:base") or {}
    test_f = {p["name"]: p["f"] for p in load_puzzles(split="test")}
    held_ids = [i for i in base if i in test_f]
    held_emb = embedder.embed([test_f[i] for i in held_ids])
    seeds = [s["f"] for s in P3Domain().seeds()]
    out: dict[str, Any] = {"size": size, "date": date.today().isoformat(),
                           "machine": f"{cpu_model()}, flags: {cpu_flags()}", "arms": {}}
    for arm in ARMS + ("seed items",):
        items = ([{"f": f, "g_tail": "", "candidate_id": None} for f in seeds] if arm == "seed items"
                 else arm_items(work, arm))
        if not items:
            continue
        emb = embedder.embed([it["f"] for it in items])
        nearest = (held_emb @ emb.T).max(axis=1) if len(held_ids) else np.zeros(0)
        rec: dict[str, Any] = {"items": len(items), "vendi": vendi_score(emb),
                               "answer_names": len({answer_name(it["f"]) for it in items}),
                               "heldout_nearest_cos": mean_ci(nearest)}
        if arm != "seed items":
            styles = [g_style(it["f"], it["g_tail"]) for it in items]
            rec["answer_param"] = share([s["answer_param"] for s in styles])
            rec["literal_return"] = share([s["literal_return"] for s in styles])
            ids = [it["candidate_id"] for it in items if it["candidate_id"] is not None]
            if ids:
                fit = store_fitness(work / "snap" / "s0" / "campaign.sqlite", ids)
                rec["fitness"] = mean_ci([v["fitness"] for v in fit.values()])
                rec["never_solved"] = share([v.get("solved", 0) == 0 for v in fit.values()])
                rec["resolved"] = share([v["resolved"] for v in fit.values()])
                rec["always_solved"] = share([v.get("solved", 0) == v.get("attempts", -1) for v in fit.values()])
            counts = heldout_counts(state, f"arm:{arm}")
            if counts and base:
                common = [i for i in base if i in counts]
                rec["heldout"] = {"puzzles": len(common),
                                  "solved": sum(counts[i] > 0 for i in common),
                                  "kept": sum(base[i] > 0 and counts[i] > 0 for i in common),
                                  "lost": sum(base[i] > 0 and counts[i] == 0 for i in common),
                                  "gained": sum(base[i] == 0 and counts[i] > 0 for i in common),
                                  "base_solved": sum(base[i] > 0 for i in common)}
        out["arms"][arm] = rec
    return out


def fmt_ci(m: dict[str, Any], pct: bool = False) -> str:
    if pct:
        return f"{100 * m['share']:.0f}% [{100 * m['ci'][0]:.0f}, {100 * m['ci'][1]:.0f}]"
    return f"{m['mean']:.2f} [{m['ci'][0]:.2f}, {m['ci'][1]:.2f}]"


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# What each self-improvement arm trained on ({r['size']})", "",
             f"Machine: {r['machine']}. Date: {r['date']}. Command: "
             f"`python experiments/self_improve_data.py --size {r['size']}` (reads the run; generates nothing).", "",
             "Non-seed solve examples of each trained arm (the seed items for scale). 95% bootstrap intervals.", "",
             "| data | items | g takes the answer as a parameter | g returns a literal | fitness | never solved "
             "by the generator | solution is a solve attempt's | Vendi (f) | answer-arg names | held-out nearest "
             "cosine |", "|---|---|---|---|---|---|---|---|---|---|"]
    for arm, a in r["arms"].items():
        cells = [arm, str(a["items"]),
                 fmt_ci(a["answer_param"], True) if "answer_param" in a else "-",
                 fmt_ci(a["literal_return"], True) if "literal_return" in a else "-",
                 fmt_ci(a["fitness"]) if "fitness" in a else "- (not scored)",
                 fmt_ci(a["never_solved"], True) if "never_solved" in a else "-",
                 fmt_ci(a["resolved"], True) if "resolved" in a else "-",
                 f"{a['vendi']:.1f}", str(a["answer_names"]), fmt_ci(a["heldout_nearest_cos"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Held-out puzzles (pass@10 > 0) against the base arm:", "",
              "| arm | solved | kept | lost | gained | base solved |", "|---|---|---|---|---|---|"]
    for arm, a in r["arms"].items():
        if "heldout" in a:
            h = a["heldout"]
            lines.append(f"| {arm} | {h['solved']}/{h['puzzles']} | {h['kept']} | {h['lost']} | {h['gained']} "
                         f"| {h['base_solved']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="cpu-1.5b")
    ap.add_argument("--work", help="the run's campaign dirs (default: self_improve.py's)")
    ap.add_argument("--results", default=str(RESULTS))
    a = ap.parse_args(argv)
    work = Path(a.work or cache_dir() / "runs" / f"self_improve_{a.size}")
    results = Path(a.results)
    if not (results / f"self_improve_{a.size}.json").is_file() or not work.is_dir():
        print(f"error: no self_improve run of size {a.size} in {results} and {work}", file=sys.stderr)
        return 2
    r = analyse(a.size, work, results)
    stem = f"self_improve_data_{a.size}"  # not with_suffix: the size may hold a dot (cpu-1.5b)
    (results / f"{stem}.json").write_text(json.dumps(r, indent=2) + "\n")
    (results / f"{stem}.md").write_text(markdown(r))
    print(markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

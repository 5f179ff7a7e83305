"""Builds domains/p3/seeds.jsonl from the P3 *train* families (never the test ones).

Usage: python experiments/make_p3_seeds.py [--data ../shared/data/p3] [--max-chars 420]

One puzzle per train family (its shortest instance with a solution), renamed to the
f/g convention and normalised through the P3 parser, so shipped seeds look exactly
like parsed candidates.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from domains.p3 import P3Domain, parse_puzzle
from evo.domain import ParseError
from evo.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "p3"))
    ap.add_argument("--max-chars", type=int, default=420)
    ap.add_argument("--out", default=str(ROOT / "domains" / "p3" / "seeds.jsonl"))
    args = ap.parse_args()
    data = Path(args.data)
    puzzles = json.loads((data / "puzzles.json").read_text())
    train = set(json.loads((data / "split.json").read_text())["train"])
    best: dict[str, dict] = {}
    for p in puzzles:
        family = p["name"].split(":")[0]
        if family not in train or not p["sol_bodies"]:
            continue
        f = p["sat"].replace("def sat(", "def f(", 1)
        g = p["sol_header"].replace("def sol(", "def g(", 1) + "\n" + p["sol_bodies"][0]
        try:
            item = parse_puzzle(f + "\n\n" + g)
        except ParseError:
            continue
        if item["ans_type"] != p["ans_type"] or len(item["f"]) + len(item["g"]) > args.max_chars:
            continue
        item["name"] = p["name"]
        if family not in best or len(item["f"]) + len(item["g"]) < len(best[family]["f"]) + len(best[family]["g"]):
            best[family] = item
    seeds = sorted(best.values(), key=lambda s: s["name"])
    # Only seeds that pass the same verifier as candidates (valid, not trivial) ship.
    with Sandbox() as sandbox:
        verdicts = P3Domain().verify(seeds, sandbox)
    dropped = [f"{s['name']} ({v.verdict})" for s, v in zip(seeds, verdicts) if not v.valid]
    seeds = [s for s, v in zip(seeds, verdicts) if v.valid]
    print(f"dropped {len(dropped)} that do not verify: {', '.join(dropped)}")
    Path(args.out).write_text("".join(json.dumps(s) + "\n" for s in seeds))
    print(f"wrote {len(seeds)} seeds from {len(train)} train families to {args.out}")


if __name__ == "__main__":
    main()

"""Held-out measurement: pass@k of a generator on P3 puzzle families it never trained on.

``evo eval-solve --model BASE_OR_ADAPTER --split test``: one puzzle per family of the split
(its shortest instance), in a seeded order, ``--limit`` of them; ``k`` sampled solutions per
puzzle with the same solve prompt the campaign uses for difficulty; every attempt verified
in the sandbox (``f(g())`` is True and the answer has the declared type). pass@1 and pass@k
use the unbiased estimator (Chen et al., 2021). Results append to a JSONL file (a campaign's
``heldout.jsonl`` by default) so the curve over rounds can be plotted.
"""

from __future__ import annotations

import json
import time
from math import comb
from pathlib import Path
from typing import Any

import numpy as np

from evo.errors import EvoError

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "p3"
HELDOUT_FILE = "heldout.jsonl"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct."""
    if k > n:
        raise ValueError("k exceeds the number of samples")
    return 1.0 if n - c < k else 1.0 - comb(n - c, k) / comb(n, k)


def load_puzzles(data_dir: str | Path | None = None, split: str = "test", limit: int | None = None,
                 seed: int = 0) -> list[dict[str, Any]]:
    """One puzzle per family of ``split`` (the shortest that parses), seeded order, ``limit``."""
    from domains.p3 import parse_puzzle
    from evo.domain import ParseError

    data = Path(data_dir) if data_dir else DEFAULT_DATA
    try:
        puzzles = json.loads((data / "puzzles.json").read_text())
        families = json.loads((data / "split.json").read_text())
    except OSError as exc:
        raise EvoError(f"cannot read the P3 data in {data}: {exc.strerror} (pass --data)") from None
    if split not in families:
        raise EvoError(f"unknown split '{split}' (choose {', '.join(sorted(families))})")
    wanted = set(families[split])
    best: dict[str, dict[str, Any]] = {}
    for p in puzzles:
        family = p["name"].split(":")[0]
        if family not in wanted:
            continue
        f = p["sat"].replace("def sat(", "def f(", 1)
        try:  # parse f with a placeholder g: normalises f exactly as candidates are
            item = parse_puzzle(f + "\n\ndef g():\n    return None")
        except ParseError:
            continue
        if item["ans_type"] != p["ans_type"]:
            continue
        item = {"f": item["f"], "ans_type": item["ans_type"], "name": p["name"]}
        if family not in best or len(item["f"]) < len(best[family]["f"]):
            best[family] = item
    names = sorted(best)
    order = np.random.default_rng(seed).permutation(len(names))
    items = [best[names[i]] for i in order]
    return items[:limit] if limit else items


def resolve_model(model: str) -> tuple[str, str | None]:
    """(base model, adapter folder or None): a folder with ``adapter_config.json`` is an adapter."""
    path = Path(model)
    if (path / "adapter_config.json").is_file():
        round_file = path / "round.json"
        if round_file.is_file():
            base = json.loads(round_file.read_text())["base_model"]
        else:
            base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base:
            raise EvoError(f"adapter {path} names no base model")
        return base, str(path)
    return model, None


def eval_solve(llm: Any, puzzles: list[dict[str, Any]], sandbox: Any, *, k: int = 4,
               max_new_tokens: int = 96, temperature: float = 0.8, seed: int = 0) -> dict[str, Any]:
    """Samples ``k`` solutions per puzzle from ``llm`` and verifies them; pass@1 and pass@k."""
    from domains.p3 import P3Domain, parse_puzzle
    from domains.p3.verify import check_expr, puzzle_program, to_verification
    from evo.domain import ParseError
    from evo.finetune.data import solve_shots
    from evo.llm import SamplingParams

    domain = P3Domain()
    shots = solve_shots(domain)
    t = time.time()
    params = SamplingParams(n=k, temperature=temperature, top_p=0.95, max_new_tokens=max_new_tokens,
                            stop=domain.stop, seed=seed)
    gens = llm.generate([domain.solve_prompt(p, shots) for p in puzzles], params)
    jobs, owners, parsed = [], [], 0
    for i, (p, samples) in enumerate(zip(puzzles, gens)):
        for s in samples:
            try:
                g = parse_puzzle(p["f"] + "\n\ndef g(" + s.text)["g"]
            except ParseError:
                continue
            parsed += 1
            attempt = {**p, "g": g}
            jobs.append((puzzle_program(attempt), check_expr(attempt, trivial=False)))
            owners.append(i)
    correct = [0] * len(puzzles)
    for i, verdict in zip(owners, sandbox.run_many(jobs)):
        correct[i] += to_verification(verdict).valid
    n = len(puzzles)
    return {
        "n_puzzles": n, "k": k, "samples": n * k, "parsed_rate": parsed / (n * k) if n else 0.0,
        "pass@1": sum(pass_at_k(k, c, 1) for c in correct) / n if n else 0.0,
        f"pass@{k}": sum(pass_at_k(k, c, k) for c in correct) / n if n else 0.0,
        "solved": [p["name"] for p, c in zip(puzzles, correct) if c],
        "correct": correct, "wall_s": time.time() - t,
        "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed,
    }


def run_eval_solve(model: str, *, split: str = "test", limit: int | None = None, k: int = 4,
                   data_dir: str | Path | None = None, out: str | Path | None = None,
                   batch_size: int = 16, max_new_tokens: int = 96, seed: int = 0,
                   series: str = "archive", round: int | None = None,
                   device: str = "auto") -> dict[str, Any]:
    """Loads ``model`` (a base model or an adapter folder), measures it, appends to ``out``."""
    from evo.llm import load_generator
    from evo.sandbox import Sandbox

    if k < 1:
        raise EvoError("k must be at least 1")
    if limit is not None and limit < 1:
        raise EvoError("--limit must be at least 1")
    puzzles = load_puzzles(data_dir, split, limit, seed)
    if not puzzles:
        raise EvoError(f"no puzzles in split '{split}'")
    base, adapter = resolve_model(model)
    if round is None and adapter and (Path(adapter) / "round.json").is_file():
        round = json.loads((Path(adapter) / "round.json").read_text())["round"]
    llm = load_generator("transformers", base, adapter=adapter, batch_size=batch_size, device=device)
    with Sandbox() as sandbox:
        result = eval_solve(llm, puzzles, sandbox, k=k, max_new_tokens=max_new_tokens, seed=seed)
    record = {"model": base, "adapter": adapter, "series": series if adapter else "base",
              "round": round or 0, "split": split, "limit": limit, **result, "created": time.time()}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    return record


def plot_heldout(path: str | Path, out: str | Path | None = None) -> Path:
    """Plots pass@1 / pass@k by round from a ``heldout.jsonl``: one line per series (the base
    model is every series' round 0); the latest record of each (series, round) counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if not path.is_file():
        raise EvoError(f"no held-out results at {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        latest[(r.get("series", "archive"), r["round"])] = r
    base = latest.pop(("base", 0), None)
    fig, ax = plt.subplots(figsize=(6, 4))
    for series in sorted({s for s, _ in latest} or {"base"}):
        pts = sorted((rnd, r) for (s, rnd), r in latest.items() if s == series)
        if base is not None and not any(rnd == 0 for rnd, _ in pts):
            pts.insert(0, (0, base))
        k = pts[0][1]["k"]
        ax.plot([p for p, _ in pts], [r["pass@1"] for _, r in pts], "o-", label=f"{series} pass@1")
        ax.plot([p for p, _ in pts], [r[f"pass@{k}"] for _, r in pts], "s--", label=f"{series} pass@{k}")
    ax.set_xlabel("fine-tuning round (0 = base)")
    ax.set_ylabel("held-out P3 pass rate")
    ax.set_title("held-out P3 (test families)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out = Path(out) if out else path.with_suffix(".png")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

"""P3's held-out benchmark for ``evo eval`` (pass@k): one puzzle per family of a split of the P3 data.

The *test* families (228) are what Haluptzok et al. measure pass@k on; the *train* families
(155) are the seeds' source and the only split on which prompts, thresholds or k are chosen.
Every attempt runs in the sandbox: ``f(g())`` is True and the answer has the declared type.

Prompt styles:
  ``completion``: few-shot, the solve prompt the campaign uses for difficulty, ending in
  ``def g(``;
  ``completion_return``: the same, opened further to ``def g():\n    return``, so that a weak
  model writes only an expression (it otherwise copies the shots' parameter lists);
  ``chat``: the instruct model's chat template, the puzzle in the user turn, and the
  assistant turn opened with ``def g(`` in a code block (so the answer is code, not prose);
  ``chat_free``: the chat template with no opened answer; ``def g`` is looked for in the reply.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from domains.p3.contamination import DEFAULT_DATA, data_dir
from domains.p3.parse import parse_puzzle
from domains.p3.verify import check_puzzles
from evo.domain import Benchmark, ParseError
from evo.errors import EvoError

if TYPE_CHECKING:
    from evo.sandbox import Sandbox

__all__ = ["DEFAULT_DATA", "PROMPT_STYLES", "load_puzzles", "p3_benchmark"]

PROMPT_STYLES = ("completion", "completion_return", "chat", "chat_free")
# what a style writes of g after ``def g(``, before the model takes over
_OPENED = {"completion_return": "):\n    return"}
CHAT_ASK = ("Solve this Python programming puzzle. Write a function g() that returns an answer x "
            "such that f(x) is True. Reply with g in one python code block.\n\n```python\n{f}\n```")
_G_DEF = re.compile(r"^def g\(", re.M)


class P3Domain(Protocol):
    """What the benchmark needs of a :class:`domains.p3.P3Domain` (typed by this protocol:
    the domain imports this module, so this module does not import the domain)."""

    stop: list[str]
    solve_max_tokens: int

    @property
    def shot_examples(self) -> list[dict[str, Any]]: ...

    def solve_prompt(self, item: dict[str, Any], examples: list[dict[str, Any]]) -> str: ...


def load_puzzles(data: str | Path | None = None, split: str = "test", limit: int | None = None,
                 seed: int = 0) -> list[dict[str, Any]]:
    """One puzzle per family of ``split`` (the shortest that parses), seeded order, ``limit``."""
    data = Path(data) if data else data_dir()
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


def solve_prompt(domain: P3Domain, puzzle: dict[str, Any], style: str,
                 shots: list[dict[str, Any]]) -> str | list[dict[str, str]]:
    if style in ("completion", "completion_return"):
        return domain.solve_prompt(puzzle, shots) + _OPENED.get(style, "")
    ask = [{"role": "user", "content": CHAT_ASK.format(f=puzzle["f"])}]
    if style == "chat":
        return ask + [{"role": "assistant", "content": "```python\ndef g("}]
    if style == "chat_free":
        return ask
    raise EvoError(f"unknown prompt style '{style}' (choose {', '.join(PROMPT_STYLES)})")


def solution_of(puzzle: dict[str, Any], completion: str, style: str) -> str | None:
    """The ``g`` a completion gives (None when it gives none that parses)."""
    if style == "chat_free":
        m = _G_DEF.search(completion)
        if m is None:
            return None
        body = completion[m.end():].split("```")[0]
    else:
        body = _OPENED.get(style, "") + completion
    try:
        return parse_puzzle(puzzle["f"] + "\n\ndef g(" + body)["g"]
    except ParseError:
        return None


def check_solutions(puzzles: list[dict[str, Any]], completions: list[list[str]], style: str,
                    sandbox: Sandbox) -> list[list[bool]]:
    # At n = 100 a small model repeats itself: each distinct (puzzle, g) is judged once.
    attempts, owners = [], {}
    out = [[False] * len(c) for c in completions]
    for i, (p, samples) in enumerate(zip(puzzles, completions)):
        for j, text in enumerate(samples):
            g = solution_of(p, text, style)
            if g is not None:
                if (i, g) not in owners:
                    owners[(i, g)] = []
                    attempts.append({**p, "g": g})
                owners[(i, g)].append(j)
    for ((i, _), cells), verification in zip(owners.items(), check_puzzles(attempts, sandbox, trivial=False)):
        for j in cells:
            out[i][j] = verification.valid
    return out


def p3_benchmark(domain: P3Domain, split: str = "test", limit: int | None = None, seed: int = 0,
                 prompt_style: str = "completion", data: str | Path | None = None) -> Benchmark:
    if prompt_style not in PROMPT_STYLES:
        raise EvoError(f"unknown prompt style '{prompt_style}' (choose {', '.join(PROMPT_STYLES)})")
    puzzles = load_puzzles(data, split, limit, seed)
    if not puzzles:
        raise EvoError(f"no puzzles in split '{split}'")
    shots = domain.shot_examples  # the shortest seeds, as difficulty scoring shows them
    stop = domain.stop if prompt_style != "chat_free" else ["<|im_end|>"]
    return Benchmark(
        name=f"p3-{split}", split=split, ids=[p["name"] for p in puzzles],
        prompts=[solve_prompt(domain, p, prompt_style, shots) for p in puzzles],
        check=lambda completions, sandbox: check_solutions(puzzles, completions, prompt_style, sandbox),
        stop=stop, max_new_tokens=domain.solve_max_tokens if prompt_style != "chat_free" else 192,
        meta={"prompt_style": prompt_style, "families": len(puzzles)})

"""Python Programming Puzzles (P3): the LLM writes a puzzle ``f`` and a solution ``g``.

A puzzle is valid when ``f(g())`` is True, the answer has the declared type, no trivial
answer satisfies ``f`` and a second judging agrees (:mod:`domains.p3.verify`). Its
fitness blends two difficulties (:mod:`domains.p3.fitness`): for the current generator,
``1 - solve rate`` over ``solve_attempts`` fresh attempts (seeing ``f`` only), and nothing
when none succeeds; and for a deterministic enumerative search over small answers and
``f``'s own literals (:mod:`domains.p3.enumerate`), how far it has to look. ``search_weight`` sets the
search's share (0: the generator alone, as before). The generator's part keeps the
fitness relative to the current generator after a fine-tune; the search's part gives
a gradient where the generator fails at everything.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domains.p3.enumerate import DEFAULT_BUDGET
from domains.p3.parse import normalised_puzzle, parse_puzzle
from domains.p3.scoring import score_puzzles
from domains.p3.verify import check_puzzles, verify_puzzles
from evo.domain import (
    Benchmark,
    BenchmarkItem,
    Domain,
    EvalContext,
    ParseError,
    Score,
    Verification,
    read_seeds,
)
from evo.errors import EvoError
from evo.llm import SamplingParams

if TYPE_CHECKING:
    from evo.sandbox import Sandbox

SEEDS_FILE = Path(__file__).with_name("seeds.jsonl")
SEARCH_WEIGHT = 0.5  # chosen by experiments/p3_fitness_spread.py (train families only)

PREAMBLE = (
    "# Python programming puzzles. Each puzzle is a function f whose first argument is the\n"
    "# answer; f returns True exactly when the answer is correct. g returns a correct answer,\n"
    "# so that f(g()) is True.\n\n"
)
SOLVE_PREAMBLE = "# Solve each Python programming puzzle: write g so that f(g()) is True.\n\n"


def render_puzzle(item: dict[str, Any]) -> str:
    return f"```python\n{item['f']}\n\n{item['g']}\n\nassert f(g())\n```\n\n"


class P3Domain(Domain):
    name = "p3"
    preamble = PREAMBLE
    open_prefix = "```python\ndef f("
    stop = ["```", "assert f(g"]
    mutation_instructions = [
        "a harder variant of the puzzle above",
        "a puzzle on a different topic",
        "a puzzle whose answer has a different type",
        "a variant with different constants and a longer solution",
    ]

    def __init__(self, seeds_file: str | None = None, seeds_max_chars: int | None = None,
                 solve_attempts: int = 8, solve_max_tokens: int = 96, solve_shots: int = 2,
                 resolve: bool = True, search_weight: float = SEARCH_WEIGHT,
                 search_budget: int = DEFAULT_BUDGET) -> None:
        if solve_attempts < 1:
            raise EvoError("p3: solve_attempts must be at least 1")
        if not 0.0 <= search_weight <= 1.0:
            raise EvoError("p3: search_weight must be between 0 and 1")
        if search_budget < 1:
            raise EvoError("p3: search_budget must be at least 1")
        self.search_weight, self.search_budget = search_weight, search_budget
        self.seeds_file = Path(seeds_file) if seeds_file else SEEDS_FILE
        # short seeds: shorter prompts, simpler puzzles for a small model to imitate
        self.seeds_max_chars = seeds_max_chars
        self.resolve_failed = resolve
        self.solve_attempts = solve_attempts
        self.solve_max_tokens = solve_max_tokens
        self.solve_shots = solve_shots

    def seeds(self) -> list[dict[str, Any]]:
        seeds = read_seeds(self.seeds_file, "p3")
        if self.seeds_max_chars is not None:
            seeds = [s for s in seeds if len(s["f"]) + len(s["g"]) <= self.seeds_max_chars]
        return seeds

    def render(self, item: dict[str, Any]) -> str:
        return render_puzzle(item)

    def text(self, item: dict[str, Any]) -> str:
        return item["f"]  # the puzzle is what a user sees; solutions vary freely

    def key(self, item: dict[str, Any]) -> str:
        """A puzzle is its ``f``: the same ``f`` with another ``g`` is the same puzzle.
        Normalised through the AST (formatting, comments and the return annotation go)."""
        return normalised_puzzle(item["f"])

    def parse(self, text: str) -> dict[str, Any]:
        # a well-formed f whose g is missing or broken still parses: a solve attempt may rescue it
        return parse_puzzle(text, solution_required=False)

    def from_record(self, record: dict[str, Any]) -> str:
        return f"{record['f']}\n\n{record['g']}"

    def fields(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"puzzle": item["f"], "solution": item["g"], "ans_type": item.get("ans_type")}

    def to_messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        ask = ("Write a new Python programming puzzle with its solution. The puzzle is a function "
               "f whose first argument is the answer and which returns True exactly when the "
               "answer is correct; the solution is a function g that returns a correct answer, "
               "so that f(g()) is True. Give f and g in one python code block.")
        answer = f"```python\n{item['f']}\n\n{item['g']}\n\nassert f(g())\n```"
        return [{"role": "user", "content": ask}, {"role": "assistant", "content": answer}]

    def to_solve_messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        ask = ("Solve this Python programming puzzle: write a function g that returns an answer "
               "x such that f(x) is True. Give g in one python code block.\n\n"
               f"```python\n{item['f']}\n```")
        return [{"role": "user", "content": ask},
                {"role": "assistant", "content": f"```python\n{item['g']}\n```"}]

    def contamination_sources(self) -> dict[str, Callable[[], list[BenchmarkItem]]]:
        from domains.p3.contamination import p3_split_items

        return {"p3-test": p3_split_items}

    def benchmark(self, split: str = "test", limit: int | None = None, seed: int = 0,
                  prompt_style: str = "completion") -> Benchmark:
        """P3 families of ``split`` (test: the 228 held-out ones), see :mod:`domains.p3.heldout`."""
        from domains.p3.heldout import p3_benchmark

        return p3_benchmark(self, split, limit, seed, prompt_style)

    def verify(self, items: list[dict[str, Any]], sandbox: Sandbox) -> list[Verification]:
        return verify_puzzles(items, sandbox)

    def solve_prompt(self, item: dict[str, Any], examples: list[dict[str, Any]]) -> str:
        shots = "".join(render_puzzle(e) for e in examples)
        return f"{SOLVE_PREAMBLE}{shots}```python\n{item['f']}\n\ndef g("

    @cached_property
    def shot_examples(self) -> list[dict[str, Any]]:
        """The shortest seeds, shown before every solve attempt (read once, not per batch);
        public because the held-out benchmark shows the same shots."""
        return sorted(self.seeds(), key=lambda s: len(s["f"]) + len(s["g"]))[: self.solve_shots]

    def _solutions(self, items: list[dict[str, Any]], ctx: EvalContext, seed: int) -> list[list[str]]:
        """``solve_attempts`` fresh solutions per puzzle from the generator (which sees ``f``
        only), parsed; an unparsable attempt is a failed attempt and is left out."""
        examples = self.shot_examples
        params = SamplingParams(n=self.solve_attempts, max_new_tokens=self.solve_max_tokens,
                                stop=self.stop, seed=seed, temperature=0.8)
        gens = ctx.generator.generate([self.solve_prompt(it, examples) for it in items], params)
        out: list[list[str]] = []
        for item, samples in zip(items, gens):
            gs = []
            for s in samples:
                try:
                    gs.append(parse_puzzle(item["f"] + "\n\ndef g(" + s.text)["g"])
                except ParseError:
                    continue
            out.append(gs)
        return out

    def _attempts(self, items: list[dict[str, Any]], ctx: EvalContext, seed: int,
                  trivial: bool) -> list[list[tuple[str, Verification]]]:
        """The solve attempts, each verified in the sandbox: ``[(g, verification), ...]``."""
        solutions = self._solutions(items, ctx, seed)
        jobs = [{**item, "g": g} for item, gs in zip(items, solutions) for g in gs]
        owners = [(i, g) for i, gs in enumerate(solutions) for g in gs]
        out: list[list[tuple[str, Verification]]] = [[] for _ in items]
        for (i, g), verification in zip(owners, check_puzzles(jobs, ctx.sandbox, trivial=trivial)):
            out[i].append((g, verification))
        return out

    def resolve(self, items: list[dict[str, Any]], ctx: EvalContext) -> list[tuple[dict[str, Any], Verification] | None]:
        """A puzzle whose own ``g`` failed gets ``solve_attempts`` fresh attempts; the first
        verified one becomes its solution (it is a puzzle: some answer exists and checks)."""
        if not items or not self.resolve_failed:
            return [None] * len(items)
        out: list[tuple[dict[str, Any], Verification] | None] = []
        for item, tries in zip(items, self._attempts(items, ctx, ctx.seed + 1, trivial=True)):
            hit = next(((g, v) for g, v in tries if v.verdict in ("valid", "trivial")), None)
            fixed = {k: v for k, v in item.items() if k != "g_error"}
            out.append(None if hit is None else ({**fixed, "g": hit[0]}, hit[1]))
        return out

    def score(self, items: list[dict[str, Any]], ctx: EvalContext) -> list[Score]:
        """``(1 - w) * D + w * H`` (:mod:`domains.p3.fitness`): D from the generator's fresh
        solve attempts (nothing when none or all succeed), H from the search; every answer
        is judged in one job with ``g``'s (:mod:`domains.p3.scoring`)."""
        if not items:
            return []
        solutions = self._solutions(items, ctx, ctx.seed)
        return score_puzzles(items, solutions, ctx.sandbox, self.search_weight, self.search_budget,
                             self.solve_attempts)

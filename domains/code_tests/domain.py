"""Code problems with tests: the LLM writes a problem statement, a reference solution
and unit tests together.

Valid when the solution and tests pass the audit, the solution passes its own tests and
the statement's examples in the sandbox, and the tests are not vacuous: they fail on a
stub (``return None``) and kill at least one mutant of the solution
(:mod:`domains.code_tests.verify`). Fitness mixes test strength (share of mutants the
tests kill) and difficulty for the current generator: ``1 - solved / solve_attempts`` over
fresh attempts that see the problem and the signature only, and 0 when no attempt passes
(Absolute Zero Reasoner's proposer reward). An item no solver ever passes may be wrong
(a reference that does not do what the statement says, tests that contradict it, a
hidden requirement): it has earned no difficulty, only its strength.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domains.code_tests.parse import parse_item, render_item
from domains.code_tests.verify import run_tests, verify_items
from evo.domain import BenchmarkItem, Domain, EvalContext, Score, Verification, read_seeds
from evo.errors import EvoError
from evo.llm import SamplingParams

if TYPE_CHECKING:
    from evo.sandbox import Sandbox

SEEDS_FILE = Path(__file__).with_name("seeds.jsonl")
PREAMBLE = ("# Python coding problems. Each has a one-line problem statement, a reference\n"
            "# solution and assert tests that the solution passes and a wrong solution fails.\n\n")
SOLVE_PREAMBLE = "# Solve each Python coding problem.\n\n"


def signature(item: dict[str, Any]) -> str:
    """Imports and the entry point's ``def`` line, without its body."""
    tree = ast.parse(item["solution"])
    lines = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == item["entry_point"])
    head = ast.unparse(fn).split("\n", 1)[0]
    return "\n".join([*lines, head])


class CodeTestsDomain(Domain):
    name = "code_tests"
    preamble = PREAMBLE
    open_prefix = "```python\n# Problem:"
    stop = ["```"]
    mutation_instructions = [
        "a harder problem on the same topic, with more tests",
        "a problem on a different topic (strings, lists, dicts or arithmetic)",
        "a variant with edge cases (empty inputs, negatives) covered by the tests",
        "a problem whose solution needs a loop and a condition",
    ]

    def __init__(self, seeds_file: str | None = None, solve_attempts: int = 2,
                 solve_max_tokens: int = 96, solve_shots: int = 2, max_mutants: int = 8,
                 per_test_s: float = 0.5, strength_weight: float = 0.5) -> None:
        if solve_attempts < 0 or max_mutants < 1 or not 0 <= strength_weight <= 1:
            raise EvoError("code_tests: solve_attempts >= 0, max_mutants >= 1, "
                           "0 <= strength_weight <= 1")
        self.seeds_file = Path(seeds_file) if seeds_file else SEEDS_FILE
        self.solve_attempts, self.solve_max_tokens = solve_attempts, solve_max_tokens
        self.solve_shots, self.max_mutants = solve_shots, max_mutants
        self.per_test_s, self.strength_weight = per_test_s, strength_weight
        self._mutation: dict[str, dict[str, Any]] = {}  # key -> verify's mutant stats

    def seeds(self) -> list[dict[str, Any]]:
        return read_seeds(self.seeds_file, "code_tests")

    def render(self, item: dict[str, Any]) -> str:
        return render_item(item)

    def text(self, item: dict[str, Any]) -> str:
        return item["problem"]

    def parse(self, text: str) -> dict[str, Any]:
        return parse_item(text)

    def from_record(self, record: dict[str, Any]) -> str:
        return render_item(record)

    def fields(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in ("problem", "solution", "tests", "entry_point")}

    def to_messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        ask = ("Write a new Python coding problem: a one-line problem statement as a comment, "
               "a reference solution, and assert tests that the solution passes and a wrong "
               "solution fails. Give them in one python code block.")
        return [{"role": "user", "content": ask}, {"role": "assistant", "content": render_item(item).strip()}]

    def to_solve_messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        ask = (f"Solve this Python coding problem: {item['problem']}\n"
               f"Complete the function, in one python code block:\n\n```python\n{signature(item)}\n```")
        return [{"role": "user", "content": ask},
                {"role": "assistant", "content": f"```python\n{item['solution'].strip()}\n```"}]

    def contamination_sources(self) -> dict[str, Callable[[], list[BenchmarkItem]]]:
        from domains.code_tests.contamination import humaneval_items

        return {"humaneval": humaneval_items}

    def verify(self, items: list[dict[str, Any]], sandbox: Sandbox) -> list[Verification]:
        verdicts, stats = verify_items(items, sandbox, self.max_mutants, self.per_test_s)
        if len(self._mutation) > 4096:
            self._mutation.clear()
        self._mutation.update({self.key(it): s for it, s in zip(items, stats)})
        return verdicts

    def solve_prompt(self, item: dict[str, Any], examples: list[dict[str, Any]]) -> str:
        shots = "".join(f"```python\n# Problem: {e['problem']}\n{e['solution']}\n```\n\n" for e in examples)
        return f"{SOLVE_PREAMBLE}{shots}```python\n# Problem: {item['problem']}\n{signature(item)}\n"

    def _solved(self, items: list[dict[str, Any]], ctx: EvalContext) -> list[int]:
        if not self.solve_attempts:
            return [0] * len(items)
        examples = sorted(self.seeds(), key=lambda s: len(s["solution"]))[: self.solve_shots]
        params = SamplingParams(n=self.solve_attempts, max_new_tokens=self.solve_max_tokens,
                                stop=["```", "\n# Problem", "\nassert", "\ndef "], seed=ctx.seed,
                                temperature=0.8)
        gens = ctx.generator.generate([self.solve_prompt(it, examples) for it in items], params)
        jobs, owners = [], []
        for i, (item, samples) in enumerate(zip(items, gens)):
            for s in samples:
                source = signature(item) + "\n" + s.text
                try:
                    ast.parse(source)
                except SyntaxError:
                    continue  # an unparsable attempt is a failed attempt
                jobs.append((source, item))
                owners.append(i)
        solved = [0] * len(items)
        for i, flags in zip(owners, run_tests(jobs, ctx.sandbox, self.per_test_s)[0]):
            solved[i] += all(flags)
        return solved

    def score_without_generator(self, items: list[dict[str, Any]], sandbox: Sandbox) -> list[Score]:
        """Test strength alone (the share of mutants the tests kill): the campaign's fitness
        with ``solve_attempts=0``; difficulty needs a generator."""
        missing = [it for it in items if self.key(it) not in self._mutation]
        if missing:
            self.verify(missing, sandbox)
        out = []
        for item in items:
            m = self._mutation[self.key(item)]
            strength = m["killed"] / m["mutants"] if m["mutants"] else 0.0
            out.append(Score(fitness=strength, parts={"strength": strength, **m}))
        return out

    def score(self, items: list[dict[str, Any]], ctx: EvalContext) -> list[Score]:
        if not items:
            return []
        missing = [it for it in items if self.key(it) not in self._mutation]
        if missing:  # scored without a verify call just before (e.g. re-scoring)
            self.verify(missing, ctx.sandbox)
        out = []
        for item, solved in zip(items, self._solved(items, ctx)):
            m = self._mutation[self.key(item)]
            strength = m["killed"] / m["mutants"] if m["mutants"] else 0.0
            k = self.solve_attempts
            difficulty = 1.0 - solved / k if k and solved else 0.0  # AZR: nothing when none passes
            w = self.strength_weight if k else 1.0
            out.append(Score(fitness=w * strength + (1 - w) * difficulty,
                             parts={"strength": strength, "killed": m["killed"], "mutants": m["mutants"],
                                    "tests": m["tests"], "difficulty": difficulty, "solved": solved,
                                    "attempts": k}))
        return out

"""Math word problems labelled by self-consistency (no ground truth).

The LLM writes a question with a worked answer ending in "The answer is N." The
verifier checks that the question parses, has a finite numeric final answer and that
the author's arithmetic steps ("3 * 12 = 36") are right. The score samples
``samples`` chain-of-thought answers from the current generator: the majority
answer is the label, its vote share the confidence.

Fitness trades agreement against difficulty. ``difficulty = 1 - share`` is the
chance that one try misses the consensus. Items whose share reaches ``threshold``
(a label one can trust) score ``0.5 + 0.5 * difficulty / (1 - threshold)`` in
[0.5, 1]: the hardest reliable items are the best. Items below it score
``0.5 * share / threshold`` in [0, 0.5): below every reliable item.
"""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domains.math_sc.leak import leaks_answer, values
from domains.math_sc.parse import (
    MAX_QUESTION_CHARS,
    PREAMBLE,
    SEEDS_FILE,
    final_answer,
    normalise_number,
    parse_problem,
    plain,
    render_problem,
)
from domains.math_sc.steps import last_result, wrong_step
from evo.domain import Benchmark, Domain, EvalContext, Score, Verification, read_seeds
from evo.errors import EvoError
from evo.llm import SamplingParams

if TYPE_CHECKING:
    from evo.sandbox import Sandbox

# Scales a final answer can drop from the worked result: 5 for 5000, 5 for 0.005 (100 only
# where the solution has no percent: 25 for 0.25 is how a percentage is written).
_SCALES = (10**3, 10**6, 10**9, 10**12)


def dropped_scale(solution: str, answer: str) -> str | None:
    """Why the final answer is not what the worked answer arrived at but its sign or scale
    dropped (-5 -> 5, 5000 -> 5, 2500000 -> 2.5), or None."""
    result = last_result(solution)
    value = Fraction(answer)
    if result is None or result == value or value == 0:
        return None
    scales = _SCALES if re.search(r"%|percent|per\s?cent", solution, re.IGNORECASE) else (100, *_SCALES)
    if result == -value or any(result in (value * k, value / k, -value * k, -value / k) for k in scales):
        shown = int(result) if result.denominator == 1 else float(result)
        return f"the final answer {answer} drops the sign or scale of the worked result {shown}"
    return None


def majority(answers: list[str | None]) -> tuple[str | None, int]:
    """The most common parsed answer (ties: the one seen first) and its votes."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None, 0
    top = max(counts.values())
    label = next(a for a in answers if a is not None and counts[a] == top)
    return label, top


class MathDomain(Domain):
    name = "math"
    preamble = PREAMBLE
    open_prefix = "Question:"
    stop = ["\nQuestion:", "\n\n"]
    mutation_instructions = [
        "a harder problem with one more step",
        "a problem on a different everyday topic",
        "a problem with fractions or percentages",
        "a variant with different numbers and a twist",
    ]

    def __init__(self, seeds_file: str | None = None, samples: int = 4, threshold: float = 0.5,
                 solve_max_tokens: int = 96, solve_shots: int = 2, check_arithmetic: bool = True) -> None:
        if samples < 1 or not 0 < threshold < 1:
            raise EvoError("math: samples must be >= 1 and 0 < threshold < 1")
        self.seeds_file = Path(seeds_file) if seeds_file else SEEDS_FILE
        self.samples, self.threshold = samples, threshold
        self.solve_max_tokens, self.solve_shots = solve_max_tokens, solve_shots
        self.check_arithmetic = check_arithmetic

    def seeds(self) -> list[dict[str, Any]]:
        return read_seeds(self.seeds_file, "math")

    def render(self, item: dict[str, Any]) -> str:
        return render_problem(item)

    def text(self, item: dict[str, Any]) -> str:
        return item["question"]

    def to_solve_messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        # the worked solution, not the bare answer: it ends in "The answer is N", which is
        # the form the majority vote reads, so a model trained on it answers in that form
        return [{"role": "user", "content": f"Solve this math problem step by step.\n\n{item['question']}"},
                {"role": "assistant", "content": item["solution"].strip()}]

    def key(self, item: dict[str, Any]) -> str:
        return " ".join(item["question"].lower().split())

    def parse(self, text: str) -> dict[str, Any]:
        return parse_problem(text)

    def from_record(self, record: dict[str, Any]) -> str:
        return render_problem(record)

    def to_messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": "user", "content": item["question"]},
                {"role": "assistant", "content": item["solution"]}]

    def verify(self, items: list[dict[str, Any]], sandbox: Sandbox) -> list[Verification]:
        return [self._verify_one(it) for it in items]

    def _verify_one(self, it: dict[str, Any]) -> Verification:
        if not all(isinstance(it.get(k), str) and it[k].strip() for k in ("question", "solution")) or \
                not isinstance(it.get("answer"), (str, int, float)) or isinstance(it.get("answer"), bool):
            return Verification("invalid", "needs a question, a solution and an answer (text)")
        question, solution = it["question"], it["solution"]
        answer = normalise_number(str(it["answer"]))
        if answer is None:
            return Verification("invalid", "the final answer is not one finite number")
        if final_answer(solution) != answer:
            return Verification("invalid", "the solution's final answer is not the answer")
        if len(question) > MAX_QUESTION_CHARS:
            return Verification("invalid", f"question longer than {MAX_QUESTION_CHARS} characters")
        if leak := leaks_answer(question, answer, solution):
            return Verification("invalid", leak)
        if self.check_arithmetic and (bad := wrong_step(solution)):
            return Verification("invalid", f"wrong arithmetic step: {bad}")
        if self.check_arithmetic and (dropped := dropped_scale(solution, answer)):
            return Verification("invalid", dropped)
        # numbers as the solver reads them: "Sam has five cats" has the number 5
        numbers = {frozenset(vals) for vals, _ in values(plain(question))}
        if len(numbers) <= 1 and any(answer in vals for vals in numbers):
            return Verification("trivial", "the answer is the only number in the question")
        return Verification("valid")

    def solve_prompt(self, item: dict[str, Any], examples: list[dict[str, Any]]) -> str:
        shots = "".join(render_problem(e) for e in examples)
        return f"{PREAMBLE}{shots}Question: {item['question']}\nAnswer:"

    def benchmark(self, split: str = "test", limit: int | None = None, seed: int = 0,
                  prompt_style: str = "completion") -> Benchmark:
        """Templated word problems with exact answers (domains/math_sc/wordgen.py, exact.py)."""
        from domains.math_sc.exact import math_benchmark

        return math_benchmark(self.seeds()[: self.solve_shots], split, limit, seed, prompt_style, self.stop)

    def score(self, items: list[dict[str, Any]], ctx: EvalContext) -> list[Score]:
        if not items:
            return []
        examples = self.seeds()[: self.solve_shots]
        params = SamplingParams(n=self.samples, max_new_tokens=self.solve_max_tokens, stop=self.stop,
                                seed=ctx.seed, temperature=0.8)
        gens = ctx.generator.generate([self.solve_prompt(it, examples) for it in items], params)
        out = []
        for item, samples in zip(items, gens):
            answers = [final_answer(s.text, fallback_last_number=True) for s in samples]
            label, votes = majority(answers)
            share = votes / self.samples
            difficulty = 1.0 - share
            if share >= self.threshold:
                fitness = 0.5 + 0.5 * difficulty / (1.0 - self.threshold)
            else:
                fitness = 0.5 * share / self.threshold
            out.append(Score(fitness=min(fitness, 1.0), parts={
                "label": label, "confidence": share, "votes": votes, "samples": self.samples,
                "answers": answers, "agreed": share >= self.threshold, "difficulty": difficulty,
                "author_agrees": label == item["answer"]}))
        return out

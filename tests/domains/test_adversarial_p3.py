"""The P3 adversarial corpus (tests/adversarial/p3.jsonl): exploits a solution ``g`` would
try under selection pressure, exploits of the puzzle ``f`` by an author paid by its
fitness (issue 30), each with the verdict it must get, and real puzzles that must stay
valid. Every item goes through the domain's parser and verifier, as ``evo verify p3``
would run it; the ``fit-`` cases are also scored, with a scripted solver, against the
honest puzzle they imitate."""

import pytest

from domains.p3 import P3Domain
from domains.p3.fitness import blend, generator_difficulty, search_hardness
from evo.domain import EvalContext
from evo.llm.scripted import ScriptedStandInLLM
from evo.sandbox import Sandbox, SandboxLimits
from tests.adversarial_corpus import corpus_verdicts, load_corpus

CORPUS = load_corpus("p3")
SCORED = [c for c in CORPUS if "solves" in c]


@pytest.fixture(scope="module")
def verdicts():
    return corpus_verdicts(P3Domain(), CORPUS)


def test_corpus_covers_exploits_and_valid_items():
    kinds = [c["expect"] for c in CORPUS]
    assert kinds.count("valid") >= 20 and kinds.count("invalid") >= 15 and "trivial" in kinds
    assert len({c["id"] for c in CORPUS}) == len(CORPUS)
    assert sum(c["id"].startswith("author-") for c in CORPUS) >= 12 and len(SCORED) >= 12


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_verdict(verdicts, case):
    v = verdicts[case["id"]]
    assert v.verdict == case["expect"], f"{case['note']}: {v.reason}"
    if case.get("reason"):
        assert case["reason"] in v.reason, v.reason


def _solver(cases: list[dict], domain: P3Domain) -> ScriptedStandInLLM:
    """Answers each case's solve prompt as its ``solves`` says: every attempt, the first, none."""
    by_f = {domain.parse(domain.from_record(c))["f"]: c for c in cases}

    def respond(prompt: str, j: int) -> str:
        case = next(c for f, c in by_f.items() if prompt.endswith(f + "\n\ndef g("))
        hit = case["solves"] == "all" or (case["solves"] == "once" and j == 0)
        return f"):\n    return {case['solution']}\n" if hit else "):\n    return None\n"
    return ScriptedStandInLLM(respond)


@pytest.fixture(scope="module")
def fitness():
    domain = P3Domain(solve_attempts=3)
    items = [domain.parse(domain.from_record(c)) for c in SCORED]
    with Sandbox(SandboxLimits(timeout_s=3.0)) as sandbox:
        scores = domain.score(items, EvalContext(_solver(SCORED, domain), sandbox))
    return {c["id"]: s for c, s in zip(SCORED, scores)}


@pytest.mark.parametrize("case", SCORED, ids=[c["id"] for c in SCORED])
def test_fitness_cannot_be_bought(fitness, case):
    s = fitness[case["id"]]
    if "max_fitness" in case:
        assert s.fitness <= case["max_fitness"], f"{case['note']}: {s}"
    if "min_fitness" in case:
        assert s.fitness >= case["min_fitness"], f"{case['note']}: {s}"
    if "below" in case:
        assert s.fitness < fitness[case["below"]].fitness, case["note"]
    if "same_as" in case:  # gaming the search or the attempts' checks earns no more than honesty
        assert s.fitness <= fitness[case["same_as"]].fitness + 1e-9, f"{case['note']}: {s}"


def test_a_hash_seed_dependent_puzzle_is_invalid():
    """One worker: on main the answer and the judge shared its hash seed, so this was valid;
    the second judging runs in an interpreter with another seed."""
    domain = P3Domain()
    item = domain.parse("def f(x: int) -> bool:\n    return x == hash('evo') % 10**9 + 11\n\n"
                        "def g():\n    return hash('evo') % 10**9 + 11")
    with Sandbox(SandboxLimits(timeout_s=3.0, workers=1)) as sandbox:
        (v,) = domain.verify([item], sandbox)
    assert v.verdict == "invalid" and "nondeterministic" in v.reason


def test_generator_difficulty_pays_nothing_for_never_or_always():
    assert generator_difficulty(0, 8) == 0.0 and generator_difficulty(8, 8) == 0.0
    assert generator_difficulty(1, 1) == 0.0 and generator_difficulty(0, 0) == 0.0
    assert generator_difficulty(1, 8) == pytest.approx(1 - 2 / 10)
    assert generator_difficulty(1, 3) == pytest.approx(0.6)  # shrunk from 0.67: one lucky draw
    assert [generator_difficulty(s, 8) for s in range(1, 8)] == sorted(
        [generator_difficulty(s, 8) for s in range(1, 8)], reverse=True)


def test_search_hardness_credits_only_what_a_solver_showed():
    b = 10000
    assert search_hardness(1, None, 0, b, 0) == 0.0  # the first candidate: no hardness
    assert 0.7 < search_hardness(1560, None, 0, b, 0) < 0.9  # found: graded, no generator needed
    assert search_hardness(None, "budget", 0, b, 0) == 0.0  # nothing found, nobody solved it
    assert search_hardness(None, "budget", 0, b, 1) == 1.0  # nothing found, the generator did
    assert search_hardness(None, "unenumerable", 0, b, 3) == 0.0
    assert search_hardness(None, "no result", 0, b, 3) == 0.0
    assert search_hardness(None, "time", 100, b, 1) < 0.6  # slowness is not hardness
    assert blend(0.6, 1.0, 0.5) == 0.8 and blend(0.6, None, 0.5) == 0.6

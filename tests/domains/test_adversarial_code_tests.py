"""The code_tests adversarial corpus (tests/adversarial/code_tests.jsonl): solutions and
tests that attack the judge, each with the verdict it must get, and honest items of the
same shapes that must stay valid. Every item goes through the domain's parser and
verifier, as ``evo verify code_tests`` would run it.

A case's ``bare`` verdict is the one it gets with the static audit switched off: the
process harness alone must hold against forged verdicts and hidden helpers. A case with
``solvers`` is scored too, with a scripted generator that writes those bodies as its solve
attempts: an item no honest solver passes earns no difficulty (Absolute Zero's rule)."""

import pytest

from domains.code_tests import CodeTestsDomain
from domains.code_tests.verify import verify_items
from evo.domain import EvalContext, ParseError
from evo.llm import ScriptedStandInLLM
from evo.sandbox import Sandbox, SandboxLimits
from tests.adversarial_corpus import corpus_verdicts, load_corpus

CORPUS = load_corpus("code_tests")
BARE = [c for c in CORPUS if "bare" in c]
SCORED = [c for c in CORPUS if "solvers" in c]


@pytest.fixture(scope="module")
def verdicts():
    return corpus_verdicts(CodeTestsDomain(solve_attempts=0), CORPUS)


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxLimits(timeout_s=3.0)) as sb:
        yield sb


def _item(case):
    d = CodeTestsDomain()
    return d.parse(d.from_record(case))


def test_corpus_covers_exploits_and_valid_items():
    kinds = [c["expect"] for c in CORPUS]
    assert kinds.count("valid") >= 20 and kinds.count("invalid") >= 25 and kinds.count("trivial") >= 3
    assert len({c["id"] for c in CORPUS}) == len(CORPUS)
    assert len(BARE) >= 15 and len(SCORED) >= 3


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_verdict(verdicts, case):
    v = verdicts[case["id"]]
    assert v.verdict == case["expect"], f"{case['note']}: {v.reason}"
    if case.get("reason"):
        assert case["reason"] in v.reason, v.reason


@pytest.fixture(scope="module")
def bare_verdicts(sandbox):
    items = {}
    for c in BARE:
        try:
            items[c["id"]] = _item(c)
        except ParseError:
            continue
    return dict(zip(items, verify_items(list(items.values()), sandbox, audit=False)[0]))


@pytest.mark.parametrize("case", BARE, ids=[c["id"] for c in BARE])
def test_harness_holds_without_the_audit(bare_verdicts, case):
    v, want = bare_verdicts[case["id"]], case["bare"]
    assert v.verdict == want["expect"], f"{case['note']}: {v.reason}"
    if want.get("reason"):
        assert want["reason"] in v.reason, v.reason


@pytest.mark.parametrize("case", SCORED, ids=[c["id"] for c in SCORED])
def test_difficulty_needs_a_solver_that_passes(sandbox, case):
    solvers = case["solvers"]
    d = CodeTestsDomain(solve_attempts=len(solvers))
    item = _item(case)
    assert d.verify([item], sandbox)[0].valid
    [s] = d.score([item], EvalContext(ScriptedStandInLLM(lambda prompt, j: solvers[j]), sandbox, seed=0))
    assert s.parts["difficulty"] == case["difficulty"], case["note"]
    assert s.fitness <= 0.5 * s.parts["strength"] + 0.5 * case["difficulty"] + 1e-9

"""The P3 adversarial corpus (tests/adversarial/p3.jsonl): exploits a solution ``g`` would
try under selection pressure, each with the verdict it must get, and real puzzles that
must stay valid. Every item goes through the domain's parser and verifier, as
``evo verify p3`` would run it."""

import pytest

from domains.p3 import P3Domain
from tests.adversarial_corpus import corpus_verdicts, load_corpus

CORPUS = load_corpus("p3")


@pytest.fixture(scope="module")
def verdicts():
    return corpus_verdicts(P3Domain(), CORPUS)


def test_corpus_covers_exploits_and_valid_items():
    kinds = [c["expect"] for c in CORPUS]
    assert kinds.count("valid") >= 20 and kinds.count("invalid") >= 15 and "trivial" in kinds
    assert len({c["id"] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_verdict(verdicts, case):
    v = verdicts[case["id"]]
    assert v.verdict == case["expect"], f"{case['note']}: {v.reason}"
    if case.get("reason"):
        assert case["reason"] in v.reason, v.reason

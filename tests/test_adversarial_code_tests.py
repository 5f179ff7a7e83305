"""The code_tests adversarial corpus (tests/adversarial/code_tests.jsonl): solutions that
attack the tests or the harness, each with the verdict it must get, and items that must
stay valid; plus the shipped seeds. Every item goes through the domain's parser and
verifier, as ``evo verify code_tests`` would run it."""

import pytest

from domains.code_tests import CodeTestsDomain
from tests.adversarial_corpus import corpus_verdicts, load_corpus

CORPUS = load_corpus("code_tests")


@pytest.fixture(scope="module")
def verdicts():
    return corpus_verdicts(CodeTestsDomain(solve_attempts=0), CORPUS)


def test_corpus_covers_exploits_and_valid_items():
    kinds = [c["expect"] for c in CORPUS]
    assert kinds.count("valid") >= 8 and kinds.count("invalid") >= 12
    assert len({c["id"] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_verdict(verdicts, case):
    v = verdicts[case["id"]]
    assert v.verdict == case["expect"], f"{case['note']}: {v.reason}"
    if case.get("reason"):
        assert case["reason"] in v.reason, v.reason

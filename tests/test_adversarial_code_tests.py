"""The code_tests adversarial corpus (tests/adversarial/code_tests.jsonl): solutions that
attack the tests or the harness, each with the verdict it must get, and items that must
stay valid; plus the shipped seeds. Every item goes through the domain's parser and
verifier, as ``evo verify code_tests`` would run it."""

import json
from pathlib import Path

import pytest

from domains.code_tests import CodeTestsDomain
from evo.domain import ParseError, Verification
from evo.sandbox import Sandbox, SandboxLimits

CORPUS = [json.loads(line) for line in
          (Path(__file__).parent / "adversarial" / "code_tests.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def verdicts():
    dom = CodeTestsDomain(solve_attempts=0)
    out, items = {}, {}
    for c in CORPUS:  # as `evo verify` does: a parse error is an invalid verdict
        try:
            items[c["id"]] = dom.parse(dom.from_record(c))
        except ParseError as exc:
            out[c["id"]] = Verification("invalid", f"ParseError: {exc}")
    with Sandbox(SandboxLimits(timeout_s=3.0)) as sandbox:
        out.update(zip(items, dom.verify(list(items.values()), sandbox)))
    return out


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

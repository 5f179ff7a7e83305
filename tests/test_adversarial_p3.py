"""The P3 adversarial corpus (tests/adversarial/p3.jsonl): exploits a solution ``g`` would
try under selection pressure, each with the verdict it must get, and real puzzles that
must stay valid. Every item goes through the domain's parser and verifier, as
``evo verify p3`` would run it."""

import json
from pathlib import Path

import pytest

from domains.p3 import P3Domain
from evo.domain import ParseError, Verification
from evo.sandbox import Sandbox, SandboxLimits

CORPUS = [json.loads(line) for line in
          (Path(__file__).parent / "adversarial" / "p3.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def verdicts():
    dom = P3Domain()
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
    assert kinds.count("valid") >= 20 and kinds.count("invalid") >= 15 and "trivial" in kinds
    assert len({c["id"] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_verdict(verdicts, case):
    v = verdicts[case["id"]]
    assert v.verdict == case["expect"], f"{case['note']}: {v.reason}"
    if case.get("reason"):
        assert case["reason"] in v.reason, v.reason

"""Second chance for P3 puzzles whose own solution fails: fresh solve attempts by the
generator (scripted stand-ins here; the real model runs in test_campaign_real)."""

import pytest

from domains.p3 import P3Domain, parse_puzzle
from evo.domain import EvalContext
from evo.llm.scripted import ScriptedStandInLLM
from evo.sandbox import Sandbox, SandboxLimits

WRONG_G = "def f(x: int, a=1234):\n    return x == a * 3\ndef g(a=1234):\n    return a"
NO_G = "def f(s: str):\n    return s == 'ab' * 7\n"
TRIVIAL = "def f(x: int):\n    return x > 2\ndef g():\n    return 'nope'"


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxLimits(timeout_s=2.0)) as sb:
        yield sb


def solver_stand_in(prompt: str, j: int) -> str:
    """Answers solve prompts (they end in ``def g(``): attempt 1 wrong, attempt 2 right."""
    assert prompt.endswith("def g(")
    puzzle = prompt.rsplit("```python\n", 1)[1]
    if j == 0:
        return "):\n    return None\n"
    if "a * 3" in puzzle:
        return "a=1234):\n    return a * 3\n"
    if "'ab' * 7" in puzzle:
        return "):\n    return 'ab' * 7\n"
    return "):\n    return 5\n"


def test_failed_puzzles_get_a_verified_solution_from_a_fresh_attempt(sandbox):
    dom = P3Domain(solve_attempts=2)
    items = [parse_puzzle(t, solution_required=False) for t in (WRONG_G, NO_G, TRIVIAL)]
    first = dom.verify(items, sandbox)
    assert [v.verdict for v in first] == ["invalid", "invalid", "invalid"]
    assert "no usable solution: no function g" in first[1].reason
    fixes = dom.resolve(items, EvalContext(ScriptedStandInLLM(solver_stand_in), sandbox, seed=0))
    (item0, v0), (item1, v1), (item2, v2) = fixes
    assert v0.valid and "a * 3" in item0["g"] and item0["f"] == items[0]["f"]
    assert v1.valid and "g_error" not in item1
    assert v2.verdict == "trivial"  # solving it shows a trivial answer works too
    assert dom.verify([item0, item1], sandbox)[0].valid  # the repaired item stands on its own


def test_no_rescue_when_every_attempt_fails_or_resolve_is_off(sandbox):
    items = [parse_puzzle("def f(x: int):\n    return x == 98765\ndef g():\n    return 1")]
    ctx = EvalContext(ScriptedStandInLLM(solver_stand_in), sandbox, seed=0)
    assert P3Domain(solve_attempts=2).resolve(items, ctx) == [None]
    assert P3Domain(solve_attempts=2, resolve=False).resolve([parse_puzzle(WRONG_G)], ctx) == [None]


def test_seeds_max_chars_keeps_only_short_seeds():
    short = P3Domain(seeds_max_chars=150).seeds()
    assert 0 < len(short) < len(P3Domain().seeds())
    assert all(len(s["f"]) + len(s["g"]) <= 150 for s in short)


def test_a_campaign_marks_the_candidates_it_resolved(tmp_path):
    """The store tells a resolved candidate (its solution is a solve attempt's) from one whose
    author's own solution held: fine-tuning can leave the former out (own_solutions_only)."""
    from evo.campaign import Campaign
    from evo.config import CampaignConfig

    def stand_in(prompt: str, j: int) -> str:
        if prompt.endswith("def g("):
            return solver_stand_in(prompt, 1)
        return WRONG_G[len("def f("):] if j % 2 else "y: int, b=41):\n    return y == b + 1\ndef g(b=41):\n    return b + 1"

    config = CampaignConfig(name="resolved", iterations=1, prompts_per_iteration=2, samples_per_prompt=2,
                            max_seeds=4, domain_options={"solve_attempts": 2}, archive={"dims": [4, 4]})
    campaign = Campaign(config, tmp_path / "run", generator=ScriptedStandInLLM(stand_in))
    try:
        campaign.run()
        valid = [c for c in campaign.store.candidates("verdict = 'valid' AND is_seed = 0")]
    finally:
        campaign.close()
    by_f = {("a * 3" in c.item["f"]): c for c in valid}
    assert by_f[True].resolved and "own version" in by_f[True].reason and "a * 3" in by_f[True].item["g"]
    assert not by_f[False].resolved

"""The worked custom-domain example registers by "module:Class" and runs a campaign."""

import sys
from pathlib import Path

import pytest

from evo.campaign import Campaign
from evo.config import CampaignConfig
from evo.domain import get_domain
from evo.llm import ScriptedStandInLLM

EXAMPLE = Path(__file__).resolve().parents[2] / "experiments" / "custom_domain_example.py"


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    yield
    sys.modules.pop("custom_domain_example", None)


def test_example_is_short():
    assert len(EXAMPLE.read_text().splitlines()) < 100


def test_registers_by_module_path_and_parses(on_path):
    d = get_domain("custom_domain_example:ArithmeticDomain", max_len=30)
    assert d.parse("2 + 2 = 4") == {"expr": "2 + 2", "value": 4}
    for bad in ("import os = 1", "2 + 2", "__import__('os').system('x') = 0", "1 + " * 20 + "1 = 21"):
        with pytest.raises(Exception, match="not 'expression = integer'"):
            d.parse(bad)


def test_tiny_scripted_campaign(on_path, tmp_path):
    answers = {0: "(3 + 4) * 2 = 14", 1: "2 ** 3 = 9", 2: "9 ** 9 ** 9 = 1"}  # valid, wrong, too slow
    cfg = CampaignConfig(domain="custom_domain_example:ArithmeticDomain", iterations=1, prompts_per_iteration=1,
                         samples_per_prompt=3, max_seeds=4, archive={"dims": [4, 4]},
                         sandbox={"timeout_s": 1.0})
    c = Campaign(cfg, tmp_path / "run", generator=ScriptedStandInLLM(lambda p, j: answers[j]))
    try:
        s = c.run()
        got = {x.completion: (x.verdict, x.reason) for x in c.store.candidates("is_seed = 0")}
    finally:
        c.close()
    assert s["candidates"] == 3 and s["valid"] == 1
    assert got["(3 + 4) * 2 = 14"][0] == "valid"
    assert got["2 ** 3 = 9"] == ("invalid", "evaluates to 8, not 9")
    assert got["9 ** 9 ** 9 = 1"][0] == "invalid"

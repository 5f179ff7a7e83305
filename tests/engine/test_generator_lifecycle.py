"""Campaign.close() stops the generator the campaign loaded, and only that one: a vLLM engine
left to the garbage collector held the 1.5B's 11.5 GB (float32, AVX2-only EPYC) for the rest
of its process, and the next engine then had no memory for its KV cache."""

from __future__ import annotations

import pytest

from evo.campaign import Campaign
from evo.config import CampaignConfig
from evo.llm import SamplingParams, ScriptedStandInLLM
from evo.llm.vllm_backend import VLLMGenerator
from tests.conftest import scripted_p3

CONFIG = dict(name="life", iterations=1, prompts_per_iteration=2, samples_per_prompt=1, max_seeds=3,
              domain_options={"solve_attempts": 1}, archive={"dims": [6, 6]},
              generator={"backend": "scripted-stand-in", "model": "tests.conftest:scripted_p3"})


@pytest.fixture
def closes(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(ScriptedStandInLLM, "close", lambda self: calls.append(id(self)), raising=False)
    return calls


def test_close_stops_the_generator_the_campaign_loaded(tmp_path, closes):
    c = Campaign(CampaignConfig(**CONFIG), tmp_path / "run")
    loaded = c.generator.llm
    c.run()
    c.close()
    assert closes == [id(loaded)]


def test_a_generator_the_caller_passed_in_stays_open(tmp_path, closes):
    mine = ScriptedStandInLLM(scripted_p3)
    c = Campaign(CampaignConfig(**CONFIG), tmp_path / "run", generator=mine)
    c.run()
    c.close()
    assert closes == []
    assert mine.generate(["def f("], SamplingParams(n=1))  # still usable


def test_a_failed_set_up_closes_what_it_loaded(tmp_path, closes, monkeypatch):
    import evo.campaign as campaign_module

    def broken_sandbox(config):
        raise RuntimeError("no sandbox here")

    monkeypatch.setattr(campaign_module, "open_sandbox", broken_sandbox)
    with pytest.raises(RuntimeError, match="no sandbox"):
        Campaign(CampaignConfig(**CONFIG), tmp_path / "run")
    assert len(closes) == 1
    assert not (tmp_path / "run").exists()  # and nothing left behind, as before


def test_vllm_close_shuts_the_engine_core_down_once():
    shut: list[bool] = []

    class Core:
        def shutdown(self, timeout=None):
            shut.append(True)

    gen = VLLMGenerator.__new__(VLLMGenerator)  # no real engine: the close path only
    gen.engine = type("LLM", (), {"llm_engine": type("E", (), {"engine_core": Core()})()})()
    gen._hf_model = object()
    gen.close()
    gen.close()
    assert shut == [True] and gen.engine is None and gen._hf_model is None

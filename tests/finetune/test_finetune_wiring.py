"""The loop calls a fine-tune round every K iterations (never after the last one), and a
resumed campaign runs a round that a crash cut short. The round itself is stubbed here;
tests/finetune/test_finetune.py trains real LoRA rounds."""

from evo.campaign import Campaign
from evo.config import CampaignConfig
from evo.llm import ScriptedStandInLLM
from tests.conftest import scripted_p3
from tests.engine.test_bounded_resources import HashingStandInEmbedder


def make(tmp_path, monkeypatch, rounds, iterations, skip=False):
    import evo.campaign as campaign_module

    def fake_round(campaign):
        rounds.append(campaign.store.last_iteration())
        return {"round": len(rounds), "skipped": "no elites"} if skip else {"round": len(rounds)}

    monkeypatch.setattr(campaign_module, "finetune_and_swap", fake_round)
    # a skipped round writes no adapter: the count of finished rounds stays 0
    monkeypatch.setattr(campaign_module, "latest_round", lambda directory: 0 if skip else len(rounds))
    cfg = CampaignConfig(name="ft", iterations=iterations, prompts_per_iteration=2, samples_per_prompt=1,
                         max_seeds=6, domain_options={"solve_attempts": 1}, finetune={"every": 2})
    return Campaign(cfg, tmp_path / "run", generator=ScriptedStandInLLM(scripted_p3),
                    embedder=HashingStandInEmbedder())


def test_rounds_every_k_iterations_and_not_after_the_last(tmp_path, monkeypatch):
    rounds = []
    c = make(tmp_path, monkeypatch, rounds, iterations=6)
    try:
        c.run()
    finally:
        c.close()
    assert rounds == [2, 4]


def test_resume_runs_the_round_a_crash_cut_short(tmp_path, monkeypatch):
    rounds = []
    c = make(tmp_path, monkeypatch, rounds, iterations=2)
    try:
        c.run()  # 2 iterations, the last: no round
    finally:
        c.close()
    assert rounds == []
    # The campaign is extended; iteration 2 is now due a round before iteration 3 starts.
    c = make(tmp_path, monkeypatch, rounds, iterations=5)
    try:
        c.run()
    finally:
        c.close()
    assert rounds == [2, 4]


def test_a_skipped_round_waits_for_the_next_slot(tmp_path, monkeypatch):
    """Nothing to train on at iteration 2: the next try is at iteration 4, not 3."""
    rounds = []
    c = make(tmp_path, monkeypatch, rounds, iterations=7, skip=True)
    try:
        c.run()
    finally:
        c.close()
    assert rounds == [2, 4, 6]

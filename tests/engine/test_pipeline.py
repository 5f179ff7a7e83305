"""The async pipeline (pipeline.staleness 1): batch i+1 is generated while batch i is
evaluated, so parents may be one batch stale but never more (scripted stand-in generator:
these tests are about the loop's plumbing)."""

from __future__ import annotations

import threading

import pytest

from evo.campaign import Campaign
from evo.config import CampaignConfig
from evo.llm import ScriptedStandInLLM
from tests.conftest import scripted_p3


def run(tmp_path, staleness: int, generator=None):
    config = CampaignConfig(name="pipe", iterations=5, prompts_per_iteration=8, samples_per_prompt=2,
                            max_seeds=6, domain_options={"solve_attempts": 1},
                            archive={"dims": [12, 12]}, pipeline={"staleness": staleness})
    campaign = Campaign(config, tmp_path / f"run{staleness}", generator=generator or ScriptedStandInLLM(scripted_p3))
    try:
        summary = campaign.run()
        cands = list(campaign.store.candidates())
    finally:
        campaign.close()
    return summary, cands


def newest_parent_lag(cands) -> list[int]:
    """Per non-seed candidate: its iteration minus its newest non-seed parent's iteration."""
    it = {c.id: c.iteration for c in cands}
    return [c.iteration - max(it[p] for p in c.parents if it[p] > 0)
            for c in cands if c.iteration > 0 and any(it[p] > 0 for p in c.parents)]


@pytest.mark.parametrize("staleness, least_lag", [(0, 1), (1, 2)])
def test_parents_are_at_most_one_batch_stale(tmp_path, staleness, least_lag):
    summary, cands = run(tmp_path, staleness)
    assert summary["iterations"] == 5 and summary["evolved_elites"] > 0
    assert sorted({c.iteration for c in cands}) == [0, 1, 2, 3, 4, 5]
    lags = newest_parent_lag(cands)
    assert lags and min(lags) == least_lag  # sequential: last batch's elites; async: the one before
    assert 0.0 < summary["generator_busy"] <= 1.0


class ThreadRecordingStandIn(ScriptedStandInLLM):
    """Records which thread asked for each batch, and that no two batches overlap."""

    def __init__(self) -> None:
        super().__init__(scripted_p3)
        self.threads: set[str] = set()
        self.active = 0
        self.overlapped = False

    def generate(self, prompts, params):
        self.threads.add(threading.current_thread().name)
        self.active += 1
        self.overlapped |= self.active > 1
        try:
            return super().generate(prompts, params)
        finally:
            self.active -= 1


def test_async_generation_runs_in_its_own_thread_one_batch_at_a_time(tmp_path):
    gen = ThreadRecordingStandIn()
    run(tmp_path, 1, generator=gen)
    assert any(t.startswith("evo-generate") for t in gen.threads)  # proposals, in the pipeline thread
    assert threading.main_thread().name in gen.threads  # solve attempts, beside the evaluation
    assert not gen.overlapped  # the model serves one batch at a time


def test_async_and_sequential_record_the_same_budget(tmp_path):
    (s0, _), (s1, c1) = run(tmp_path, 0), run(tmp_path, 1)
    assert s0["candidates"] == s1["candidates"] == len([c for c in c1 if not c.is_seed])


def slow_proposals(prompt: str, j: int) -> str:
    """:func:`scripted_p3` that takes 20 ms per proposal and no time for solve attempts."""
    import time

    if not prompt.rstrip().endswith("def g("):
        time.sleep(0.02)
    return scripted_p3(prompt, j)


@pytest.mark.parametrize("staleness", [0, 1])
def test_generation_time_is_charged_to_the_batch_it_made(tmp_path, staleness):
    """Proposals of batch i+1 are generated while batch i is scored; their seconds still
    count as batch i+1's generation, not as batch i's solve attempts."""
    from archives import CampaignStore

    run(tmp_path, staleness, generator=ScriptedStandInLLM(slow_proposals))
    iters = [i for i in CampaignStore.open(tmp_path / f"run{staleness}").iterations() if i["iteration"] > 0]
    assert len(iters) == 5
    for i in iters:
        assert i["gen_s"] >= 16 * 0.02 * 0.9  # 8 prompts x 2 samples
        assert i["score_gen_s"] < 0.1

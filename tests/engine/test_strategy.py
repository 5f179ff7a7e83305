"""Baselines and MAP-Elites variants fill the same archive by their own rules."""

import sqlite3
from collections import defaultdict

import numpy as np
import pytest

from archives import Archive, CampaignStore, Measures, rebuild_archive
from evo.campaign import MEASURES_FILE, Campaign
from evo.config import CampaignConfig
from evo.descriptor import Embedder
from evo.llm import ScriptedStandInLLM
from tests.conftest import scripted_p3


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


def run(tmp_path, embedder, **strategy):
    cfg = CampaignConfig(name="s", iterations=3, prompts_per_iteration=6, samples_per_prompt=3, max_seeds=10,
                         domain_options={"solve_attempts": 1}, archive={"dims": [10, 10]}, strategy=strategy)
    campaign = Campaign(cfg, tmp_path / "run", generator=ScriptedStandInLLM(scripted_p3), embedder=embedder)
    try:
        campaign.run()
        live = sorted((e["cell"], e["candidate_id"]) for e in campaign.archive.elites())
    finally:
        campaign.close()
    db = sqlite3.connect(tmp_path / "run" / "campaign.sqlite")
    rows = db.execute("SELECT id, iteration, is_seed, parents, prompt, verdict, add_status FROM candidates").fetchall()
    rebuilt = rebuild_archive(CampaignStore.open(tmp_path / "run"),
                              Archive(Measures.load(tmp_path / "run" / MEASURES_FILE), [10, 10]))
    assert sorted((e["cell"], e["candidate_id"]) for e in rebuilt.elites()) == live
    return rows


def test_plain_sampling_never_uses_the_archive(tmp_path, embedder):
    rows = run(tmp_path, embedder, kind="plain")
    seed_ids = {r[0] for r in rows if r[2]}
    children = [r for r in rows if not r[2]]
    assert children and all(set(eval(r[3])) <= seed_ids for r in children)


@pytest.mark.parametrize("selection", ["curiosity", "sparse"])
def test_map_elites_uses_evolved_parents(tmp_path, embedder, selection):
    rows = run(tmp_path, embedder, kind="map_elites", selection=selection)
    seed_ids = {r[0] for r in rows if r[2]}
    assert any(set(eval(r[3])) - seed_ids for r in rows if not r[2])


def test_best_of_n_keeps_one_per_prompt(tmp_path, embedder):
    rows = run(tmp_path, embedder, kind="best_of_n")
    groups = defaultdict(list)
    for r in rows:
        if not r[2] and r[5] == "valid":
            groups[(r[1], r[4])].append(r[6])
    assert any(len(g) > 1 for g in groups.values())
    assert all(sum(s != -1 for s in g) == 1 for g in groups.values())


def test_novelty_keeps_only_dissimilar_items(tmp_path, embedder):
    rows = run(tmp_path, embedder, kind="novelty", novelty_threshold=0.9)
    store = CampaignStore.open(tmp_path / "run")
    kept = [c for c in store.candidates("verdict = 'valid' AND add_status != -1")]
    dropped = [c for c in store.candidates("verdict = 'valid' AND add_status = -1")]
    assert kept and dropped
    emb = embedder.embed([c.item["f"] for c in kept])
    sims = emb @ emb.T - 2 * np.eye(len(kept))
    seed = np.array([c.is_seed for c in kept])
    # only seeds may be alike: they all enter, whatever the filter
    assert sims[~(seed[:, None] & seed[None, :])].max() < 0.9 + 1e-4
    assert rows


def test_novelty_filter_never_drops_a_seed(tmp_path, embedder):
    """Every strategy starts from the same seed archive, so QD-scores compare fairly."""
    run(tmp_path, embedder, kind="novelty", novelty_threshold=0.05)
    store = CampaignStore.open(tmp_path / "run")
    seeds = list(store.candidates("is_seed = 1 AND verdict = 'valid'"))
    assert len(seeds) == 10 and all(c.add_status != -1 for c in seeds)
    assert not [c for c in store.candidates("is_seed = 0 AND verdict = 'valid' AND add_status != -1")]

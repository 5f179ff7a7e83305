"""End to end on the real defaults: SmolLM2-135M, MiniLM embedder, bwrap sandbox, SQLite.

Small on purpose (a couple of iterations, a few seeds): it checks the whole path runs
and records what it should, not how good the 135M model is.
"""

import json
import sqlite3

import numpy as np
import pytest

from archives import Archive, CampaignStore, Measures, rebuild_archive
from evo.campaign import MEASURES_FILE, Campaign
from evo.config import CampaignConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_campaign(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "run"
    cfg = CampaignConfig(name="real-e2e", iterations=2, prompts_per_iteration=4, samples_per_prompt=2,
                         max_seeds=4, domain_options={"solve_attempts": 2, "solve_max_tokens": 48},
                         generator={"max_new_tokens": 96, "batch_size": 8}, archive={"dims": [10, 10]})
    campaign = Campaign(cfg, out)
    try:
        summary = campaign.run()
        live = sorted((e["cell"], e["candidate_id"]) for e in campaign.archive.elites())
    finally:
        campaign.close()
    return out, summary, live


def test_real_campaign_records_every_candidate(real_campaign):
    out, summary, _ = real_campaign
    db = sqlite3.connect(out / "campaign.sqlite")
    rows = db.execute("SELECT is_seed, operator, verdict, reason, completion, num_tokens, generator_version "
                      "FROM candidates").fetchall()
    seeds = [r for r in rows if r[0]]
    generated = [r for r in rows if not r[0]]
    assert len(seeds) == 4 and all(r[2] == "valid" for r in seeds)
    assert len(generated) == 2 * 4 * 2  # iterations x prompts x samples
    assert {r[1] for r in generated} <= {"lmx", "mutation", "scratch"}
    assert all(r[2] in {"valid", "invalid", "trivial", "parse_error", "duplicate"} for r in generated)
    assert all(r[3] for r in generated if r[2] != "valid")  # every failure has a reason
    assert all(r[4] is not None and r[5] > 0 for r in generated)  # the model really wrote text
    assert summary["candidates"] == len(generated)
    assert [i for (i,) in db.execute("SELECT iteration FROM iterations ORDER BY iteration")] == [0, 1, 2]


def test_real_seeds_have_difficulty_fitness(real_campaign):
    # P3 fitness: half the generator's difficulty (AZR: nothing when no or every attempt
    # succeeds), half the enumerative search's hardness
    from domains.p3.fitness import generator_difficulty

    out, _, _ = real_campaign
    store = CampaignStore.open(out)
    for c in store.candidates("is_seed = 1"):
        parts = c.fitness_parts
        assert 0.0 <= c.fitness <= 1.0
        assert parts["attempts"] == 2 and parts["difficulty"] == pytest.approx(generator_difficulty(parts["solved"], 2))
        assert 0.0 <= parts["search_hardness"] <= 1.0 and "search_steps" in parts
        assert c.fitness == pytest.approx(0.5 * parts["difficulty"] + 0.5 * parts["search_hardness"])
        assert len(c.measures) == 2 and c.cell is not None


def test_real_archive_equals_rebuild_from_store(real_campaign):
    out, summary, live = real_campaign
    store = CampaignStore.open(out)
    cfg = store.get_meta("config")
    rebuilt = rebuild_archive(store, Archive(Measures.load(out / MEASURES_FILE), cfg["archive"]["dims"]))
    assert sorted((e["cell"], e["candidate_id"]) for e in rebuilt.elites()) == live
    assert len(rebuilt) == summary["num_elites"]


def test_real_measures_are_pca_of_minilm_embeddings(real_campaign):
    out, _, _ = real_campaign
    m = Measures.load(out / MEASURES_FILE)
    assert m.kind == "pca" and m.components.shape == (2, 384)
    assert np.all(m.ranges[:, 0] < m.ranges[:, 1])
    c = next(CampaignStore.open(out).candidates("is_seed = 1"))
    from evo.descriptor import Embedder

    emb = Embedder().embed([c.item["f"]])
    assert np.allclose(m.transform(emb)[0], c.measures, atol=1e-4)
    assert json.loads(json.dumps(c.item))["f"].startswith("def f(")

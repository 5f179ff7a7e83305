"""Memory stays flat and the store grows linearly over 10,000 candidates.

Uses the scripted stand-in generator and a hashing stand-in embedder: this test is
about what the loop keeps in RAM, not about models (the real path is tested elsewhere).
"""

import gc
import zlib

import numpy as np
import psutil

from evo.campaign import Campaign
from evo.config import CampaignConfig
from evo.llm import ScriptedStandInLLM
from tests.conftest import scripted_p3


class HashingStandInEmbedder:
    """Deterministic pseudo-embeddings from a hash of the text (fast, no model)."""

    name, dim = "hashing-stand-in", 384

    def embed(self, texts):
        out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=self.dim) for t in texts]) \
            if texts else np.zeros((0, self.dim))
        return (out / np.linalg.norm(out, axis=1, keepdims=True)) if len(out) else out


def test_memory_flat_and_store_linear_over_10k_candidates(tmp_path):
    cfg = CampaignConfig(name="soak", iterations=100, prompts_per_iteration=50, samples_per_prompt=2,
                         max_seeds=12, archive={"dims": [20, 20]},
                         # no enumerative search: this test is about RAM and the store, and the
                         # search's judged spot checks (issue 30) made it the suite's slowest
                         domain_options={"solve_attempts": 1, "search_weight": 0.0})
    campaign = Campaign(cfg, tmp_path / "run", generator=ScriptedStandInLLM(scripted_p3),
                        embedder=HashingStandInEmbedder())
    proc = psutil.Process()
    rss, size = {}, {}

    def on_iteration(stats):
        if stats["iteration"] in (20, 60, 100):
            gc.collect()
            rss[stats["iteration"]] = proc.memory_info().rss
            campaign.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size[stats["iteration"]] = (tmp_path / "run" / "campaign.sqlite").stat().st_size

    try:
        summary = campaign.run(on_iteration)
    finally:
        campaign.close()
    assert summary["candidates"] == 10_000
    # After warm-up, RSS grows by less than 25 MB over 8,000 more candidates
    # (the store holds them; RAM holds the archive only).
    assert rss[100] - rss[20] < 25 * 2**20, {k: v / 2**20 for k, v in rss.items()}
    # Store growth per candidate is the same in both halves (linear, no blow-up).
    first, second = size[60] - size[20], size[100] - size[60]
    assert 0.7 < second / first < 1.4, size

"""evo.rundir: the one reader of a campaign directory (issue 34)."""

from __future__ import annotations

import pytest

from archives import CampaignStore
from evo.config import CampaignConfig
from evo.errors import EvoError
from evo.rundir import MEASURES_FILE, STORE_FILE, open_run


def test_not_a_campaign_directory(tmp_path):
    with pytest.raises(EvoError, match="is not a campaign directory"):
        open_run(tmp_path / "missing")
    with pytest.raises(EvoError, match=f"no {STORE_FILE}"):
        open_run(tmp_path)


def test_a_store_before_its_set_up_finished(tmp_path):
    CampaignStore(tmp_path / STORE_FILE).close()
    with open_run(tmp_path) as run:
        assert run.raw_config is None
        with pytest.raises(EvoError, match="holds no campaign config"):
            _ = run.config
        with pytest.raises(EvoError, match=f"has no {MEASURES_FILE}; the campaign never finished its set-up"):
            _ = run.measures


def test_the_config_is_validated_once(tmp_path):
    store = CampaignStore(tmp_path / STORE_FILE)
    store.set_meta(config=CampaignConfig(name="x", seed=3).model_dump(mode="json"))
    store.close()
    with open_run(tmp_path) as run:
        assert isinstance(run.config, CampaignConfig) and run.config is run.config
        assert (run.config.name, run.config.seed) == ("x", 3)
        assert run.config.descriptor.embedder == CampaignConfig().descriptor.embedder

"""The archive layer: pyribs MAP-Elites archives, measures from embeddings, and the
SQLite campaign store from which every archive can be rebuilt."""

from archives.archive import Archive
from archives.measures import Measures
from archives.store import SCHEMA_VERSION, STORE_FILE, CampaignStore, Candidate, rebuild_archive

__all__ = ["SCHEMA_VERSION", "STORE_FILE", "Archive", "CampaignStore", "Candidate", "Measures", "rebuild_archive"]

"""evo.heldout.resume_chunks: the resumable chunk loop under held-out evaluation and the
experiments' sampling. A rerun must reuse exactly the chunks written for the same ids and
settings, and redo anything else, however the progress file was left."""

import json

import pytest

from evo.errors import EvoError
from evo.heldout import resume_chunks

IDS = [f"p{i}" for i in range(5)]
KEY = {"n": 2, "seed": 0}


def calls_into(log):
    def compute(i, lo):
        log.append(i)
        return [f"{ident}@{i}" for ident in IDS[lo:lo + 2]]
    return compute


def test_a_rerun_reuses_finished_chunks_and_does_only_the_rest(tmp_path):
    progress = tmp_path / "sub" / "progress.jsonl"  # the folder is made on first write
    first: list[int] = []
    out = resume_chunks(IDS, KEY, progress, 2, "texts", calls_into(first))
    assert first == [0, 1, 2] and out == ["p0@0", "p1@0", "p2@1", "p3@1", "p4@2"]
    lines = progress.read_text().splitlines()
    progress.write_text("\n".join(lines[:2]) + "\n")  # the run died before chunk 2
    again: list[int] = []
    assert resume_chunks(IDS, KEY, progress, 2, "texts", calls_into(again)) == out
    assert again == [2]


def test_lines_from_other_settings_ids_or_a_crash_are_redone(tmp_path):
    progress = tmp_path / "progress.jsonl"
    progress.write_text("\n".join([
        json.dumps({"chunk": 0, "ids": IDS[:2], "settings": {"n": 3, "seed": 0}, "texts": ["x", "x"]}),
        json.dumps({"chunk": 1, "ids": ["other", "ids"], "settings": KEY, "texts": ["x", "x"]}),
        json.dumps(["not", "a", "record"]),
        json.dumps({"chunk": 2, "ids": IDS[4:], "settings": KEY, "texts": "not a list"}),
        '{"chunk": 0, "ids": ["p0", "p1"], "settings": {"n": 2, "se',  # cut short by a crash
    ]) + "\n")
    log: list[int] = []
    out = resume_chunks(IDS, KEY, progress, 2, "texts", calls_into(log))
    assert log == [0, 1, 2] and "x" not in out


def test_chunk_below_one_is_refused(tmp_path):
    with pytest.raises(EvoError, match="chunk must be at least 1"):
        resume_chunks(IDS, KEY, tmp_path / "p.jsonl", 0, "texts", calls_into([]))

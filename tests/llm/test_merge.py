"""Merged adapters in the cache (evo.llm.merge): keyed by the adapter's bytes, written whole or
not at all, only the newest few kept. The merge itself runs for real in test_vllm_real."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evo.errors import EvoError
from evo.llm import merge


def _adapter(path: Path, weights: bytes) -> str:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"r": 8}))
    (path / "adapter_model.safetensors").write_bytes(weights)
    return str(path)


@pytest.fixture
def fake_merge(monkeypatch, tmp_path):
    monkeypatch.setenv("EVO_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def merge_adapter(path, adapter, out, dtype=None):
        calls.append(adapter)
        if "broken" in adapter:
            out.mkdir(parents=True)
            (out / "half.bin").write_bytes(b"\0")
            raise OSError(28, "No space left on device")
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(merge, "merge_adapter", merge_adapter)
    return calls


def test_one_merge_per_adapter_content_and_the_oldest_are_pruned(fake_merge, tmp_path):
    a = _adapter(tmp_path / "a", b"A")
    first = merge.merged_model("some/model", a)
    assert merge.merged_model("some/model", a) == first and fake_merge == [a]  # cached
    same_bytes = _adapter(tmp_path / "copy-of-a", b"A")
    assert merge.merged_model("some/model", same_bytes) == first  # keyed by content, not path
    older = [merge.merged_model("some/model", _adapter(tmp_path / n, n.encode())) for n in ("b", "c")]
    os.utime(older[0], (1, 1))  # b is the oldest now
    newest = merge.merged_model("some/model", _adapter(tmp_path / "d", b"D"))
    left = sorted(p.name for p in (tmp_path / "cache" / "merged").iterdir())
    assert len(left) == merge.MERGED_KEPT and Path(newest).name in left and Path(older[0]).name not in left
    assert Path(first).name.endswith("-bfloat16") and "lora-" in Path(first).name


def test_a_failed_merge_leaves_nothing_and_says_why(fake_merge, tmp_path):
    with pytest.raises(EvoError, match="cannot merge adapter .*No space left on device"):
        merge.merged_model("some/model", _adapter(tmp_path / "broken", b"B"))
    assert not list((tmp_path / "cache" / "merged").iterdir())  # no half-written folder
    with pytest.raises(EvoError, match="has no adapter_config.json"):
        merge.merged_model("some/model", str(tmp_path))

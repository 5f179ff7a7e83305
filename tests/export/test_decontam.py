"""Decontamination checks on planted overlaps: each method fires on what it should and
not on unrelated text; bad benchmark files are one clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evo.domain import BenchmarkItem
from evo.errors import EvoError
from evo.export.decontam import (
    ContaminationReference,
    Settings,
    find_contamination,
    load_benchmarks,
    read_items,
    tokens,
)

BENCH = ContaminationReference("bench", [
    BenchmarkItem("b0", "def find_pairs(numbers, target):\n    \"\"\"Return every pair of numbers "
                        "in the list whose sum equals the target value exactly.\"\"\""),
    BenchmarkItem("b1", "return x * 3 == 27 and x > 0 or y", key="KEY-1", domain="d"),  # 10 tokens
    BenchmarkItem("b2", "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
                        "omicron pi rho sigma tau upsilon"),
])


def test_tokens_normalisation_is_the_documented_one():
    assert tokens("Def F(x: int) -> 'OK'!") == ["def", "f", "x", "int", "ok"]


def test_each_method_on_planted_items():
    texts = [
        "# copied\ndef FIND_PAIRS(numbers, target):  # return every pair of numbers in the list whose sum",
        "if True: return x*3==27 and x>0 or y  # the whole short item",
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
        "sigma tau upsilon phi",  # Jaccard 15/16 of shingles, and 13-grams
        "completely unrelated text about cooking pasta with garlic and olive oil for dinner tonight",
        "something else",
    ]
    rep = find_contamination(texts, [BENCH], keys=[None, None, None, None, "KEY-1"], domain="d",
                             settings=Settings(methods=("13-gram", "minhash", "key")))
    found = [{(h.item_id, h.method) for h in hs} for hs in rep.hits]
    assert ("b0", "13-gram") in found[0]
    assert ("b1", "13-gram") in found[1]  # shorter than 13 tokens: the whole item is the gram
    assert {("b2", "13-gram"), ("b2", "minhash")} <= found[2]
    assert found[3] == set()
    assert found[4] == {("b1", "key")}
    assert rep.contaminated == [0, 1, 2, 4]
    summary = rep.summary()
    assert summary["flagged"] == 4 and summary["per_source"]["bench"]["key"] == 1


def test_key_check_needs_the_same_domain():
    rep = find_contamination(["x"], [BENCH], keys=["KEY-1"], domain="other",
                             settings=Settings(methods=("key",)))
    assert rep.contaminated == []


def test_embedding_check_uses_the_threshold():
    vecs = {"a": [1.0, 0.0], "b": [0.96, 0.28], "c": [0.0, 1.0]}

    def embed(texts):
        return np.array([vecs.get(t[0], [0.6, 0.8]) for t in texts], dtype=np.float32)

    bench = ContaminationReference("e", [BenchmarkItem("e0", "a benchmark item")])
    rep = find_contamination(["a", "b", "c"], [bench], embed=embed,
                             settings=Settings(methods=("embedding",), cosine=0.95))
    assert [bool(h) for h in rep.hits] == [True, True, False]
    assert rep.hits[1][0].score == pytest.approx(0.96, abs=1e-5)


def test_user_file_of_items(tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text(json.dumps({"id": "q1", "question": "What is 17 times 23?"}) + "\n\n"
                 + json.dumps("a bare string item") + "\n")
    items = read_items(f)
    assert [i.id for i in items] == ["q1", "mine.jsonl:1"]
    benches, skipped = load_benchmarks([str(f)])
    assert benches[0].name == "mine.jsonl" and not skipped


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON/JSONL"),
    ("", "holds no items"),
    ("[1, 2]", "an object or a string"),
])
def test_bad_benchmark_files(tmp_path, content, message):
    f = tmp_path / ("b.json" if content.startswith("[") else "b.jsonl")
    f.write_text(content)
    with pytest.raises(EvoError, match=message):
        read_items(f)


def test_unknown_and_unavailable_benchmarks(monkeypatch, tmp_path):
    with pytest.raises(EvoError, match="unknown benchmark 'nope'"):
        load_benchmarks(["nope"])
    monkeypatch.setenv("EVO_P3_DATA", str(tmp_path / "missing"))
    benches, skipped = load_benchmarks(None)  # default: what can be loaded; the rest is reported
    assert "p3-test" in skipped and "EVO_P3_DATA" in skipped["p3-test"]
    assert "p3-test" not in {b.name for b in benches}
    with pytest.raises(EvoError, match="no P3 data"):
        load_benchmarks(["p3-test"])  # named explicitly: an error


def test_the_old_name_of_a_contamination_reference():
    from evo.export import decontam

    assert decontam.Benchmark is ContaminationReference

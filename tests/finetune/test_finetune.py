"""Self-improvement: training data and anchors, re-scoring and rebuilds, a real LoRA round
(a couple of steps on the embedded model), held-out pass@k and the CLI's bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from archives import Archive, CampaignStore, Measures, rebuild_archive
from archives.store import RESOLVED_MARK
from domains.p3 import P3Domain
from domains.p3.heldout import DEFAULT_DATA, load_puzzles
from evo.campaign import MEASURES_FILE, Campaign
from evo.config import CampaignConfig, FinetuneConfig
from evo.domain import Score, get_domain
from evo.finetune import archive_examples, finetune_and_swap
from evo.finetune.data import (
    data_hash,
    item_examples,
    merge_rounds,
    mix_with_seeds,
    read_examples,
    shares,
)
from evo.finetune.rescore import rescore_elites
from evo.heldout import bootstrap_ci, evaluate, pass_at_k
from evo.llm import ScriptedStandInLLM
from evo.sandbox import Sandbox
from tests.conftest import scripted_p3

ROOT = Path(__file__).resolve().parents[2]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _open(directory: Path):
    store = CampaignStore.open(directory)
    cfg = CampaignConfig.model_validate(store.get_meta("config"))
    archive = rebuild_archive(store, Archive(Measures.load(directory / MEASURES_FILE), cfg.archive.dims, cfg.seed))
    return store, cfg, archive


def _elites(archive: Archive) -> list[tuple[int, int, float]]:
    return sorted((e["cell"], e["candidate_id"], round(e["fitness"], 9)) for e in archive.elites())


# -- data and anchors ------------------------------------------------------------------
def test_examples_from_elites_match_the_generation_format(small_campaign):
    store, cfg, archive = _open(small_campaign)
    dom = get_domain("p3")
    try:
        ex = archive_examples(store, archive, dom, FinetuneConfig(), round_n=1)
        seeds = {c.id for c in store.candidates("is_seed = 1")}
    finally:
        store.close()
    assert ex and {e.kind for e in ex} == {"generate", "solve"}
    assert all(e.source == "archive" and e.candidate_id not in seeds and e.round == 1 for e in ex)
    for e in ex:
        if e.kind == "generate":  # what the campaign would parse from this completion is the elite
            assert e.prompt.startswith(dom.preamble) and e.prompt.endswith(dom.open_prefix)
            item = dom.parse(dom.open_prefix + e.completion)
            assert dom.key(item) == e.key
        else:  # solve: the scorer's prompt, the verified g as the answer
            assert e.prompt.endswith("def g(") and "\nassert f(g())" in e.completion



def test_elite_filters_leave_out_low_fitness_and_resolved_elites(small_campaign, tmp_path):
    """``fitness_above`` keeps out elites not above it (the archive's fitness), and
    ``own_solutions_only`` those whose solution came from a fresh solve attempt."""
    run = _copy(small_campaign, tmp_path / "run")
    store, _, archive = _open(run)
    try:
        dom = get_domain("p3")
        seeds = {c.id for c in store.candidates("is_seed = 1")}
        evolved = sorted((e["fitness"], e["candidate_id"]) for e in archive.elites() if e["candidate_id"] not in seeds)
        assert len(evolved) >= 3
        all_ids = {e.candidate_id for e in archive_examples(store, archive, dom, FinetuneConfig(), round_n=1)}
        assert all_ids == {i for _, i in evolved}
        cut = evolved[len(evolved) // 2][0]
        kept = {e.candidate_id for e in archive_examples(store, archive, dom, FinetuneConfig(fitness_above=cut), 1)}
        assert kept == {i for f, i in evolved if f > cut} and kept != all_ids
        resolved = evolved[-1][1]
        store.db.execute("UPDATE candidates SET reason = ? WHERE id = ?",
                         (f"resolved by a fresh attempt {RESOLVED_MARK} f(g()) is False)", resolved))
        assert store.get([resolved])[resolved].resolved
        own = {e.candidate_id for e in archive_examples(store, archive, dom,
                                                        FinetuneConfig(own_solutions_only=True), 1)}
        assert own == all_ids - {resolved}
    finally:
        store.close()

def test_training_sequences_start_with_the_prompt_as_the_engine_tokenizes_it():
    """The prompt's tokens lead each training sequence as they are at run time, even where
    tokenizing prompt + completion as one string would merge a token across the boundary
    (SmolLM2: ``(`` + ``)``); the loss falls on the completion and EOS only."""
    from transformers import AutoTokenizer

    from evo.finetune.data import Example
    from evo.finetune.train import tokenized_apart
    from evo.llm.embedded import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path("smollm2-135m"))
    prompt, completion = "```python\ndef f(x: int):\n    return x > 3\n\ndef g(", "):\n    return 4\n```"
    joint = tok(prompt + completion)["input_ids"]
    alone = tok(prompt)["input_ids"]
    assert joint[: len(alone)] != alone  # the case TRL's joint tokenization gets wrong
    [row] = tokenized_apart([Example(prompt, completion, "solve", "archive", "k")], tok)
    n = len(alone)
    assert row["input_ids"][:n] == alone and row["completion_mask"] == [0] * n + [1] * (len(row["input_ids"]) - n)
    assert row["input_ids"][-1] == tok.eos_token_id
    assert tok.decode(row["input_ids"][n:-1]) == completion


@pytest.mark.parametrize("share", [0.1, 0.25, 0.5])
def test_seed_anchor_share_is_as_configured(share):
    dom = get_domain("p3")
    rng = np.random.default_rng(0)
    seeds = dom.seeds()
    seed_ex = item_examples(dom, [(None, s) for s in seeds[:10]], "seed", seeds=seeds, n_shots=1, solve=True,
                            max_length=10_000, rng=rng)
    archive = item_examples(dom, [(i, s) for i, s in enumerate(seeds[10:40])], "archive", seeds=seeds,
                            n_shots=1, solve=True, max_length=10_000, rng=rng)
    mixed = mix_with_seeds(archive, seed_ex, share, rng)
    s = shares(mixed)
    n_seed = s["sources"]["seed"]
    assert s["sources"]["archive"] == len(archive)  # archive data is never dropped
    assert s["seed_share"] >= share and (n_seed - 1) / (len(mixed) - 1) < share  # the smallest count >= share
    assert mix_with_seeds(archive, seed_ex, 0.0, rng) == archive
    assert mix_with_seeds([], seed_ex, share, rng) == []  # seeds alone are no round


def test_a_round_without_elites_beyond_the_seeds_is_skipped(small_campaign, tmp_path):
    run = _copy(small_campaign, tmp_path / "run")
    store, cfg, _ = _open(run)
    try:
        seeds = list(store.candidates("is_seed = 1 AND verdict = 'valid'"))
        only_seeds = Archive(Measures.load(run / MEASURES_FILE), cfg.archive.dims, cfg.seed)
        only_seeds.add([json.dumps(c.item) for c in seeds], [c.fitness for c in seeds],
                       np.array([c.measures for c in seeds]), [c.id for c in seeds])
        camp = SimpleNamespace(config=cfg, dir=run, store=store, archive=only_seeds, domain=get_domain("p3"),
                               sandbox=None, generator=None)
        record = finetune_and_swap(camp)
    finally:
        store.close()
    assert record["skipped"] and record["round"] == 1
    assert not (run / "adapters").exists() and camp.generator is None


def test_accumulation_keeps_earlier_rounds_and_hashes_track_content(small_campaign):
    store, cfg, archive = _open(small_campaign)
    dom = get_domain("p3")
    try:
        r1 = archive_examples(store, archive, dom, FinetuneConfig(max_examples=3), round_n=1)
        r2 = archive_examples(store, archive, dom, FinetuneConfig(), round_n=2)
    finally:
        store.close()
    pool = merge_rounds(r1, r2)
    assert pool[: len(r1)] == r1  # earlier data kept, first
    assert len({(e.kind, e.key) for e in pool}) == len(pool)  # no duplicates
    assert len(pool) == len({(e.kind, e.key) for e in r1 + r2})
    assert data_hash(pool) == data_hash(list(pool)) and data_hash(pool) != data_hash(pool[::-1])


# -- re-scoring ------------------------------------------------------------------------
class _FakeScorer:
    """A domain whose score is a fixed function of the item (no generator calls)."""

    def __init__(self, version_seen: list):
        self.version_seen = version_seen

    def score(self, items, ctx):
        self.version_seen.append(ctx.generator.version)
        return [Score(fitness=(len(it["f"]) % 7) / 7, parts={"fake": True}) for it in items]


def test_rescore_keeps_both_scores_and_rebuilds_like_a_fresh_rebuild(small_campaign, tmp_path):
    run = _copy(small_campaign, tmp_path / "run")
    cfg = CampaignConfig.model_validate(CampaignStore.open(run).get_meta("config"))
    campaign = Campaign(cfg, run, generator=ScriptedStandInLLM(scripted_p3, version=1))
    try:
        before = {e["candidate_id"]: e["fitness"] for e in campaign.archive.elites()}
        seen: list = []
        stats = rescore_elites(campaign.store, campaign.archive, _FakeScorer(seen), campaign.generator,
                               campaign.sandbox)
        assert seen == [1] and stats["elites"] == len(before)
        rows = {r["candidate_id"]: r for r in campaign.store.rescores(1)}
        assert set(rows) == set(before)
        originals = campaign.store.get(list(before))
        for cid, fit in before.items():  # the original score stays in candidates
            assert originals[cid].fitness == pytest.approx(fit)
            assert rows[cid]["fitness"] == pytest.approx((len(originals[cid].item["f"]) % 7) / 7)
        # The live archive holds exactly the re-scored elites, and a fresh rebuild agrees.
        assert {e["candidate_id"]: e["fitness"] for e in campaign.archive.elites()} == \
            pytest.approx({cid: rows[cid]["fitness"] for cid in before})
        assert _elites(campaign.archive) == _elites(_open(run)[2])
        # Evolution continues with the new generator; the live archive still equals a rebuild.
        done = cfg.iterations
        campaign.config.iterations = done + 2
        campaign.run()
        live = _elites(campaign.archive)
    finally:
        campaign.close()
    store, _, rebuilt = _open(run)
    try:
        assert live == _elites(rebuilt)
        assert _elites(rebuilt) == _elites(rebuild_archive(store, rebuilt))  # deterministic
        newer = list(store.candidates("iteration > ?", (done,)))
        assert newer and all(c.generator_version == 1 for c in newer)
    finally:
        store.close()


# -- a real round on the embedded model --------------------------------------------------
@pytest.mark.slow
def test_finetune_round_saves_loads_and_changes_the_generator(small_campaign, tmp_path):
    import torch

    from evo.llm import SamplingParams, TransformersLLM

    run = _copy(small_campaign, tmp_path / "run")
    store, saved, archive = _open(run)
    cfg = saved.model_copy(update={"finetune": FinetuneConfig(max_steps=2, batch_size=2, max_length=256, lr=1e-3,
                                                             max_examples=3, seed_share=0.25, kl_coef=0.1),
                                   "generator": saved.generator.model_copy(update={"batch_size": 4})})
    dom = get_domain("p3", **cfg.domain_options)
    seen: list = []
    dom.score = _FakeScorer(seen).score  # re-scoring with the real model is the experiment's job
    try:
        with Sandbox(cfg.sandbox) as sandbox:
            camp = SimpleNamespace(config=cfg, dir=run, store=store, archive=archive, domain=dom,
                                   sandbox=sandbox, generator=None)
            record = finetune_and_swap(camp)
        rounds = store.rescores(1)
        meta = store.get_meta("generator_round")
    finally:
        store.close()
    out = run / "adapters" / "round-1"
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    saved_record = json.loads((out / "round.json").read_text())
    assert saved_record == json.loads(json.dumps(record))
    assert record["round"] == 1 and record["base_model"] == "smollm2-135m"
    assert record["metrics"]["steps"] == 2 and record["metrics"]["kl_last"] is not None
    assert record["anchors"]["kl"] and record["anchors"]["accumulate"]
    train = read_examples(out / "train.jsonl")
    assert len(train) == record["n_examples"] and data_hash(train) == record["data_hash"]
    assert shares(train)["seed_share"] >= 0.25 and record["mix"]["sources"]["archive"] > 0
    # swapped in: version = round, and the re-score ran with it
    assert camp.generator.version == 1 and seen == [1] and len(rounds) == record["rescore"]["elites"]
    assert meta == {"round": 1, "adapter": str(out), "version": 1}
    tuned = camp.generator.llm
    gen = tuned.generate(["```python\ndef f("], SamplingParams(n=1, max_new_tokens=12, temperature=0))
    assert gen[0][0].num_tokens > 0
    base = TransformersLLM("smollm2-135m", batch_size=4)
    prompt = train[0].prompt + train[0].completion
    with torch.no_grad():
        enc = base.tokenizer(prompt, return_tensors="pt")
        diff = (tuned.model(**enc).logits - base.model(**enc).logits).abs().max().item()
    assert diff > 1e-3, "the adapter did not change the model"


# -- held-out pass@k ---------------------------------------------------------------------
def test_pass_at_k_estimator():
    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 4) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)  # k needs n >= k samples


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_data():
    rng = np.random.default_rng(1)
    small, big = rng.random(20), rng.random(2000)
    lo, hi = bootstrap_ci(small)
    assert lo < small.mean() < hi
    blo, bhi = bootstrap_ci(big)
    assert bhi - blo < (hi - lo) / 5
    assert bootstrap_ci([0.3] * 10) == pytest.approx((0.3, 0.3))


needs_data = pytest.mark.skipif(not (DEFAULT_DATA / "puzzles.json").is_file(), reason="no ../shared/data/p3")


@needs_data
def test_heldout_puzzles_come_from_test_families_only():
    split = json.loads((DEFAULT_DATA / "split.json").read_text())
    items = load_puzzles(split="test", limit=12)
    assert len(items) == 12 and len({p["name"].split(":")[0] for p in items}) == 12
    assert all(p["name"].split(":")[0] in set(split["test"]) for p in items)
    assert items == load_puzzles(split="test", limit=12)  # seeded order


@needs_data
def test_eval_solve_verifies_sampled_solutions_in_the_sandbox():
    puzzles = {p["name"]: p for p in json.loads((DEFAULT_DATA / "puzzles.json").read_text())}
    items = load_puzzles(split="test", limit=4)
    solved = items[:2]

    def respond(prompt: str, j: int) -> str:
        for it in solved:
            if prompt.endswith(it["f"] + "\n\ndef g("):
                ref = puzzles[it["name"]]
                return ref["sol_header"][len("def sol("):] + "\n" + ref["sol_bodies"][0] + "\n"
        return "):\n    return None\n"

    bench = P3Domain().benchmark("test", 4)
    assert bench.ids == [it["name"] for it in items]
    with Sandbox() as sandbox:
        r = evaluate(ScriptedStandInLLM(respond), bench, sandbox, n=2, ks=(1, 2))
    assert r["n_puzzles"] == 4 and r["samples"] == 8
    assert r["solved"] == [it["name"] for it in solved]
    assert r["pass@1"] == pytest.approx(0.5) and r["pass@2"] == pytest.approx(0.5)


@needs_data
def test_eval_resumes_from_its_progress_file(tmp_path):
    """Chunked evaluation gives the unchunked result; a rerun reuses the finished chunks (a
    generator that would fail is never called), redoes a chunk whose line was cut short, and
    never reuses counts written under other sampling settings."""
    puzzles = {p["name"]: p for p in json.loads((DEFAULT_DATA / "puzzles.json").read_text())}
    items = load_puzzles(split="test", limit=5)
    solved = [items[0], items[3]]  # one in each chunk of 3
    calls = []

    def respond(prompt: str, j: int) -> str:
        calls.append(prompt)
        for it in solved:
            if prompt.endswith(it["f"] + "\n\ndef g("):
                ref = puzzles[it["name"]]
                return ref["sol_header"][len("def sol("):] + "\n" + ref["sol_bodies"][0] + "\n"
        return "):\n    return None\n"

    def refuse(prompt: str, j: int) -> str:
        raise AssertionError("a finished chunk was generated again")

    bench, progress = P3Domain().benchmark("test", 5), tmp_path / "eval.jsonl"
    with Sandbox() as sandbox:
        whole = evaluate(ScriptedStandInLLM(respond), bench, sandbox, n=2, ks=(1, 2))
        chunked = evaluate(ScriptedStandInLLM(respond), bench, sandbox, n=2, ks=(1, 2), progress=progress, chunk=3)
        assert chunked["correct"] == whole["correct"] == [2, 0, 0, 2, 0]
        assert len(progress.read_text().splitlines()) == 2
        again = evaluate(ScriptedStandInLLM(refuse), bench, sandbox, n=2, ks=(1, 2), progress=progress, chunk=3)
        assert again["correct"] == whole["correct"] and again["pass@1"] == pytest.approx(0.4)
        lines = progress.read_text().splitlines()
        progress.write_text(lines[0] + "\n" + lines[1][:20])  # the second chunk's line cut by a crash
        calls.clear()
        redone = evaluate(ScriptedStandInLLM(respond), bench, sandbox, n=2, ks=(1, 2), progress=progress, chunk=3)
        assert redone["correct"] == whole["correct"] and len(calls) == 2 * 2  # 2 problems x n=2
        calls.clear()
        other = evaluate(ScriptedStandInLLM(respond), bench, sandbox, n=1, ks=(1,), progress=progress, chunk=3)
        assert other["correct"] == [1, 0, 0, 1, 0] and len(calls) == 5


# -- CLI bad input -----------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["finetune", "/nonexistent"], "is not a campaign directory"),
    (["eval-solve", "--limit", "0"], "--limit must be at least 1"),
    (["eval-solve", "--split", "nope", "--limit", "1"], "unknown split 'nope'"),
    (["eval-solve", "--data", "/nonexistent", "--limit", "1"], "cannot read the P3 data"),
    (["eval", "--n", "4", "--k", "10", "--limit", "1"], "every k must be between 1 and n=4"),
    (["eval", "--domain", "text_feedback", "--limit", "1"], "domain 'text_feedback' has no benchmark"),
    (["eval", "--prompt-style", "poem", "--limit", "1"], "unknown prompt style 'poem'"),
])
def test_cli_bad_input_is_one_line_exit_2(args, message):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    r = subprocess.run([sys.executable, "-m", "evo.cli", *args], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_cli_finetune_rejects_a_bad_setting(small_campaign, tmp_path):
    run = _copy(small_campaign, tmp_path / "run")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    r = subprocess.run([sys.executable, "-m", "evo.cli", "finetune", str(run), "--set", "seed_share=2"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 2 and "bad config: finetune.seed_share" in r.stderr, r.stderr
    assert not (run / "adapters").exists()


def test_the_engine_imports_no_concrete_domain():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "evo").rglob("*.py")
                 if any(line.lstrip().startswith(("from domains", "import domains"))
                        for line in p.read_text().splitlines())]
    assert offenders == []

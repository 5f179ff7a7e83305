"""Search strategies (evo.search): beam keeps the top-k by fitness, the sample budget is spent
exactly, every child records where it sits in the search, a crash mid-iteration replays
deterministically, and a generator paid by fitness cannot game the beam.

Scripted stand-in generator (tests.conftest), real embedder, sandbox and store.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from archives import Archive, CampaignStore, Measures
from evo.campaign import Campaign
from evo.check import check_campaign
from evo.config import CampaignConfig, load_config
from evo.descriptor import Embedder
from evo.errors import EvoError
from evo.llm import ScriptedStandInLLM
from evo.search import Node, _Cells
from tests.conftest import scripted_p3

ROOT = Path(__file__).resolve().parents[2]
W, E, D = 3, 2, 2  # beam_width, beam_expansions, beam_depth: 12 samples per iteration
SHAPE = {"beam_width": W, "beam_expansions": E, "beam_depth": D}
BASE = {"name": "search", "domain": "p3", "max_seeds": 10, "iterations": 3, "prompts_per_iteration": 6,
        "samples_per_prompt": 2, "domain_options": {"solve_attempts": 1}, "archive": {"dims": [10, 10]}}


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


def run(out, embedder, respond=scripted_p3, iterations=3, **strategy):
    cfg = CampaignConfig(**{**BASE, "iterations": iterations, "strategy": {**SHAPE, **strategy}})
    campaign = Campaign(cfg, out, generator=ScriptedStandInLLM(respond), embedder=embedder)
    try:
        campaign.run()
    finally:
        campaign.close()
    store = CampaignStore.open(out)
    try:
        return list(store.candidates("is_seed = 0")), {c.id: c for c in store.candidates("is_seed = 1")}
    finally:
        store.close()


@pytest.fixture(scope="module", params=["beam", "best_first"])
def searched(request, tmp_path_factory, embedder):
    out = tmp_path_factory.mktemp(request.param) / "run"
    children, seeds = run(out, embedder, kind=request.param)
    return request.param, out, children, seeds


def rounds(children):
    """{(iteration, round): children}; a round is W x E consecutive ids of an iteration."""
    by_it = defaultdict(list)
    for c in children:
        by_it[c.iteration].append(c)
    return {(it, i // (W * E)): cs[i:i + W * E] for it, cs in by_it.items() for i in range(0, len(cs), W * E)}


def test_the_budget_is_spent_exactly(searched):
    _, out, children, _ = searched
    per_round = rounds(children)
    assert sorted(per_round) == [(it, r) for it in (1, 2, 3) for r in range(D)]
    for cs in per_round.values():
        assert len(cs) == W * E
        groups = defaultdict(int)
        for c in cs:
            groups[(c.parent_id, c.prompt)] += 1
        assert sorted(groups.values()) == [E] * W  # W prompts of E samples
    stats = CampaignStore.open(out).iterations()
    assert [s["candidates"] for s in stats[1:]] == [W * E * D] * 3
    assert all(s["tokens"] > 0 and "score_tokens" in s for s in stats[1:])


def test_beam_expands_the_top_k_by_fitness_at_each_depth(searched):
    kind, _, children, seeds = searched
    if kind != "beam":
        pytest.skip("beam only")
    per_round = rounds(children)
    nodes = {**{i: s for i, s in seeds.items()}, **{c.id: c for c in children}}
    for (it, r), cs in per_round.items():
        valid = sorted((c for c in cs if c.verdict == "valid"), key=lambda c: (-c.fitness, c.id))
        assert [c.beam_rank for c in valid] == list(range(len(valid)))
        assert all(c.search_value == c.fitness for c in valid)
        assert all(c.beam_rank is None for c in cs if c.verdict != "valid")
        if r + 1 == D:
            continue
        parents = [c.parent_id for c in per_round[it, r + 1]][::E]
        expected = [c.id for c in valid[:W]]
        if len(expected) < W:  # topped up from the beam that made this round, fittest first
            old = sorted({c.parent_id for c in cs}, key=lambda i: (-(nodes[i].fitness or 0.0), i))
            expected += old[: W - len(expected)]
        assert sorted(parents) == sorted(expected), (it, r)
        for c in per_round[it, r + 1]:  # a seed has no depth: it is a root, depth 0
            assert c.depth == (nodes[c.parent_id].depth or 0) + 1


def test_every_child_records_its_place_in_the_search(searched):
    kind, out, children, seeds = searched
    assert children and all(c.strategy == kind for c in children)
    assert all(c.parent_id is not None and c.parent_id in c.parents for c in children)
    ids = {c.id: c for c in children}
    for c in children:
        parent = ids.get(c.parent_id)
        assert c.depth == (1 if parent is None else parent.depth + 1)
        assert parent is not None or c.parent_id in seeds  # roots are seeds
        assert parent is None or parent.verdict == "valid"  # only verified nodes are expanded
    assert {c.depth for c in children} >= {1, 2}
    valid = [c for c in children if c.verdict == "valid"]
    assert valid and all(c.add_status is not None and c.add_status >= 0 for c in valid)  # all offered
    assert all(c.beam_rank is not None and c.search_value is not None for c in valid)
    result = check_campaign(out)  # the archive rebuilt from the store matches every iteration
    assert result.ok, result.problems


def test_other_strategies_record_their_name_and_no_search_fields(tmp_path, embedder):
    cfg = CampaignConfig(**{**BASE, "iterations": 1, "strategy": {"kind": "best_of_n"}})
    campaign = Campaign(cfg, tmp_path / "run", generator=ScriptedStandInLLM(scripted_p3), embedder=embedder)
    try:
        campaign.run()
        children = list(campaign.store.candidates("is_seed = 0"))
    finally:
        campaign.close()
    assert children and {c.strategy for c in children} == {"best_of_n"}
    assert {(c.depth, c.parent_id, c.beam_rank) for c in children} == {(None, None, None)}


@pytest.mark.parametrize("change, message", [
    ({"strategy": {"kind": "beam", "beam_width": 5}},
     "strategy beam: beam_width x beam_expansions x beam_depth (5x2x2=20) must equal prompts_per_iteration x "
     "samples_per_prompt (8x2=16)"),
    ({"strategy": {"kind": "best_first"}, "pipeline": {"staleness": 1}}, "pipeline.staleness must be 0"),
    ({"strategy": {"kind": "beam", "beam_depth": 0}}, "strategy.beam_depth: Input should be greater than 0"),
    ({"strategy": {"kind": "best_first", "search_ucb": -1}}, "strategy.search_ucb"),
])
def test_bad_search_config_is_one_line_exit_2(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(change))
    with pytest.raises(EvoError) as err:
        load_config(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    r = subprocess.run([sys.executable, "-m", "evo.cli", "run", "--config", path, "--out", tmp_path / "x"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr
    assert not (tmp_path / "x").exists()


# -- crash mid-iteration -------------------------------------------------------

def evo_run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "evo.cli", "run", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})})


def snapshot(directory):
    db = sqlite3.connect(Path(directory) / "campaign.sqlite")
    rows = db.execute("SELECT id, iteration, operator, parents, prompt, verdict, reason, item, fitness, cell, "
                      "add_status, strategy, depth, parent_id, beam_rank, search_value FROM candidates "
                      "ORDER BY id").fetchall()
    iters = [i for (i,) in db.execute("SELECT iteration FROM iterations ORDER BY iteration")]
    db.close()
    return rows, iters


@pytest.mark.parametrize("kind, point", [("beam", "round:2"), ("best_first", "evaluate:2")])
def test_a_crash_mid_iteration_replays_it_on_resume(tmp_path, kind, point):
    cfg = tmp_path / "search.yaml"
    cfg.write_text(yaml.safe_dump({**BASE, "strategy": {"kind": kind, **SHAPE}, "generator": {
        "backend": "scripted-stand-in", "model": "tests.conftest:scripted_p3"}}))
    r = evo_run("--config", cfg, "--out", tmp_path / "ref")
    assert r.returncode == 0, r.stderr
    reference = snapshot(tmp_path / "ref")
    r = evo_run("--config", cfg, "--out", tmp_path / "run", env={"EVO_CRASH_AT": point})
    assert r.returncode == -signal.SIGKILL
    rows, iters = snapshot(tmp_path / "run")
    assert iters == [0, 1] and rows == reference[0][: len(rows)]  # nothing of iteration 2 was written
    r = evo_run("--resume", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert snapshot(tmp_path / "run") == reference


# -- a generator paid by fitness -------------------------------------------------

BEST = "n: int, a=977):\n    return n * 7 == a * 7 and n > 900\n\ndef g(a=977):\n    return a\n"


def copy_the_best(prompt, j):
    """Every puzzle sample is the same valid puzzle (solve prompts answer wrongly, so it stays hard)."""
    return "):\n    return None\n" if prompt.rstrip().endswith("def g(") else BEST


def copy_the_best_reformatted(prompt, j):
    """The same puzzle with other formatting and comments: the same puzzle to the domain's key."""
    if prompt.rstrip().endswith("def g("):
        return "):\n    return None\n"
    return BEST if j == 0 else BEST.replace("return n", f"# variant {j}\n    return  n")


def copy_the_parent(prompt, j):
    """The node being expanded, verbatim (the mutation prompt shows it above the instruction)."""
    if prompt.rstrip().endswith("def g("):
        return "):\n    return None\n"
    parent = prompt.split("# Below:")[0].rsplit("```python\ndef f(", 1)[1]
    return parent.split("```")[0]


def garbage(prompt, j):
    junk = ["", "\x00\x01\xff", "def f(:::", "```", "import os; os._exit(0)", "def f(x):\n  return (", "🙂" * 50]
    return junk[(len(prompt) + j) % len(junk)]


@pytest.mark.parametrize("kind, respond", [("beam", copy_the_best), ("best_first", copy_the_best),
                                           ("beam", copy_the_best_reformatted)])
def test_copies_of_the_best_child_never_fill_the_beam(tmp_path, embedder, kind, respond):
    children, _ = run(tmp_path / "run", embedder, respond=respond, iterations=1, kind=kind)
    assert len(children) == W * E * D
    for it in (1,):
        valid = [c for c in children if c.iteration == it and c.verdict == "valid"]
        dups = [c for c in children if c.iteration == it and c.verdict == "duplicate"]
        # the first copy is a new puzzle, every other one a duplicate (of a sibling, or of a
        # node of an earlier round), and a duplicate is never expanded
        assert len(valid) == 1 and len(dups) == W * E * D - 1
        assert not {c.parent_id for c in children if c.iteration == it} & {c.id for c in dups}


@pytest.mark.parametrize("kind", ["beam", "best_first"])
def test_children_that_copy_their_parent_are_duplicates_at_every_depth(tmp_path, embedder, kind):
    cfg = CampaignConfig(**{**BASE, "iterations": 2, "operators": {"weights": {"mutation": 1.0}},
                            "strategy": {"kind": kind, **SHAPE}})
    campaign = Campaign(cfg, tmp_path / "run", generator=ScriptedStandInLLM(copy_the_parent), embedder=embedder)
    try:
        campaign.run()
        children = list(campaign.store.candidates("is_seed = 0"))
    finally:
        campaign.close()
    assert len(children) == 2 * W * E * D
    assert {c.verdict for c in children} == {"duplicate"}  # roots are seeds: copies of them too
    assert {c.depth for c in children} == {1}  # nothing valid to go deeper with: the roots again


@pytest.mark.parametrize("kind", ["beam", "best_first"])
def test_garbage_never_stops_a_campaign(tmp_path, embedder, kind):
    children, _ = run(tmp_path / "run", embedder, respond=garbage, iterations=2, kind=kind)
    assert len(children) == 2 * W * E * D
    assert {c.verdict for c in children} <= {"parse_error", "duplicate", "invalid"}
    assert all(c.strategy == kind and c.parent_id is not None for c in children)
    assert len(CampaignStore.open(tmp_path / "run").iterations()) == 3


# -- best_first's value -----------------------------------------------------------

def test_a_near_copy_in_a_cell_already_held_gains_nothing():
    rng = np.random.default_rng(0)
    measures = Measures.fit_pca(rng.normal(size=(20, 8)), 2, 0.1)
    archive = Archive(measures, [4, 4])
    m = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    archive.add([json.dumps({"f": "x"})], [0.5], m[:1], [1])
    cells = _Cells(archive)
    # the cell holds 0.5: 0.7 gains 0.2, the 0.6 beside it in the same batch gains nothing,
    # and a later 0.65 in that cell gains nothing either (0.7 is there now)
    assert np.allclose(cells.gains(m[:2], np.array([0.6, 0.7])), [0.0, 0.2])
    assert np.allclose(cells.gains(m[:1], np.array([0.65])), [0.0])
    far = np.array([measures.ranges[:, 1] - 1e-6])  # another, empty cell: the whole fitness
    assert np.allclose(cells.gains(far, np.array([0.3])), [0.3])


def test_unexpanded_nodes_win_the_bonus_and_dead_ends_lose_it():
    fresh, stale = Node(1, {}, 1, 0.2), Node(2, {}, 1, 0.3, expansions=3)
    assert fresh.value(4, 0.3) > stale.value(4, 0.3)  # the fitter node, expanded thrice for nothing
    assert fresh.value(4, 0.0) < stale.value(4, 0.0) + 0.3  # greedy: value alone
    rewarded = Node(3, {}, 1, 0.3, rewards=0.9, expansions=3)
    assert rewarded.value(4, 0.3) > stale.value(4, 0.3)

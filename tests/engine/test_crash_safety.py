"""Crash safety: SIGKILL at several points and resume, graceful Ctrl-C, corrupt stores.

These run real `evo run` processes with the scripted stand-in generator (so a kill can
land at a chosen point within seconds); the embedder, sandbox and store are real.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {
    "name": "crash", "domain": "p3", "max_seeds": 8, "iterations": 5,
    "prompts_per_iteration": 6, "samples_per_prompt": 2,
    "domain_options": {"solve_attempts": 2}, "archive": {"dims": [10, 10]},
    "generator": {"backend": "scripted-stand-in", "model": "tests.conftest:scripted_p3"},
}


def write_config(tmp_path, **changes):
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **changes}))
    return path


def evo_run(*args, env=None, wait=True):
    cmd = [sys.executable, "-m", "evo.cli", "run", *map(str, args)]
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300)


def snapshot(directory):
    """Everything that must survive: candidates (in id order) and iteration rows."""
    db = sqlite3.connect(Path(directory) / "campaign.sqlite")
    cands = db.execute("SELECT id, iteration, operator, parents, verdict, reason, item, fitness, cell, add_status "
                       "FROM candidates ORDER BY id").fetchall()
    iters = [i for (i,) in db.execute("SELECT iteration FROM iterations ORDER BY iteration")]
    db.close()
    return cands, iters


def elites(directory):
    from archives import Archive, CampaignStore, Measures, rebuild_archive

    store = CampaignStore.open(directory)
    a = rebuild_archive(store, Archive(Measures.load(Path(directory) / "measures.npz"), [10, 10]))
    return sorted((e["cell"], e["candidate_id"], e["fitness"]) for e in a.elites())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    r = evo_run("--config", write_config(tmp), "--out", tmp / "run")
    assert r.returncode == 0, r.stderr
    return snapshot(tmp / "run"), elites(tmp / "run")


@pytest.mark.parametrize("point", ["generate:2", "evaluate:3", "store:4"])
def test_sigkill_then_resume_loses_nothing_committed(tmp_path, reference, point):
    cfg, out = write_config(tmp_path), tmp_path / "run"
    r = evo_run("--config", cfg, "--out", out, env={"EVO_CRASH_AT": point})
    assert r.returncode == -signal.SIGKILL
    crashed_at = int(point.split(":")[1])
    cands, iters = snapshot(out)
    assert iters == list(range(crashed_at))  # every batch before the crash is committed, none after
    ref_cands, _ = reference[0]
    assert cands == ref_cands[: len(cands)]  # and exactly as an uninterrupted run wrote them
    r = evo_run("--resume", out)
    assert r.returncode == 0, r.stderr
    assert f"resuming the campaign in {out} at iteration {crashed_at}" in " ".join(r.stderr.split())
    # The resumed campaign is indistinguishable from one that never crashed.
    assert snapshot(out) == reference[0]
    assert elites(out) == reference[1]


def test_rerunning_the_same_command_resumes(tmp_path, reference):
    cfg, out = write_config(tmp_path), tmp_path / "run"
    r = evo_run("--config", cfg, "--out", out, "--iterations", "2")
    assert r.returncode == 0, r.stderr
    r = evo_run("--config", cfg, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "resuming the campaign" in r.stderr
    assert snapshot(out) == reference[0]


def wait_for_iteration(out, n, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            db = sqlite3.connect(out / "campaign.sqlite")
            done = db.execute("SELECT COUNT(*) FROM iterations").fetchone()[0]
            db.close()
            if done > n:
                return
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    raise AssertionError("campaign made no progress")


def assert_consistent(out, per_iteration):
    db = sqlite3.connect(out / "campaign.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT iteration, COUNT(*) FROM candidates WHERE is_seed = 0 GROUP BY iteration").fetchall()
    recorded = [i for (i,) in db.execute("SELECT iteration FROM iterations WHERE iteration > 0")]
    assert [i for i, _ in rows] == recorded  # candidates only for committed iterations
    assert all(n == per_iteration for _, n in rows)  # and never half a batch


def start_slow_campaign(tmp_path):
    """A 40-iteration campaign with a slowed stand-in, started and past its first iteration."""
    cfg = write_config(tmp_path, iterations=40, generator={"backend": "scripted-stand-in",
                                                           "model": "tests.conftest:scripted_p3_slow"})
    out = tmp_path / "run"
    proc = evo_run("--config", cfg, "--out", out, wait=False)
    wait_for_iteration(out, 1, proc)
    return out, proc


def test_first_ctrl_c_finishes_the_batch_and_exits_0(tmp_path):
    out, proc = start_slow_campaign(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"Resume with: evo run --resume {out}" in " ".join(err.split())
    _, iters = snapshot(out)
    assert 1 < iters[-1] < 40
    assert_consistent(out, 12)
    r = evo_run("--resume", out, "--iterations", str(iters[-1] + 1))
    assert r.returncode == 0, r.stderr
    assert snapshot(out)[1][-1] == iters[-1] + 1


def test_second_ctrl_c_stops_at_once_without_corrupting(tmp_path):
    out, proc = start_slow_campaign(tmp_path)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert_consistent(out, 12)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_store_is_one_line_exit_2(tmp_path, small_campaign, damage):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(small_campaign, out)
    db = out / "campaign.sqlite"
    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3] if damage == "truncate" else data[:100] + b"\xff" * (len(data) - 100))
    before = db.read_bytes()
    for args in (["--resume", out], ["--config", write_config(tmp_path), "--out", out]):
        r = evo_run(*args)
        assert r.returncode == 2, r.stderr
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and "corrupt" in lines[0], r.stderr
    assert db.read_bytes() == before  # nothing overwritten

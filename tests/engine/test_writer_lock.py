"""One writer per campaign: real processes racing on one directory, a holder killed with
SIGKILL, readers beside a writer. The campaigns use the scripted stand-in generator (for
speed); the lock, store, embedder and sandbox are real."""

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from evo.check import check_campaign
from evo.lock import LOCK_FILE, CampaignLocked, WriterLock

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
CONFIG = {
    "name": "lock", "domain": "p3", "max_seeds": 8, "iterations": 3,
    "prompts_per_iteration": 6, "samples_per_prompt": 2,
    "domain_options": {"solve_attempts": 2}, "archive": {"dims": [10, 10]},
    "generator": {"backend": "scripted-stand-in", "model": "tests.conftest:scripted_p3"},
}
HOLD = ("import sys, time\nfrom evo.lock import WriterLock\n"
        "lock = WriterLock(sys.argv[1], 'evo run').acquire()\nprint('locked', flush=True)\ntime.sleep(600)\n")


def evo(*args, wait=True):
    cmd = [sys.executable, "-m", "evo.cli", *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


def digest(directory):
    """Every byte of the store (its WAL included) and the directory's listing."""
    h = hashlib.sha256()
    for p in sorted(directory.rglob("*")):
        h.update(str(p.relative_to(directory)).encode())
        if p.is_file() and p.name != LOCK_FILE:
            h.update(p.read_bytes())
    return h.hexdigest()


def one_line(r):
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return " ".join(r.stderr.split())


@pytest.fixture
def held(small_campaign, tmp_path):
    """A copy of a finished campaign whose writer lock another live process holds."""
    out = tmp_path / "run"
    shutil.copytree(small_campaign, out)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield out, holder
    holder.kill()
    holder.wait()


def test_a_second_writer_fails_at_once_naming_the_holder_and_writes_nothing(held):
    out, holder = held
    before = digest(out)
    for args in (["run", "--resume", out, "--iterations", "5"], ["finetune", out]):
        r = evo(*args)
        assert r.returncode == 2, r.stderr
        line = one_line(r)
        assert f"{out} is in use by another writer: pid {holder.pid} on host {socket.gethostname()} since " in line
        assert "(evo run)" in line
    assert digest(out) == before  # nothing written, nothing created
    # Readers keep working beside the writer.
    r = evo("status", out)
    assert r.returncode == 0, r.stderr
    assert check_campaign(out).ok


def test_the_lock_of_a_killed_holder_is_no_obstacle(held):
    out, holder = held
    with pytest.raises(CampaignLocked, match=f"pid {holder.pid} "):
        WriterLock(out).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == holder.pid  # the stale record stays
    with WriterLock(out, "test") as lock:  # the kernel dropped the lock with its holder
        assert lock.held and json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_sigkilled_run_leaves_a_lock_that_does_not_block_resume(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "evo.cli", "run", "--config", cfg, "--out", out], cwd=ROOT,
                          env={**ENV, "EVO_CRASH_AT": "evaluate:2"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert json.loads((out / LOCK_FILE).read_text())["command"] == "evo run"
    r = evo("run", "--resume", out)
    assert r.returncode == 0, r.stderr
    assert "resuming the campaign" in r.stderr
    assert check_campaign(out).ok


def test_two_runs_racing_on_one_directory(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "run"
    procs = [evo("run", "--config", cfg, "--out", out, wait=False) for _ in range(2)]
    results = [(p, *p.communicate(timeout=300)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [e for _, _, e in results]
    winner = next(p for p, _, _ in results if p.returncode == 0)
    loser_err = next(e for p, _, e in results if p.returncode == 2)
    assert f"is in use by another writer: pid {winner.pid} " in " ".join(loser_err.split())
    # Exactly one campaign's worth of rows: 8 seeds and 3 batches of 12, nothing from the loser.
    db = sqlite3.connect(out / "campaign.sqlite")
    assert db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] == 8 + 3 * 12
    db.close()
    assert check_campaign(out).ok


FORK_AND_HOLD = ("import os, sys, time\nfrom evo.lock import WriterLock\n"
                 "lock = WriterLock(sys.argv[1], 'evo run').acquire()\n"
                 "child = os.fork()\n"
                 "if child == 0:\n    time.sleep(600)\n    os._exit(0)\n"
                 "print(child, flush=True)\ntime.sleep(600)\n")


def test_a_forked_child_outliving_a_killed_holder_does_not_keep_the_lock(tmp_path):
    # vLLM's engine core and DataLoader workers are forked while the campaign holds the lock
    holder = subprocess.Popen([sys.executable, "-c", FORK_AND_HOLD, str(tmp_path)], cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    try:
        with pytest.raises(CampaignLocked):  # the parent still holds it: the child's close did not unlock
            WriterLock(tmp_path).acquire()
        holder.kill()
        holder.wait()
        os.kill(child, 0)  # the orphan lives on
        # the child closes its copy in its after-fork hook, which may run a moment after the
        # parent died; without the fix it would hold the lock for its whole 600 s
        deadline, lock = time.monotonic() + 10, None
        while lock is None:
            try:
                lock = WriterLock(tmp_path, "test").acquire()
            except CampaignLocked:
                assert time.monotonic() < deadline, "the orphaned child kept the lock"
                time.sleep(0.05)
        assert lock.held
        lock.release()
    finally:
        holder.kill()
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_forked_child_forgets_the_lock_and_the_parent_keeps_it(tmp_path):
    with WriterLock(tmp_path, "test") as lock:
        pid = os.fork()
        if pid == 0:  # the child: its copy is closed and its lock object no longer holds it
            fd = os.open(os.devnull, os.O_RDONLY)  # may reuse the lock's fd number
            lock.release()  # must not close the new fd
            ok = not lock.held and os.fstat(fd) is not None
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert lock.held
        with pytest.raises(CampaignLocked):
            WriterLock(tmp_path).acquire()

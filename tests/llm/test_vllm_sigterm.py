"""``kill`` of a script holding a vLLM engine stops the engine's processes as well.

SIGTERM's default action skips Python's finalizers, and vLLM's engine-core and worker
processes used to outlive a killed ``experiments/compare.py``, adopted by init
(:func:`evo.llm.vllm_backend.exit_cleanly_on_sigterm` is the fix)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evo.llm.vllm_backend import exit_cleanly_on_sigterm
from tests.vllm_fixtures import engine_script


def session_processes(sid: int) -> list[str]:
    """Names of the live processes in session ``sid`` (from /proc: no ps needed)."""
    names = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if int(rest[3]) == sid and rest[0] != "Z":  # fields after comm: state ppid pgrp session
            names.append(name)
    return names


def test_a_program_with_its_own_sigterm_handler_keeps_it():
    def mine(signum, frame):
        pass

    old = signal.signal(signal.SIGTERM, mine)
    try:
        exit_cleanly_on_sigterm()
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, old)


@pytest.mark.vllm
def test_kill_stops_the_engine_processes_too(tmp_path):
    pytest.importorskip("vllm", reason="vLLM's CPU build is missing (make install puts it in .venv)")
    script = engine_script(tmp_path / "holds_an_engine.py", then="""
        import time
        print("READY", flush=True)
        time.sleep(300)
    """)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=tmp_path, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        assert any(n.startswith("VLLM::") for n in session_processes(proc.pid))
        proc.terminate()
        assert proc.wait(timeout=60) == 143
        deadline = time.time() + 30
        while any(n.startswith("VLLM::") for n in session_processes(proc.pid)) and time.time() < deadline:
            time.sleep(0.5)
        assert not [n for n in session_processes(proc.pid) if n.startswith("VLLM::")]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

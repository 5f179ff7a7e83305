"""A generator behind any server that speaks the OpenAI completions API.

``vllm serve``, llama.cpp's server (``llama-server`` or ``python -m llama_cpp.server``),
Ollama (``/v1``) and hosted endpoints all take the same request. Prompts are raw text, so
this uses the *completions* endpoint (no chat template). Needs the ``openai`` extra.

Every sample is its own request (``n=1``): servers disagree on ``n`` (llama.cpp and
Ollama ignore it) and only a one-choice response has an exact token count in ``usage``.
With a seed, sample ``j`` of prompt ``i`` uses ``seed + i * n + j`` -- the seeds vLLM
gives the children of an ``n``-sample request -- so two equal prompts in a batch still
get different samples. Requests run on a thread pool of ``concurrency`` workers; a
connection error, a timeout, a 408/409/429 or a 5xx is retried with exponential backoff
(plus jitter, honouring ``Retry-After``); after ``max_retries`` retries the batch fails
with one :class:`EvoError` line. Other 4xx answers (unknown model, bad key) fail at once.
"""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from evo.errors import EvoError
from evo.llm.base import Generation, SamplingParams, truncate_at_stop

MAX_API_STOPS = 4  # the OpenAI API takes at most four stop strings; the rest are cut here
RETRY_STATUSES = {408, 409, 429}
MAX_BACKOFF_S = 30.0


class OpenAIGenerator:
    """:class:`~evo.llm.base.LLM` over an OpenAI-compatible ``/v1/completions`` endpoint."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        version: int = 0,
        adapter: str | None = None,
        **_ignored: Any,  # batch_size, device: the server owns batching and placement
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise EvoError(f"backend 'openai' needs the openai extra (pip install 'evo[openai]'): {exc}") from None
        if not base_url:
            raise EvoError("backend 'openai' needs generator.base_url (e.g. http://127.0.0.1:8000/v1)")
        if concurrency < 1 or timeout_s <= 0 or max_retries < 0 or backoff_s < 0:
            raise EvoError("openai backend: concurrency >= 1, timeout_s > 0, max_retries >= 0 and backoff_s >= 0")
        self._openai = openai
        # The served model name: a LoRA adapter registered with the server (e.g. `vllm serve
        # --lora-modules NAME=PATH`) is addressed by its name instead of the base model's.
        self.model = model
        self.name = model
        self.version = version
        self.base_url = base_url
        self.timeout_s, self.max_retries, self.backoff_s = float(timeout_s), int(max_retries), float(backoff_s)
        api_key = os.environ.get(api_key_env) or "EMPTY"  # local servers ignore the key
        # Retries are ours (one policy, one clear error), not the client's.
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=self.timeout_s, max_retries=0)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="evo-openai")
        self._lock = threading.Lock()
        self.requests = 0  # requests sent, retries included (for tests and reports)
        self.retries = 0
        if adapter:
            self.set_adapter(adapter, version)

    def set_adapter(self, adapter: str | None, version: int) -> None:
        """Generates with a LoRA adapter from now on (None: the base model).

        ``adapter`` is the name of an adapter the server serves already (``vllm serve
        --lora-modules NAME=PATH``), or a local adapter folder: that one is loaded into the
        server at run time (vLLM's ``POST /v1/load_lora_adapter``; needs ``--enable-lora`` and
        ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``, and the folder must be readable by the
        server) under the name ``evo-rVERSION-DIGEST``, DIGEST a hash of the adapter's files:
        a long-running server that holds the same adapter already (a resume, a second
        campaign, another arm) is reused, and different weights never share a name."""
        if adapter and Path(adapter).is_dir():
            name = f"evo-r{version}-{adapter_digest(adapter)}"
            self._load_lora(name, str(Path(adapter).resolve()))
            adapter = name
        self.name, self.version = adapter or self.model, version

    def _load_lora(self, name: str, path: str) -> None:
        import json
        import urllib.error
        import urllib.request

        url = f"{self.base_url.rstrip('/')}/load_lora_adapter"
        request = urllib.request.Request(
            url, data=json.dumps({"lora_name": name, "lora_path": path}).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.client.api_key}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s):
                return
        except urllib.error.HTTPError as exc:
            body = exc.read()[:300].decode(errors="replace")
            if exc.code == 400 and "already been loaded" in body:
                return  # same name = same files (the name holds their digest)
            from evo.llm.vllm_backend import adapter_rank

            raise EvoError(f"server at {self.base_url} could not load LoRA adapter {path} (HTTP {exc.code}: "
                           f"{body[:200]}); vllm serve needs --enable-lora, --max-lora-rank >= "
                           f"{adapter_rank(path)} (the adapter's rank; vLLM's default is 16) and "
                           "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True") from None
        except OSError as exc:
            raise EvoError(f"cannot reach {url} to load LoRA adapter {path}: {exc}") from None

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        jobs = [(i, j) for i in range(len(prompts)) for j in range(params.n)]
        futures = {}
        for i, j in jobs:
            seed = None if params.seed is None else (params.seed + i * params.n + j) % (2**31 - 1)
            futures[self._pool.submit(self._complete, prompts[i], params, seed)] = (i, j)
        done, not_done = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            for f in not_done:
                f.cancel()
            raise failed.exception()
        out: list[list[Generation | None]] = [[None] * params.n for _ in prompts]
        for f, (i, j) in futures.items():
            out[i][j] = f.result()
        return out  # type: ignore[return-value]

    def _complete(self, prompt: str, params: SamplingParams, seed: int | None) -> Generation:
        request: dict[str, Any] = {
            "model": self.name, "prompt": prompt, "n": 1, "max_tokens": params.max_new_tokens,
            "temperature": params.temperature, "top_p": params.top_p,
        }
        if params.stop:
            request["stop"] = list(params.stop[:MAX_API_STOPS])
        if seed is not None:
            request["seed"] = seed
        response = self._call(request)
        if not response.choices:
            raise EvoError(f"OpenAI-compatible server at {self.base_url} returned no choices")
        text, _ = truncate_at_stop(response.choices[0].text or "", params.stop)
        usage = getattr(response, "usage", None)
        tokens = getattr(usage, "completion_tokens", None)
        if tokens is None:  # a server without usage: a rough count (~4 characters a token)
            tokens = max(1, len(text) // 4) if text else 0
        return Generation(text=text, num_tokens=int(tokens))

    def _call(self, request: dict[str, Any]) -> Any:
        o = self._openai
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            with self._lock:
                self.requests += 1
                self.retries += attempt > 0
            try:
                return self.client.completions.create(**request)
            except o.APIStatusError as exc:
                status = exc.status_code
                if status not in RETRY_STATUSES and status < 500:
                    raise EvoError(f"OpenAI-compatible server at {self.base_url} refused model "
                                   f"'{self.name}' (HTTP {status}): {_brief(exc)}") from None
                last = f"HTTP {status}: {_brief(exc)}"
                retry_after = _retry_after(exc)
            except o.APIConnectionError as exc:  # refused, reset, DNS, and timeouts
                kind = "timed out" if isinstance(exc, o.APITimeoutError) else "connection failed"
                last = f"{kind} ({_brief(exc)})"
                retry_after = None
            if attempt + 1 < attempts:
                delay = min(MAX_BACKOFF_S, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                time.sleep(max(delay, min(retry_after or 0.0, MAX_BACKOFF_S)))
        raise EvoError(f"OpenAI-compatible server at {self.base_url} did not answer for model "
                       f"'{self.name}' after {attempts} attempts (timeout {self.timeout_s:g}s each): {last}")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    def __del__(self) -> None:  # best effort: threads of a forgotten generator
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def adapter_digest(path: str | Path) -> str:
    """12 hex digits of SHA-256 over a PEFT adapter folder's config and weight files."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(Path(path).glob("adapter_*")):
        if f.is_file():
            h.update(f.name.encode())
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:12]


def _brief(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _retry_after(exc: Any) -> float | None:
    try:
        return float(exc.response.headers.get("retry-after"))
    except (AttributeError, TypeError, ValueError):
        return None

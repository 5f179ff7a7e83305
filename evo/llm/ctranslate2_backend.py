"""The fast CPU backend: CTranslate2 (int8 weights, batches sorted by length, per-row stops).

The Hugging Face model (the embedded alias's cached safetensors, a folder or a hub id
already in the cache) is converted once into CTranslate2's format and cached on disk. A
LoRA adapter is merged into the weights first (PEFT ``merge_and_unload``), and the merged
conversion is cached by the adapter's content hash, so a campaign's fine-tuned generator
costs one conversion per adapter.

Why it is faster than :class:`~evo.llm.transformers_backend.TransformersLLM` on CPU:
int8 GEMMs, rows batched by prompt length (little padding), the prompt forwarded in one
pass, and a row stops as soon as it writes a stop string (its callback returns True)
instead of running until the batch's longest row is done.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from evo.errors import EvoError
from evo.llm.base import Generation, SamplingParams, truncate_at_stop
from evo.llm.embedded import cache_dir, resolve_model_path
from evo.llm.merge import adapter_hash, check_adapter, merge_adapter

# generator.dtype -> CTranslate2 compute type ("auto": int8 weights, float32 activations
# on CPU; int8 weights with float16 activations on CUDA)
COMPUTE_TYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}
CONVERTER_VERSION = 1  # bump when the conversion below changes: old caches are then ignored


def compute_type(dtype: str, device: str) -> str:
    if dtype == "auto":
        return "int8_float16" if device == "cuda" else "int8"
    try:
        return COMPUTE_TYPES[dtype]
    except KeyError:
        raise EvoError(f"unknown dtype '{dtype}' (choose auto, float32, bfloat16 or float16)") from None


def converted_model(model: str, adapter: str | None = None, quantization: str = "int8") -> str:
    """The CTranslate2 folder of ``model`` (+ merged ``adapter``) with weights stored as
    ``quantization`` (the compute type: loading then costs no re-quantisation), converted once.
    """
    from ctranslate2.converters import TransformersConverter

    path = resolve_model_path(model)
    key = Path(path).name if Path(path).is_dir() else model.replace("/", "--")
    if adapter:
        check_adapter(adapter)
        key += f"-lora-{adapter_hash(adapter)}"
    out = cache_dir() / "ct2" / f"{key}-{quantization}-v{CONVERTER_VERSION}"
    if (out / "model.bin").is_file():
        return str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        src = path
        if adapter:
            src = str(tmp) + "-merged"
            merge_adapter(path, adapter, Path(src))
        TransformersConverter(src, copy_files=["tokenizer.json", "tokenizer_config.json"],
                              load_as_float16=False).convert(str(tmp), quantization=quantization)
        try:
            tmp.rename(out)  # atomic: a half-written conversion is never picked up
        except OSError:  # another process finished first
            pass
    except (OSError, ValueError, KeyError, NotImplementedError) as exc:
        raise EvoError(f"cannot load generator model '{model}' (ctranslate2 conversion): "
                       f"{str(exc).splitlines()[0]}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if adapter:
            shutil.rmtree(str(tmp) + "-merged", ignore_errors=True)
    return str(out)


class _StopWatch:
    """The per-token callback: stops a row once its text holds a stop string."""

    def __init__(self, tokenizer: Any, stop: list[str], rows: int) -> None:
        self.tokenizer, self.stop = tokenizer, [s for s in stop if s]
        self.ids: list[list[int]] = [[] for _ in range(rows)]
        # a stop string spans at most len(s) tokens; look back a few more for merges
        self.window = max((len(s) for s in self.stop), default=0) + 4

    def __call__(self, step: Any) -> bool:
        ids = self.ids[step.batch_id]
        ids.append(step.token_id)
        tail = self.tokenizer.decode(ids[-self.window:], skip_special_tokens=True)
        return any(s in tail for s in self.stop)


class CTranslate2LLM:
    """Samples from a causal LM with CTranslate2; ``batch_size`` counts rows per forward pass.

    Each sample is its own row (a stop ends one sample, not its siblings). With a seed the
    engine is reloaded before the call (its sampler is seeded per worker thread at start),
    so the same seed and prompts give the same samples on the same machine and compute type.
    """

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        batch_size: int = 32,
        device: str = "auto",
        dtype: str = "auto",
        adapter: str | None = None,
        version: int = 0,
        threads: int = 0,
    ) -> None:
        try:
            import ctranslate2
        except ImportError as exc:
            raise EvoError(f"backend 'ctranslate2' needs the ctranslate2 package: {exc}") from None
        from transformers import AutoTokenizer

        self._ct2 = ctranslate2
        self.name, self.version, self.batch_size, self.adapter = model, version, batch_size, adapter
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        self.device = device.split(":")[0]
        self.compute_type = compute_type(dtype, self.device)
        self.threads = threads or len(os.sched_getaffinity(0))
        self.path = converted_model(model, adapter, self.compute_type)
        # the model's own tokenizer folder: it carries the chat template the conversion drops
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(model))
        self._hf_model: Any = None
        self.engine = self._load()

    def _load(self) -> Any:
        try:
            return self._ct2.Generator(self.path, device=self.device, compute_type=self.compute_type,
                                       intra_threads=self.threads, inter_threads=1)
        except (RuntimeError, ValueError) as exc:
            raise EvoError(f"ctranslate2 cannot load '{self.name}' as {self.compute_type} "
                           f"on {self.device}: {exc}") from None

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        if not prompts:
            return []
        if params.seed is not None:
            # the sampler is a thread-local generator seeded when the worker thread starts
            self._ct2.set_random_seed(params.seed % 2**32)
            self.engine = self._load()
        rows = [i for i in range(len(prompts)) for _ in range(params.n)]
        tokens = [self.tokenizer.convert_ids_to_tokens(self.tokenizer(p)["input_ids"]) for p in prompts]
        watch = _StopWatch(self.tokenizer, params.stop, len(rows)) if params.stop else None
        sampled = params.temperature > 0
        results = self.engine.generate_batch(
            [tokens[i] for i in rows],
            max_batch_size=self.batch_size,
            max_length=params.max_new_tokens,
            include_prompt_in_result=False,
            sampling_topk=0 if sampled else 1,
            sampling_topp=params.top_p if sampled else 1.0,
            sampling_temperature=params.temperature if sampled else 1.0,
            callback=watch,
        )
        out: list[list[Generation]] = [[] for _ in prompts]
        for i, res in zip(rows, results):
            ids = res.sequences_ids[0]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            text, _ = truncate_at_stop(text, params.stop)
            out[i].append(Generation(text=text, num_tokens=len(ids)))
        return out

    @property
    def model(self) -> Any:
        """The same weights as a transformers model, loaded on first use: the LLM judge
        (domains/text_feedback) reads next-token log-probabilities from it."""
        if self._hf_model is None:
            from evo.llm.transformers_backend import reference_model

            self._hf_model = reference_model(self.name, self.adapter)
        return self._hf_model

"""The GPU backend: vLLM's offline ``LLM`` engine (needs the ``gpu`` extra and CUDA).

One engine per process, batched over the whole iteration (vLLM schedules the batch;
``batch_size`` caps the sequences it runs at once), ``n`` samples per prompt from one
request (the prompt is prefilled once), prefix caching on (operator prompts share their
instructions and parents), and LoRA on: :meth:`VLLMGenerator.set_adapter` hot-swaps the
adapter of a fine-tune round with a new ``LoRARequest`` -- the base weights stay loaded,
nothing restarts. ``vllm`` is imported only when a generator is built.

Seeds: prompt ``i`` gets ``seed + i * n``; vLLM seeds the ``n`` children of a request
``seed + j``, so every sample of a batch has its own seed (as in the OpenAI backend).
"""

from __future__ import annotations

from typing import Any

from evo.errors import EvoError
from evo.llm.base import Generation, SamplingParams, truncate_at_stop
from evo.llm.embedded import resolve_model_path


def vllm_available() -> bool:
    """True when vLLM is importable and a CUDA device is visible (no import of vllm)."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


class VLLMGenerator:
    """:class:`~evo.llm.base.LLM` on a ``vllm.LLM`` engine; extra keywords go to the engine
    (``gpu_memory_utilization``, ``max_model_len``, ``tensor_parallel_size``, ``dtype`` ...)."""

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        version: int = 0,
        batch_size: int = 256,
        device: str = "auto",
        max_lora_rank: int = 64,
        **engine: Any,
    ) -> None:
        try:
            import vllm
            from vllm.lora.request import LoRARequest
        except ImportError as exc:
            raise EvoError(f"backend 'vllm' needs the gpu extra (pip install 'evo[gpu]'): {exc}") from None
        if device not in ("auto", "cuda") and not device.startswith("cuda"):
            raise EvoError(f"backend 'vllm' runs on CUDA, not on device '{device}' (use backend transformers)")
        import torch

        if not torch.cuda.is_available():
            raise EvoError("backend 'vllm' needs a CUDA GPU and none is visible (use backend transformers)")
        self._vllm, self._LoRARequest = vllm, LoRARequest
        self.name = model
        self.version = version
        options = {
            "model": resolve_model_path(model),
            "enable_prefix_caching": True,
            "enable_lora": True,
            "max_lora_rank": max_lora_rank,
            "max_loras": 1,
            "max_num_seqs": batch_size,
            **engine,
        }
        try:
            self.engine = vllm.LLM(**options)
        except (OSError, ValueError) as exc:
            raise EvoError(f"vLLM cannot load generator model '{model}': {str(exc).splitlines()[0]}") from None
        self._lora: Any = None
        self._next_lora_id = 1
        if adapter:
            self.set_adapter(adapter, version)

    def set_adapter(self, path: str | None, version: int) -> None:
        """Generates with the LoRA adapter at ``path`` from now on (None: the base model).

        Each swap gets a fresh LoRA id, so vLLM loads the new weights instead of reusing a
        cached adapter of the same name; the engine and the base weights stay as they are."""
        if path is None:
            self._lora = None
        else:
            lora_id = self._next_lora_id
            self._next_lora_id += 1
            self._lora = self._LoRARequest(f"evo-v{version}-{lora_id}", lora_id, str(path))
        self.version = version

    def sampling_params(self, params: SamplingParams, seed: int | None) -> Any:
        return self._vllm.SamplingParams(
            n=params.n, temperature=params.temperature, top_p=params.top_p,
            max_tokens=params.max_new_tokens, stop=list(params.stop) or None, seed=seed,
        )

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        if not prompts:
            return []
        if params.seed is None:
            sampling: Any = self.sampling_params(params, None)
        else:
            sampling = [self.sampling_params(params, (params.seed + i * params.n) % (2**31 - 1))
                        for i in range(len(prompts))]
        outputs = self.engine.generate(prompts, sampling, lora_request=self._lora, use_tqdm=False)
        out = []
        for request in outputs:
            row = []
            for completion in sorted(request.outputs, key=lambda c: c.index):
                text, _ = truncate_at_stop(completion.text, params.stop)
                row.append(Generation(text=text, num_tokens=len(completion.token_ids)))
            out.append(row)
        return out

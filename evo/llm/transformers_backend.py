"""The default backend: Hugging Face transformers, batched, on CPU or one GPU."""

from __future__ import annotations

from typing import Any

import torch

from evo.errors import EvoError
from evo.llm import hardware
from evo.llm.base import Generation, SamplingParams, truncate_at_stop
from evo.llm.embedded import resolve_model_path


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") or hardware.cpu_has_bf16() else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise EvoError(f"unknown dtype '{dtype}' (choose auto, float32, bfloat16 or float16)") from None


def reference_model(model: str, adapter: str | None = None) -> Any:
    """``model`` (and a PEFT ``adapter`` on it) as an eval-mode transformers model on CPU.

    Engines that give no log-probabilities (CTranslate2, vLLM here) load it on first use for
    the LLM judge (domains/text_feedback), so judge scores match the reference backend's."""
    from transformers import AutoModelForCausalLM

    hf_model = AutoModelForCausalLM.from_pretrained(resolve_model_path(model))
    if adapter:
        from peft import PeftModel

        hf_model = PeftModel.from_pretrained(hf_model, adapter)
    return hf_model.eval()


class TransformersLLM:
    """Samples from a causal LM with left padding and real batching.

    ``batch_size`` counts sequences (prompts x samples) per forward pass.
    """

    def __init__(
        self,
        model: str = "smollm2-135m",
        *,
        batch_size: int = 16,
        device: str = "auto",
        dtype: str = "auto",
        adapter: str | None = None,
        version: int = 0,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_path(model)
        self.name = model
        self.version = version
        self.batch_size = batch_size
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(
                path, dtype=resolve_dtype(dtype, self.device)
            )
        except (OSError, ValueError) as exc:
            raise EvoError(f"cannot load generator model '{model}': {str(exc).splitlines()[0]}") from None
        if adapter:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, adapter)
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @torch.inference_mode()
    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        if params.seed is not None:
            torch.manual_seed(params.seed)
        # Expand to one row per sample, then run micro-batches of batch_size rows.
        rows = [i for i in range(len(prompts)) for _ in range(params.n)]
        out: list[list[Generation]] = [[] for _ in prompts]
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            for i, gen in zip(chunk, self._generate_rows([prompts[i] for i in chunk], params)):
                out[i].append(gen)
        return out

    def _generate_rows(self, texts: list[str], params: SamplingParams) -> list[Generation]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.device)
        kwargs = {}
        if params.stop:
            kwargs = {"stop_strings": params.stop, "tokenizer": self.tokenizer}
        ids = self.model.generate(
            **enc,
            do_sample=params.temperature > 0,
            temperature=params.temperature if params.temperature > 0 else None,
            top_p=params.top_p,
            max_new_tokens=params.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            **kwargs,
        )
        new = ids[:, enc["input_ids"].shape[1] :]
        gens = []
        for row in new:
            tokens = row[row != self.tokenizer.pad_token_id]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            text, _ = truncate_at_stop(text, params.stop)
            gens.append(Generation(text=text, num_tokens=int(tokens.numel())))
        return gens

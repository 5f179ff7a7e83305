"""How far a tuned adapter has drifted from its base model, on given texts.

- :func:`token_kl`: per (prompt, completion), the mean over the completion's tokens of the
  exact KL(tuned || base) between the two next-token distributions (the whole vocabulary at
  every position, not a one-sample estimate). On the tuned model's own samples this is the
  per-token KL that RLHF's anchor penalises, measured where the tuned model actually goes;
- :func:`distinct_n`: the share of distinct n-grams in a set of texts (1.0: no repeats), a
  collapse check beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def token_kl(model: str, adapter: str, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
    """Mean per-token KL(adapter || base) over each completion (nan for an empty one)."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from evo.llm.embedded import resolve_model_path
    from evo.llm.transformers_backend import reference_model

    if len(prompts) != len(completions):
        raise ValueError("one completion per prompt")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(model))
    tuned: Any = reference_model(model, adapter)
    if not isinstance(tuned, PeftModel):
        raise ValueError("token_kl needs an adapter")
    out = []
    with torch.inference_mode():
        for prompt, completion in zip(prompts, completions):
            p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
            if not c_ids:
                out.append(float("nan"))
                continue
            ids = torch.tensor([p_ids + c_ids])
            # the logits that predict the completion's tokens: positions len(p)-1 .. end-1
            sl = slice(len(p_ids) - 1, len(p_ids) + len(c_ids) - 1)
            logp = tuned(input_ids=ids).logits[0, sl].float().log_softmax(-1)
            with tuned.disable_adapter():
                ref = tuned(input_ids=ids).logits[0, sl].float().log_softmax(-1)
            out.append(float((logp.exp() * (logp - ref)).sum(-1).mean()))
    del tuned
    return out


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct word n-grams / all word n-grams over ``texts`` (0.0 when there are none)."""
    grams = [tuple(w[i:i + n]) for w in (t.lower().split() for t in texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0

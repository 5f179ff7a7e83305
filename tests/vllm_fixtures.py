"""Shared fixtures of the real-vLLM tests (marked ``vllm``; ``make test``): a LoRA
adapter trained by evo's own trainer (what ``evo finetune`` runs), once per session.

The adapter is trained hard on one prompt and one completion, so the change it makes to
greedy outputs is visible, not a matter of sampling noise."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

# Small CPU engines: a 1 GiB KV cache each (vLLM's CPU default is 4 GiB).
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

MODEL = "smollm2-135m"
PROMPT = "def f(x: int) -> bool:\n    return"
MARKER = " 'evolved' in str(x)  # EVOLVED"
LORA_R = 8
ROOT = Path(__file__).resolve().parents[1]


def engine_script(path: Path, *, imports: str = "", then: str = "") -> Path:
    """Writes a script that runs ``imports`` at its top, then (under the ``__main__`` guard a
    vLLM engine needs) starts a small CPU engine as ``gen`` and runs ``then``."""
    path.write_text(textwrap.dedent("""
        import sys
        sys.path.insert(0, {root!r})
        {imports}

        if __name__ == "__main__":
            from evo.llm import SamplingParams, load_generator
            from tests.vllm_fixtures import MODEL
            gen = load_generator("vllm", MODEL, batch_size=2, device="auto", dtype="auto",
                                 engine={{"max_model_len": 256}})
    """).format(root=str(ROOT), imports=imports) + textwrap.indent(textwrap.dedent(then).strip(), " " * 4) + "\n")
    return path


@pytest.fixture(scope="session")
def trained_adapter(tmp_path_factory) -> Path:
    from evo.config import FinetuneConfig
    from evo.finetune.data import Example
    from evo.finetune.train import train_lora

    out = tmp_path_factory.mktemp("lora") / "round-1"
    examples = [Example(prompt=PROMPT, completion=MARKER + "\n", kind="generate", source="archive", key=str(i))
                for i in range(8)]
    cfg = FinetuneConfig(lora_r=LORA_R, lora_alpha=2 * LORA_R, lora_dropout=0.0, max_steps=6, lr=5e-3,
                         batch_size=4, max_length=64)
    result = train_lora(MODEL, examples, out, cfg, seed=0, device="cpu")
    assert result["metrics"]["last_loss"] < result["metrics"]["first_loss"]
    assert (out / "adapter_model.safetensors").is_file()
    return out

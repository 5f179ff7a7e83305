"""A LoRA adapter merged into a copy of its base model's weights, cached on disk.

Two engines serve a fine-tuned generator this way: CTranslate2 converts the merged folder
(it has no LoRA), and vLLM's CPU build can start on it instead of applying the adapter to
every token (``generator.lora_serving: merge``; see :mod:`evo.llm.vllm_backend` for what it
saves). Merged folders are keyed by the adapter's content hash, so a resumed run finds its
merge again; only the newest few are kept (a 1.5B model in bfloat16 is 3 GB a folder).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from evo.errors import EvoError
from evo.llm.embedded import cache_dir, resolve_model_path

__all__ = ["adapter_hash", "check_adapter", "merge_adapter", "merged_model"]

MERGED_KEPT = 2  # merged folders kept in the cache, newest first (the one in use among them)


def check_adapter(adapter: str | Path) -> None:
    """One clear error for a folder that is not a PEFT adapter (before any model loads)."""
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise EvoError(f"adapter folder '{adapter}' has no adapter_config.json")


def adapter_hash(adapter: str | Path) -> str:
    """sha256 (16 hex digits) over the adapter folder's ``adapter_*`` files, names and bytes."""
    h = hashlib.sha256()
    for f in sorted(Path(adapter).glob("adapter_*")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def merge_adapter(path: str, adapter: str, out: Path, dtype: str | None = None) -> None:
    """Saves the model at ``path`` with ``adapter`` merged into its weights (a plain HF folder).

    ``dtype`` (``bfloat16``, ``float32`` ...): the merge is computed in float32 and the result
    stored in ``dtype``; None keeps what transformers loads by default."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype is None:
        model = AutoModelForCausalLM.from_pretrained(path)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    if dtype is not None:
        model = model.to(getattr(torch, dtype))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(path).save_pretrained(out)


def merged_model(model: str, adapter: str, dtype: str = "bfloat16", keep: int = MERGED_KEPT) -> str:
    """The cached folder of ``model`` with ``adapter`` merged, stored in ``dtype``; merged once
    (written under a temporary name, then renamed: a half-written merge is never used)."""
    check_adapter(adapter)
    path = resolve_model_path(model)
    base = Path(path).name if Path(path).is_dir() else model.replace("/", "--")
    root = cache_dir() / "merged"
    out = root / f"{base}-lora-{adapter_hash(adapter)}-{dtype}"
    if (out / "config.json").is_file():
        os.utime(out)  # newest: kept by the pruning below
        return str(out)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{out.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        merge_adapter(path, adapter, tmp, dtype)
        try:
            tmp.rename(out)
        except OSError:  # another process finished the same merge first
            pass
    except (OSError, ValueError, KeyError) as exc:
        raise EvoError(f"cannot merge adapter '{adapter}' into '{model}': {str(exc).splitlines()[0]}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(root, keep, out)
    return str(out)


def _prune(root: Path, keep: int, current: Path) -> None:
    """Removes all but the ``keep`` newest merged folders (never ``current``)."""
    done = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda d: d.stat().st_mtime, reverse=True)
    for d in done[keep:]:
        if d != current:
            shutil.rmtree(d, ignore_errors=True)

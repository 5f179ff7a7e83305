"""The CTranslate2 backend: samples, stop strings, seeds and merged LoRA adapters on the real
embedded model; config and input validation without it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from evo.config import GeneratorConfig
from evo.errors import EvoError
from evo.llm import SamplingParams, load_generator

ct2 = pytest.importorskip("ctranslate2")

from evo.llm.ctranslate2_backend import _StopWatch, compute_type, converted_model  # noqa: E402

PROMPTS = ["```python\ndef f(s: str):\n    return", "Three facts about the moon:\n1."]


def test_config_accepts_ctranslate2_and_rejects_unknown_backends_and_dtypes():
    assert GeneratorConfig(backend="ctranslate2").backend == "ctranslate2"
    with pytest.raises(ValueError):
        GeneratorConfig(backend="ctranslate3")
    with pytest.raises(ValueError):
        GeneratorConfig(backend="ctranslate2", dtype="int4")
    assert compute_type("auto", "cpu") == "int8" and compute_type("float32", "cpu") == "float32"
    with pytest.raises(EvoError, match="unknown dtype"):
        compute_type("int4", "cpu")


def test_an_adapter_folder_without_adapter_config_is_one_clear_error(tmp_path):
    (tmp_path / "adapter_model.safetensors").write_bytes(b"not an adapter")
    with pytest.raises(EvoError, match="adapter_config.json"):
        converted_model("smollm2-135m", str(tmp_path))


class _CharTokenizer:
    """One character per token: a stop string always spans several tokens."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids)


def test_stop_watch_stops_only_the_row_that_wrote_a_stop_string_across_tokens():
    watch = _StopWatch(_CharTokenizer(), ["```", ""], rows=2)
    steps = [(0, "a"), (1, "`"), (0, "`"), (1, "`"), (0, "b"), (1, "`")]
    said = [watch(SimpleNamespace(batch_id=b, token_id=ord(c))) for b, c in steps]
    assert said == [False, False, False, False, False, True]
    # a long tail: the window still sees a stop string written at the end
    for c in "x" * 50 + "`" * 2:
        assert not watch(SimpleNamespace(batch_id=0, token_id=ord(c)))
    assert watch(SimpleNamespace(batch_id=0, token_id=ord("`")))


@pytest.mark.slow
def test_real_model_n_samples_stop_strings_seeds_and_a_merged_adapter(tmp_path):
    from evo.llm.embedded import resolve_model_path

    llm = load_generator("ctranslate2", "smollm2-135m", batch_size=4, device="cpu")
    params = SamplingParams(n=3, temperature=0.8, max_new_tokens=40, stop=["\n"], seed=5)
    out = llm.generate(PROMPTS, params)
    assert [len(row) for row in out] == [3, 3]
    gens = [g for row in out for g in row]
    assert all("\n" not in g.text and 0 < g.num_tokens <= 40 for g in gens)
    assert any(g.num_tokens < 40 for g in gens), "no row stopped at its stop string"
    assert len({g.text for g in gens}) > 1, "n samples are copies of one another"
    again = llm.generate(PROMPTS, params)
    assert [[g.text for g in row] for row in again] == [[g.text for g in row] for row in out]

    # a LoRA adapter with non-zero weights: merged, converted, and it changes greedy outputs
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(resolve_model_path("smollm2-135m"))
    peft = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    peft.save_pretrained(tmp_path / "adapter")
    greedy = SamplingParams(n=1, temperature=0, max_new_tokens=16)
    tuned = load_generator("ctranslate2", "smollm2-135m", adapter=str(tmp_path / "adapter"),
                           batch_size=4, device="cpu", version=1)
    assert tuned.version == 1 and tuned.path != llm.path
    assert [r[0].text for r in tuned.generate(PROMPTS, greedy)] != [r[0].text for r in llm.generate(PROMPTS, greedy)]


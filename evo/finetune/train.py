"""LoRA fine-tuning of the generator with TRL's ``SFTTrainer`` and PEFT (no hand-written loop).

Prompt-completion examples: the loss is on the completion only. With ``kl_coef > 0`` a small
``SFTTrainer`` subclass adds KL(tuned || frozen base) on the completion tokens of every
training batch (the frozen base is the same model with the LoRA adapter switched off, so it
costs one extra forward pass and no second copy of the weights).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from evo.config import FinetuneConfig
from evo.errors import EvoError
from evo.finetune.data import Example
from evo.llm.embedded import resolve_model_path
from evo.llm.transformers_backend import resolve_dtype


def _kl_trainer_class():
    from trl import SFTTrainer

    class KLSFTTrainer(SFTTrainer):
        """SFT loss + ``kl_coef`` * KL(policy || base) on the completion tokens."""

        kl_coef: float = 0.0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not self.kl_coef or not model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"][:, 1:]
            mask = labels != -100
            fwd = {k: v for k, v in inputs.items() if k != "labels"}
            fwd["use_cache"] = False
            # Only the completion tokens' logits are kept (prompt and padding rows dropped at
            # once); the fp32 log-softmaxes are built chunk by chunk in completion_terms.
            logits = model(**fwd).logits[:, :-1][mask]
            with torch.no_grad(), self.accelerator.unwrap_model(model).disable_adapter():
                ref = model(**fwd).logits[:, :-1][mask]
            n = mask.sum() if num_items_in_batch is None else num_items_in_batch
            n = torch.as_tensor(n, device=logits.device).clamp(min=1)
            nll, kl = completion_terms(logits, ref, labels[mask])
            sft, kl = nll / n, kl / n
            self.kl_log.append(float(kl.detach()))
            self.sft_log.append(float(sft.detach()))
            loss = sft + self.kl_coef * kl
            return (loss, None) if return_outputs else loss

    return KLSFTTrainer


KL_CHUNK = 1024  # completion tokens per fp32 log-softmax chunk in the KL anchor


def _chunk_terms(logits: torch.Tensor, ref: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logp, ref_logp = logits.float().log_softmax(-1), ref.float().log_softmax(-1)
    nll = -logp.gather(-1, targets.unsqueeze(-1)).sum()
    kl = (logp.exp() * (logp - ref_logp)).sum()
    return torch.stack([nll, kl])


def completion_terms(logits: torch.Tensor, ref: torch.Tensor, targets: torch.Tensor,
                     chunk: int = KL_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed NLL of ``targets`` and summed KL(policy || ref) over rows of ``[tokens, vocab]``
    logits. fp32 log-probabilities exist for ``chunk`` rows at a time: each chunk is
    recomputed in backward (activation checkpointing), so a 151k vocabulary over thousands of
    completion tokens costs one chunk of fp32, not tens of GB."""
    from torch.utils.checkpoint import checkpoint

    total = logits.new_zeros(2, dtype=torch.float32)
    for i in range(0, logits.shape[0], chunk):
        part = (logits[i:i + chunk], ref[i:i + chunk], targets[i:i + chunk])
        total = total + (checkpoint(_chunk_terms, *part, use_reentrant=False) if logits.requires_grad
                         else _chunk_terms(*part))
    return total[0], total[1]


CHECKPOINT_PARAMS = 1_000_000_000  # gradient checkpointing's "auto" turns on above this many parameters on CPU


def train_dtype(dtype: str, device: str) -> torch.dtype:
    """The base weights' dtype for training (``FinetuneConfig.dtype``); bfloat16 also turns on
    the Trainer's bf16 autocast. LoRA weights stay float32 either way (PEFT's default)."""
    return resolve_dtype(dtype, device)


def device_kind(device: str = "auto") -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def free_memory() -> None:
    """Returns freed tensors' memory to the device: after training, a vLLM engine that starts
    next checks free GPU memory against ``gpu_memory_utilization``; ``del`` alone leaves it
    in PyTorch's cache."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def train_lora(model: str, examples: list[Example], out_dir: str | Path, cfg: FinetuneConfig, *,
               seed: int = 0, device: str = "auto") -> dict[str, Any]:
    """Trains a fresh LoRA adapter on ``model`` (embedded alias, HF id or folder) and saves
    it to ``out_dir``; returns the trainer config and training metrics."""
    if not examples:
        raise EvoError("no training examples: the archive holds no usable elites yet")
    try:
        from datasets import Dataset
        from peft import LoraConfig
        from trl import SFTConfig
    except ImportError as exc:
        raise EvoError(f"fine-tuning needs the train extra (pip install 'evo[train]'): {exc}") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = device_kind(device)
    cuda = dev.startswith("cuda")  # "cuda:1" too: bf16 and checkpointing there as on "cuda"
    bf16 = train_dtype(cfg.dtype, dev) == torch.bfloat16
    path = resolve_model_path(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if bf16 else torch.float32)
    except (OSError, ValueError) as exc:
        raise EvoError(f"cannot load model '{model}' for fine-tuning: {str(exc).splitlines()[0]}") from None
    checkpointing = cfg.gradient_checkpointing
    if checkpointing is None:
        checkpointing = cuda or sum(p.numel() for p in base.parameters()) > CHECKPOINT_PARAMS
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    trainer_cfg = {
        "per_device_train_batch_size": cfg.batch_size, "gradient_accumulation_steps": cfg.grad_accum,
        "num_train_epochs": cfg.epochs, "max_steps": cfg.max_steps, "learning_rate": cfg.lr,
        "max_length": cfg.max_length, "lr_scheduler_type": "linear", "seed": seed, "data_seed": seed,
        "bf16": bf16, "gradient_checkpointing": checkpointing, "completion_only_loss": True, "packing": False,
    }
    # No shuffle_dataset (TRL >= 0.26 only): run_round permutes the mix with a seeded RNG and
    # the Trainer's sampler shuffles every epoch (data_seed).
    data = Dataset.from_list(tokenized_apart(examples, tokenizer) if cfg.tokenize_apart else
                             [{"prompt": e.prompt, "completion": e.completion} for e in examples])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="evo-sft-", dir=out_dir.parent) as scratch:
        args = SFTConfig(output_dir=scratch, logging_steps=1, save_strategy="no", report_to="none",
                         use_cpu=dev == "cpu", disable_tqdm=True, dataloader_pin_memory=False,
                         dataset_num_proc=None, **trainer_cfg,
                         gradient_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None)
        if cuda and dev != "cuda":
            torch.cuda.set_device(dev)  # the Trainer places the model on the current device
        cls = _kl_trainer_class()
        trainer = cls(model=base, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora)
        trainer.kl_coef, trainer.kl_log, trainer.sft_log = cfg.kl_coef, [], []
        t = time.time()
        result = trainer.train()
        train_s = time.time() - t
        trainer.model.save_pretrained(out_dir)
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = {
        "train_s": train_s, "steps": int(result.global_step), "train_loss": float(result.training_loss),
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "examples_per_s": len(examples) * max(cfg.epochs, 1) / train_s if cfg.max_steps <= 0 and train_s
        else result.global_step * cfg.batch_size * cfg.grad_accum / train_s if train_s else None,
        "device": dev,
    }
    if trainer.kl_log:
        metrics["kl_first"], metrics["kl_last"] = trainer.kl_log[0], trainer.kl_log[-1]
        metrics["sft_last"] = trainer.sft_log[-1]
    del trainer, base, result
    free_memory()
    return {"trainer": {**trainer_cfg, "lora": {"r": cfg.lora_r, "alpha": cfg.lora_alpha,
                                                "dropout": cfg.lora_dropout, "target_modules": "all-linear"},
                        "kl_coef": cfg.kl_coef, "init": "base"},
            "metrics": metrics}


def tokenized_apart(examples: list[Example], tokenizer: Any) -> list[dict[str, list[int]]]:
    """Each example as the prompt's tokens, tokenized alone as the engine tokenizes a prompt at
    run time, then the completion's, tokenized alone, and EOS; ``completion_mask`` marks the
    completion. TRL's own prompt-completion path tokenizes the two as one string, and where a
    token merges across the boundary (Qwen's ``(s`` of ``def f(`` + ``s: str``) it trains on a
    prompt that ends differently from the one the model is given."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    rows = []
    for e in examples:
        prompt = tokenizer(e.prompt)["input_ids"]
        completion = tokenizer(e.completion, add_special_tokens=False)["input_ids"] + eos
        rows.append({"input_ids": prompt + completion, "completion_mask": [0] * len(prompt) + [1] * len(completion)})
    return rows


def token_counter(model: str):
    """Counts tokens with the model's tokenizer (to keep examples within ``max_length``)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model_path(model))
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"]) + 1

"""experiments/lmsi_math.py end to end with a scripted generator and a stub trainer: the steps,
the kept chains, the measures, and a rerun that samples and trains nothing again."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

import lmsi_math  # noqa: E402

import evo.finetune.train  # noqa: E402
from domains.math_sc.exact import is_correct  # noqa: E402
from domains.math_sc.wordgen import normalise, problems  # noqa: E402
from evo.llm import ScriptedStandInLLM  # noqa: E402

BY_QUESTION = {x["question"]: x for split in ("train", "test") for x in problems(split)}


def respond(prompt: str, j: int) -> str:
    """Two of three samples give the worked solution, the third a wrong bare answer."""
    item = BY_QUESTION[prompt.rsplit("Question: ", 1)[1].split("\nAnswer:")[0]]
    return f" {item['solution']}" if j < 2 else f" The answer is {int(item['answer']) + 1}."


def test_lmsi_steps_with_stand_ins(tmp_path, monkeypatch):
    llms, trained = [], []

    def load(backend, model, adapter=None, **kw):
        llms.append(ScriptedStandInLLM(respond))
        return llms[-1]

    def train(model, examples, out, cfg, seed=0, device="auto"):
        trained.append(examples)
        Path(out).mkdir(parents=True)
        return {"trainer": {"kl_coef": cfg.kl_coef}, "metrics": {"first_loss": 1.0, "last_loss": 0.5, "train_s": 1.0}}

    monkeypatch.setattr(lmsi_math, "load_generator", load)
    monkeypatch.setattr(evo.finetune.train, "train_lora", train)
    sizes = {"train_questions": 6, "test": 5, "samples": 3, "test_samples": 3, "fallback": False, "chunk": 4}
    exp = lmsi_math.LMSI("tiny", tmp_path / "work", tmp_path, overrides=sizes)
    assert exp.steps.run(exp.plan())
    res = json.loads((tmp_path / "lmsi_math_tiny.json").read_text())
    s = res["steps"]
    assert s["data"]["overlaps"] == {"train_test": 0, "train_seeds": 0, "test_seeds": 0, "shared_instances": 0}
    assert s["threshold"]["threshold"] == 2 / 3  # every label right: the higher of the tied shares
    assert s["train"]["chains_kept"] == 6 and s["train"]["label_precision"] == 1.0  # one distinct chain each
    gold = {normalise(q): x["answer"] for q, x in BY_QUESTION.items()}
    assert all(is_correct(e.completion, gold[e.key]) and e.completion.endswith(".\n\n") for e in trained[0])
    assert all(e.prompt.endswith("\nAnswer:") for e in trained[0])
    for step in ("eval:base", "eval:tuned"):
        assert s[step]["greedy"]["acc"] == 1.0  # temperature 0 is the first sample here
        assert abs(s[step]["sampled"]["pass@1"] - 2 / 3) < 1e-9
        assert s[step]["self_consistency"]["acc"] == 1.0
    md = (tmp_path / "lmsi_math_tiny.md").read_text()
    assert "Paired: tuned - base" in md and "| base | 1.000 [1.000, 1.000]" in md
    calls = sum(llm.calls for llm in llms)
    again = lmsi_math.LMSI("tiny", tmp_path / "work", tmp_path, overrides=sizes)
    assert again.steps.run(again.plan())
    assert sum(llm.calls for llm in llms) == calls and len(trained) == 1

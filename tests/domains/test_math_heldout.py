"""The math domain's labelled held-out set: templated problems with computed answers, splits that
share no instance and no seed, and an exact-answer checker a lenient or gaming model cannot pass."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from domains.math_sc import MathDomain
from domains.math_sc.exact import answer_key, exact_value, is_correct
from domains.math_sc.steps import last_result, wrong_step
from domains.math_sc.wordgen import SPLIT_SIZES, TEMPLATES, normalise, problems
from evo.errors import EvoError
from evo.heldout import evaluate
from evo.llm import ScriptedStandInLLM

ADVERSARIAL = [  # (completion, gold, correct?)
    ("3 * 12 = 36. 36 - 7 = 29. The answer is 29.", "29", True),
    ("The answer is 42 or 43.", "42", False),
    ("The answer is 42 or 43.", "43", False),
    ("The answer is 42... actually 41", "42", False),
    ("The answer is 42... actually 41", "41", False),
    ("The answer is 42. The answer is 41.", "41", False),
    ("The answer is 42. So the answer is 42.", "42", True),
    ("The answer is 42.0.", "42", True),
    ("The answer is 4 2.", "42", False),
    ("The answer is 42 apples.", "42", True),
    ("The answer is $42.", "42", True),
    ("The answer is 1,200 grams.", "1200", True),
    ("The answer is 41.9999999.", "42", False),  # the vote's normaliser would round this to 42
    ("The answer is 42.0000001.", "42", False),
    ("The answer is 123456789012345678901234567890.", "123456789012345678901234567890", False),
    ("The answer is 1e5.", "100000", False),
    ("The answer is 5k.", "5000", False),
    ("The answer is -42.", "42", False),
    ("The answer is 84/2.", "42", True),
    ("The answer is \\boxed{42}.", "42", True),
    ("Answer: forty-two", "42", True),
    ("36 - 7 = 29", "29", False),  # no statement: no fallback to the last number
    ("29", "29", False),
    ("The answer is 29. Because 36 - 7 = 29.", "29", True),  # a restatement after it is fine
    ("The answer is 29. Next 3 + 4 = 7.", "29", False),  # a different number after it is not
    ("", "0", False),
    ("The answer is.", "0", False),
]


@pytest.mark.parametrize("text,gold,ok", ADVERSARIAL)
def test_checker_adversarial(text, gold, ok):
    assert is_correct(text, gold) is ok


def test_exact_values():
    assert exact_value("The answer is 3/4.") == Fraction(3, 4)
    assert answer_key("The answer is 42.0") == "42"
    assert answer_key("The answer is 42 or 43") is None


def _numbers(q: str) -> list[str]:
    return re.findall(r"\d+", q)


def test_an_echoing_model_scores_nothing():
    """A model that repeats every number of the question, in any of the ways a lenient reader
    would credit, gets no problem right."""
    for it in problems("test", 300):
        nums = _numbers(it["question"])
        for text in (" ".join(nums), "The answer is " + " ".join(nums) + ".",
                     " ".join(f"The answer is {n}." for n in nums), f"The answer is {' or '.join(nums)}."):
            assert not is_correct(text, it["answer"]), (text, it["answer"])


def test_splits_are_disjoint_deterministic_and_right():
    train, test = problems("train"), problems("test")
    assert (len(train), len(test)) == (SPLIT_SIZES["train"], SPLIT_SIZES["test"])
    assert not {normalise(x["question"]) for x in train} & {normalise(x["question"]) for x in test}
    assert not {x["key"] for x in train} & {x["key"] for x in test}
    seeds = {normalise(s["question"]) for s in MathDomain().seeds()}
    assert not seeds & {normalise(x["question"]) for x in train + test}
    assert len({x["id"] for x in test}) == len(test)
    assert problems("test", 20, seed=3) == problems("test", 20, seed=3)
    assert problems("test", 20, seed=3) != problems("test", 20, seed=4)  # the seed orders
    for split in (train, test):
        assert {x["template"] for x in split} == set(TEMPLATES)
    for x in train[:400] + test[:400]:
        assert 2 <= x["steps"] <= 4
        assert wrong_step(x["solution"]) is None, x
        assert last_result(x["solution"]) == int(x["answer"]) > 0
        assert is_correct(x["solution"], x["answer"])  # the worked solution passes its own checker


def test_benchmark_and_evaluate():
    dom = MathDomain()
    bench = dom.benchmark("test", 6, 0, "completion")
    assert len(bench.ids) == 6 and all(p.endswith("\nAnswer:") for p in bench.prompts)
    assert bench.stop == dom.stop
    items = {x["question"]: x["answer"] for x in problems("test")}

    def oracle(prompt: str, j: int) -> str:
        q = prompt.rsplit("Question: ", 1)[1].split("\nAnswer:")[0]
        return f" Worked out. The answer is {items[q]}.\n\nQuestion: more"

    r = evaluate(ScriptedStandInLLM(oracle), bench, None, n=2, ks=[1])
    assert r["pass@1"] == 1.0
    echo = ScriptedStandInLLM(lambda p, j: " ".join(_numbers(p.rsplit("Question: ", 1)[1])))
    assert evaluate(echo, bench, None, n=2, ks=[1])["pass@1"] == 0.0
    chat = dom.benchmark("test", 2, 0, "chat")
    assert chat.prompts[0][0]["role"] == "user" and "The answer is N" in chat.prompts[0][0]["content"]
    with pytest.raises(EvoError, match="unknown split"):
        dom.benchmark("dev", 2)
    with pytest.raises(EvoError, match="prompt style"):
        dom.benchmark("test", 2, 0, "chat_free")


def test_an_eval_record_says_where_and_how_it_ran(monkeypatch, tmp_path):
    """run_eval's JSONL row carries the backend, the date and the CPU (model, cores, speed flags),
    so a number read from it later can be placed next to the machine it came from."""
    import json

    import evo.llm
    from evo.heldout import run_eval
    from evo.llm.hardware import machine_facts

    monkeypatch.setattr(evo.llm, "load_generator", lambda *a, **k: ScriptedStandInLLM(lambda p, j: " The answer is 0."))
    out = tmp_path / "eval.jsonl"
    run_eval("stand-in", domain="math", split="train", limit=2, n=1, out=out, backend="transformers")
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["backend"] == "transformers" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date"])
    assert row["cpu"] == machine_facts()["cpu"] and row["cores"] >= 1 and isinstance(row["cpu_flags"], list)
    assert row["n_puzzles"] == 2 and row["pass@1"] == 0.0

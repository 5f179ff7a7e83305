"""The math (self-consistency) domain: number normalisation, parser and verifier on
good, bad and hostile inputs, majority voting and fitness, and short campaigns."""

import pytest

from domains.math_sc import (
    MathDomain,
    dropped_scale,
    final_answer,
    majority,
    normalise_number,
    parse_problem,
    wrong_step,
)
from domains.math_sc.leak import leaks_answer
from domains.math_sc.numerals import fold, spell_out
from evo.campaign import Campaign
from evo.config import CampaignConfig, load_config
from evo.domain import EvalContext, ParseError, get_domain
from evo.llm import ScriptedStandInLLM

GOOD = ("Question: A box holds 6 eggs. How many eggs are in 7 boxes?\n"
        "Answer: 7 * 6 = 42 eggs. The answer is 42.\n\nQuestion: next one")


@pytest.mark.parametrize("raw, want", [
    ("42", "42"), ("1,200", "1200"), ("$3.50", "3.5"), ("3/4", "0.75"), ("-7", "-7"), ("6.0", "6"),
    ("0.333333333", "0.333333"), ("1e999", None), ("nan", None), ("inf", None), ("1/0", None),
    ("", None), ("abc", None), ("9" * 50, None), ("12.", "12"),
])
def test_normalise_number(raw, want):
    assert normalise_number(raw) == want


def test_final_answer():
    assert final_answer("so 3 + 4 = 7. The answer is 7.") == "7"
    assert final_answer("The answer is $1,250.") == "1250"
    assert final_answer("I think 12 then 15") is None
    assert final_answer("I think 12 then 15", fallback_last_number=True) == "15"
    assert final_answer("The answer is 3. No wait, the answer is 4.") == "4"


def test_parse_good():
    it = parse_problem(MathDomain.open_prefix + GOOD.split("Question:", 1)[1])
    assert it == {"question": "A box holds 6 eggs. How many eggs are in 7 boxes?",
                  "solution": "7 * 6 = 42 eggs. The answer is 42.", "answer": "42"}
    assert parse_problem(MathDomain().render(it)) == it


@pytest.mark.parametrize("text, reason", [
    ("Question: How many eggs are in 7 boxes of 6?", "no 'Answer:'"),
    ("Question: Why?\nAnswer: The answer is 3.", "too short"),
    ("Question: How many apples does Tom have left now?\nAnswer: The answer is 3.", "no quantities"),
    ("Question: Tom has 3 apples and eats 1. How many?\nAnswer: He has some left.", "no numeric final answer"),
    ("Question: Tom has 3 apples and eats 1. How many?\nAnswer: The answer is 1e999.", "no numeric final answer"),
    ("Question: " + "Tom has 3 apples. " * 60 + "\nAnswer: The answer is 3.", "longer than"),
])
def test_parse_bad(text, reason):
    with pytest.raises(ParseError, match=reason):
        parse_problem(text)


def test_wrong_step():
    assert wrong_step("3 * 12 = 36. 36 - 7 = 29.") is None
    assert wrong_step("3 * 12 = 35.") == "3 * 12 = 35"
    assert wrong_step("2 * (9 + 4) = 2 * 13 = 27") == "2 * 13 = 27"
    assert wrong_step("1,000 + 5 = 1,005") is None
    assert wrong_step("10 / 0 = 3 and __import__('os') = 1") is None  # not evaluable, not a crash
    assert wrong_step("9 ** 9 ** 9 = 1") is None  # powers are not evaluated


def test_verify_good_bad_hostile():
    d = MathDomain()
    good = parse_problem(GOOD)
    bad_arith = parse_problem("Question: A box holds 6 eggs. How many in 7 boxes?\n"
                              "Answer: 7 * 6 = 41. The answer is 41.")
    trivial = parse_problem("Question: Sam has 5 cats and no dogs. How many cats?\nAnswer: The answer is 5.")
    hostile = {**good, "answer": "inf"}
    v = d.verify([good, bad_arith, trivial, hostile], sandbox=None)
    assert [x.verdict for x in v] == ["valid", "invalid", "trivial", "invalid"]
    assert "7 * 6 = 41" in v[1].reason


def test_majority():
    assert majority(["3", "4", "3", None]) == ("3", 2)
    assert majority(["4", "3"]) == ("4", 1)  # tie: the first seen
    assert majority([None, None]) == (None, 0)


def _answers(*answers):
    def respond(prompt, j):
        return f" some steps. The answer is {answers[j % len(answers)]}."
    return respond


@pytest.mark.parametrize("answers, label, share, fitness", [
    (("5", "5", "5", "5"), "5", 1.0, 0.5),     # reliable but easy
    (("5", "5", "6", "7"), "5", 0.5, 1.0),     # reliable and as hard as allowed
    (("5", "6", "7", "8"), "5", 0.25, 0.25),   # unreliable label: below every reliable item
    (("x", "x", "x", "x"), None, 0.0, 0.0),    # no parsable answer
])
def test_score_self_consistency(answers, label, share, fitness):
    d = MathDomain(samples=4, threshold=0.5)
    item = parse_problem(GOOD)
    [s] = d.score([item], EvalContext(ScriptedStandInLLM(_answers(*answers)), sandbox=None))
    assert s.parts["label"] == label and s.parts["confidence"] == share
    assert s.fitness == pytest.approx(fitness)
    assert s.parts["author_agrees"] == (label == "42")


def test_registered_as_math_and_config_loads():
    cfg = load_config("experiments/configs/math_cpu.yaml")
    assert isinstance(get_domain(cfg.domain, **cfg.domain_options), MathDomain)
    with pytest.raises(Exception, match="threshold"):
        get_domain("math", threshold=1.5)


def test_seeds_are_valid():
    d = MathDomain()
    seeds = d.seeds()
    assert len(seeds) >= 12 and all(v.valid for v in d.verify(seeds, None))


def scripted(prompt: str, j: int) -> str:
    if prompt.endswith("Question:"):  # write a problem
        n = len(prompt) % 17 + 2 + 3 * j
        return f" A crate holds {n} apples. How many apples are in 3 crates?\nAnswer: 3 * {n} = {3 * n}. The answer is {3 * n}."
    return f" The answer is {j % 2}."  # solve attempts: two camps


def test_scripted_campaign(tmp_path):
    cfg = CampaignConfig(domain="math", iterations=2, prompts_per_iteration=3, samples_per_prompt=2, max_seeds=4,
                         domain_options={"samples": 2}, archive={"dims": [5, 5]})
    c = Campaign(cfg, tmp_path / "run", generator=ScriptedStandInLLM(scripted))
    try:
        s = c.run()
        valid = list(c.store.candidates("verdict = 'valid' AND is_seed = 0"))
    finally:
        c.close()
    assert s["candidates"] == 12 and s["valid"] >= 3
    assert all(v.fitness_parts["label"] == "0" and v.fitness_parts["confidence"] == 0.5 for v in valid)


@pytest.mark.slow
def test_real_model_campaign(tmp_path):
    cfg = load_config("experiments/configs/math_cpu.yaml", {
        "iterations": 1, "prompts_per_iteration": 3, "max_seeds": 4, "samples_per_prompt": 1,
        "generator": {"max_new_tokens": 64}, "domain_options": {"samples": 2, "solve_max_tokens": 48}})
    c = Campaign(cfg, tmp_path / "run")
    try:
        s = c.run()
        seeds = list(c.store.candidates("is_seed = 1"))
        cands = list(c.store.candidates("is_seed = 0"))
    finally:
        c.close()
    assert s["candidates"] == 3 and all(x.completion for x in cands)
    assert all(x.reason for x in cands if x.verdict != "valid")
    assert len(seeds) == 4 and all(x.verdict == "valid" for x in seeds)
    for x in seeds:  # every valid item got a self-consistency label
        assert x.fitness_parts["samples"] == 2 and 0 <= x.fitness_parts["confidence"] <= 1


def test_solve_messages_carry_the_question_and_the_worked_solution():
    domain = MathDomain()
    rows = [domain.to_solve_messages(s) for s in domain.seeds()[:3]]
    for seed, (user, assistant) in zip(domain.seeds()[:3], rows):
        assert user["role"] == "user" and seed["question"] in user["content"]
        assert assistant["role"] == "assistant" and assistant["content"] == seed["solution"].strip()
    assert len({user["content"] for user, _ in rows}) == 3  # no shared generic prompt


@pytest.mark.parametrize("text, want", [
    ("①②", "12"), ("❶❷", "12"), ("➀➁", "12"), ("１２", "12"), ("١٢", "12"), ("२४", "24"), ("𝟏𝟐", "12"),
    ("¹²", "12"), ("5²", "5^2"), ("3½", "3.5"), ("1\u200b2", "12"), ("？＝﹖؟", "?=??"), ("−5 –5 －5", "-5 -5 -5"),
    ("7×6÷2", "7*6/2"), ("ａｎｓｗｅｒ", "answer"),
])
def test_fold_reads_every_digit_and_punctuation_form(text, want):
    assert fold(text).strip() == want


@pytest.mark.parametrize("text, want", [
    ("twelve", "12"), ("one hundred and twenty", "120"), ("twenty-one", "21"), ("a dozen", "12"),
    ("half a dozen", "6"), ("two dozen", "24"), ("negative five", "-5"), ("minus five", "-5"),
    ("12 minus 5", "12 - 5"), ("three quarters", "3/4"), ("two and a half", "2.5"), ("2.5 million", "2500000"),
    ("5 thousand", "5000"), ("five percent", "5%"), ("two point five", "2.5"), ("seven hundred thousand and five", "700005"),
    ("one two", "1 2"), ("no one", "no one"), ("a third of 24", "1/3 of 24"),
])
def test_spell_out_number_words(text, want):
    assert spell_out(text) == want


@pytest.mark.parametrize("solution, bad", [
    ("3 times 12 equals 35.", "3 * 12 = 35"), ("3 x 12 = 35", "3 * 12 = 35"), ("3 × 12 ＝ 35", "3 * 12 = 35"),
    ("12 ÷ 3 = 5", "12 / 3 = 5"), ("36 minus 7 is 28", "36 - 7 = 28"), ("12 over 4 is 4", "12 / 4 = 4"),
    ("7 rows * 14 trees = 99 trees", "7 * 14 = 99"), ("2^3 = 9", "2^3 = 9"), ("10 / 3 ≈ 4", "10 / 3 ≈ 4"),
    ("25% of 20 is 6", "25% * 20 = 6"), ("one third of 24 is 9", "1/3 * 24 = 9"),
    ("3 boxes with 12 pencils is 3 * 12 = 36 pencils.", None), ("x + 3 = 10, so x = 7", None),
    ("10 / 3 = 3.3", None), ("10 / 3 is about 3", None), ("84 / 12 = 7 dozen", None), ("12 pencils = 3 * 12", None),
])
def test_wrong_step_reads_words_and_symbols(solution, bad):
    assert wrong_step(solution) == bad


@pytest.mark.parametrize("solution, answer, dropped", [
    ("3 - 8 = -5. The answer is 5.", "5", True), ("2 * 2500 = 5000. The answer is 5.", "5", True),
    ("5 * 500000 = 2500000. The answer is 2.5.", "2.5", True), ("2 / 8 = 0.25. The answer is 25.", "25", True),
    ("2 / 8 = 0.25, which is 25%. The answer is 25.", "25", False), ("3 - 8 = -5. The answer is -5.", "-5", False),
    ("84 / 12 = 7 dozen. The answer is 7.", "7", False),
])
def test_dropped_scale(solution, answer, dropped):
    assert (dropped_scale(solution, answer) is not None) == dropped


def test_leak_reads_what_the_solution_computes_with():
    q = "Wendi's 20 chickens eat 3 cups each a day. She gave 15 and 25 cups. How many cups in the last meal?"
    assert leaks_answer(q, "20", "20 * 3 = 60. 60 - 15 - 25 = 20. The answer is 20.") is None
    assert leaks_answer(q, "20", "15 + 5 = 20. The answer is 20.") == "the question contains its own answer"
    assert leaks_answer(q, "20") == "the question contains its own answer"  # without a solution: strict

"""experiments/judge_questions.py without a model: the question set is chosen by the rule the
script states (filler does not raise a question on average, both polarities kept), and
separation counts a seed's broken variants below it, ties half."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

from judge_questions import attack_texts, candidates, choose, separation, set_scores  # noqa: E402


def test_choose_keeps_questions_filler_does_not_raise_and_both_polarities():
    assert choose([0.02, -0.01, 0.0, -0.03], [True, True, False, False]) == [1, 2, 3]
    # only positive questions survive: the negated one filler raises least joins them, so a text
    # priming "Yes" still loses somewhere
    assert choose([-0.01, -0.02, 0.05, 0.03, 0.04], [True, True, False, False, False]) == [0, 1, 3]
    assert choose([0.01, 0.02], [True, False]) == []


def test_separation_and_set_scores():
    seeds = np.array([0.6, 0.5])
    broken = np.array([[0.4, 0.6, 0.7], [0.1, 0.2, 0.3]])
    assert separation(seeds, broken).tolist() == [0.5, 1.0]
    per_q = np.array([[0.2, 0.4, 0.9], [0.6, 0.8, 0.0]])
    assert np.allclose(set_scores(per_q, [0, 1]), [0.3, 0.7])


@pytest.mark.parametrize("kind", ["story", "instruction"])
def test_candidates_start_with_the_kinds_built_in_questions_and_fence_the_text(kind):
    from domains.text_feedback.domain import JUDGE_PROMPTS, NEGATED_PROMPTS, check_judge_prompt

    asked = candidates(kind)
    shipped = [p for p, _ in asked[:4]]
    assert shipped == JUDGE_PROMPTS[kind] + NEGATED_PROMPTS[kind]
    assert len({p for p, _ in asked}) == len(asked)
    for p, _ in asked:
        check_judge_prompt(p)


def test_the_attacks_are_filler_inside_the_sentence_cap():
    from domains.text_feedback import TextFeedbackDomain

    d = TextFeedbackDomain()
    two_sentences = "The cat waited by the door. Nobody came that night."
    texts = attack_texts(two_sentences)
    assert all(t.startswith(two_sentences.rstrip(".")) and len(t) > len(two_sentences) for t in texts)
    assert all(v.valid for v in d.verify([{"text": t} for t in texts], None))


def test_instruction_attacks_fit_the_instruction_cap():
    from domains.text_feedback import TextFeedbackDomain

    d = TextFeedbackDomain(kind="instruction")
    one = "Water the plant once a week and keep it out of direct sun."
    texts = attack_texts(one, "instruction")
    assert all(v.valid for v in d.verify([{"text": t} for t in texts], None))

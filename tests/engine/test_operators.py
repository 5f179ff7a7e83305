"""Operators build the prompts the generator continues; ``continuation`` keeps a verbatim stem
of its first parent, and the campaign parses the child as that stem plus the completion."""

import numpy as np
import pytest

from domains.p3 import P3Domain
from domains.text_feedback import TextFeedbackDomain
from evo.campaign import Campaign
from evo.config import CampaignConfig
from evo.llm import ScriptedStandInLLM
from evo.operators import build_prompts, continuation, cut_stem
from tests.conftest import scripted_p3

STORY = "Story: The old dog waited by the gate every evening. One day the boy came home.\n\n"


@pytest.mark.parametrize("seed", range(30))
def test_the_stem_is_a_word_aligned_prefix_of_the_body_between_30_and_70_percent(seed):
    body = STORY[len("Story:"):].rstrip()
    stem = cut_stem(STORY, "Story:", np.random.default_rng(seed))
    assert stem and body.startswith(stem)
    assert body[len(stem)].isspace() and not stem[-1].isspace()  # the model starts a new word
    assert 0.2 * len(body) <= len(stem) <= 0.7 * len(body)


@pytest.mark.parametrize("rendered", [
    "Question: What is 2+2?",  # does not start with the open prefix: nothing to keep
    "Story: Hello.\n\n",  # one word: no cut leaves a non-empty stem
    "Story:",
    "Story:   \n\n  ",
])
def test_no_stem_where_there_is_nothing_to_cut(rendered):
    assert all(cut_stem(rendered, "Story:", np.random.default_rng(s)) == "" for s in range(10))


def test_the_continuation_prompt_ends_with_the_first_parents_stem_after_the_other_parents():
    domain = TextFeedbackDomain()
    parents = [(7, {"text": "A cat sat on the warm roof and watched the rain fall."}),
               (9, {"text": "The ship left port at dawn."})]
    prompt = continuation(domain, parents, np.random.default_rng(0))
    assert prompt.operator == "continuation" and prompt.parents == [7, 9]
    assert prompt.stem and parents[0][1]["text"].startswith(prompt.stem.strip())
    assert prompt.text.endswith(domain.open_prefix + prompt.stem)
    assert domain.render(parents[1][1]) in prompt.text and domain.render(parents[0][1]) not in prompt.text


def test_build_prompts_draws_only_the_weighted_operators():
    domain = TextFeedbackDomain()
    seeds = [(i, s) for i, s in enumerate(domain.seeds()[:5])]
    prompts = build_prompts(domain, 40, {"continuation": 1.0, "mutation": 0.0}, 3,
                            lambda n, rng: [], seeds, np.random.default_rng(0))
    assert {p.operator for p in prompts} == {"continuation"} and all(p.stem for p in prompts)


def test_the_campaign_parses_a_continuation_child_as_stem_plus_completion(tmp_path):
    """The stand-in finishes each stem with the rest of the seed it came from, so every child
    is that seed again: a duplicate. Parsing the completion without its stem would instead give
    parse errors or other puzzles."""
    domain = P3Domain()
    renders = [domain.render(s) for s in domain.seeds()]

    def finish_the_stem(prompt: str, j: int) -> str:
        if prompt.rstrip().endswith("def g("):
            return scripted_p3(prompt, j)
        head = domain.open_prefix + prompt.rsplit(domain.open_prefix, 1)[1]
        return next(r[len(head):] for r in renders if r.startswith(head))

    cfg = CampaignConfig(name="c", iterations=1, prompts_per_iteration=8, samples_per_prompt=1, max_seeds=10,
                         domain_options={"solve_attempts": 1}, archive={"dims": [5, 5]},
                         operators={"weights": {"continuation": 1.0}})
    campaign = Campaign(cfg, tmp_path / "run", generator=ScriptedStandInLLM(finish_the_stem))
    try:
        campaign.run()
        children = list(campaign.store.candidates("is_seed = 0"))
        parents = campaign.store.get(sorted({c.parents[0] for c in children}))
    finally:
        campaign.close()
    assert len(children) == 8 and all(c.operator == "continuation" for c in children)
    assert all(c.verdict == "duplicate" for c in children), [(c.verdict, c.reason) for c in children]
    assert all(domain.key(c.item) == domain.key(parents[c.parents[0]].item) for c in children)

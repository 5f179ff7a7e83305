"""Shared fixtures: a small recorded P3 campaign made with a scripted stand-in generator.

The stand-in writes variants of seed puzzles with new constants, so the campaign has
valid, invalid and duplicate candidates without loading the real model (tests about
plumbing only; tests/engine/test_campaign_real.py runs the real model).
"""

from __future__ import annotations

import random
import re
import zlib
from pathlib import Path

import pytest

from evo.campaign import Campaign
from evo.config import CampaignConfig
from evo.llm import ScriptedStandInLLM

VARIANTS = [
    "n: int, a=={a}):\n    return n * {b} == a\n\ndef g(a={a}):\n    return a // {b}\n",
    "s: str, k={b}):\n    return s.count('x') == k + {a} and len(s) == k + {a}\n\ndef g(k={b}):\n    return 'x' * (k + {a})\n",
    "li: List[int], t={a}):\n    return len(li) == {b} and sum(li) == t * {b}\n\ndef g(t={a}):\n    return [t] * {b}\n",
    "x: float, c={a}.5):\n    return abs(x * x - c) < 1e-6 and x > {b}\n\ndef g(c={a}.5):\n    return c ** 0.5\n",
    "s: str):\n    return s[::-1] == 'word{a}' + 'x' * {b}\n\ndef g():\n    return ('word{a}' + 'x' * {b})[::-1]\n",
    "n: int):\n    return n == n + 1\n\ndef g():\n    return 1\n",  # never true: invalid
    "garbage without a g",  # parse error
]


def scripted_p3(prompt: str, j: int) -> str:
    """Puzzle prompts get a variant; solve prompts get a wrong answer (so fitness is high)."""
    rng = random.Random(zlib.crc32(f"{j}:{prompt}".encode()))  # the same in every process
    if prompt.rstrip().endswith("def g("):
        return "):\n    return None\n"
    text = rng.choice(VARIANTS).format(a=rng.randint(11, 500), b=rng.randint(2, 9))
    return re.sub(r"==(\d)", r"=\1", text)


@pytest.fixture(scope="session")
def small_campaign(tmp_path_factory) -> Path:
    """A finished 3-iteration P3 campaign directory (scripted stand-in generator)."""
    out = tmp_path_factory.mktemp("campaign") / "run"
    config = CampaignConfig(name="fixture", iterations=3, prompts_per_iteration=8, samples_per_prompt=2,
                            max_seeds=12, domain_options={"solve_attempts": 2},
                            archive={"dims": [10, 10]})
    campaign = Campaign(config, out, generator=ScriptedStandInLLM(scripted_p3))
    try:
        campaign.run()
    finally:
        campaign.close()
    return out


def scripted_p3_slow(prompt: str, j: int) -> str:
    """:func:`scripted_p3`, slowed down so a test can interrupt a batch in flight."""
    import time

    time.sleep(0.05)
    return scripted_p3(prompt, j)

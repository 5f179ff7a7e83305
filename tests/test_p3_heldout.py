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

"""The enumerative P3 solver and the blended fitness: graded, deterministic, and not for sale
to a puzzle written to game it (slow, stateful, crashing or exiting f)."""

import itertools

import pytest

from domains.p3 import P3Domain
from domains.p3.enumerate import _HARNESS, SearchResult, enumerate_solve, hardness, literals
from evo.domain import EvalContext
from evo.llm.scripted import ScriptedStandInLLM
from evo.sandbox import Sandbox, SandboxLimits


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxLimits(timeout_s=2.0)) as sb:
        yield sb


def puzzle(f: str, t: str) -> dict:
    return {"f": f, "ans_type": t, "g": None}


def first_values(t: str, n: int, lits=(), alphabet="ab01") -> list:
    scope: dict = {}
    exec(_HARNESS, scope)  # the harness alone, outside the sandbox: no f involved
    return list(itertools.islice(scope["_evo_values"](t, list(lits), alphabet), n))


@pytest.mark.parametrize("t", ["int", "float", "str", "List[int]", "List[bool]", "List[List[int]]", "List[str]"])
def test_enumeration_is_duplicate_free_and_well_typed(t):
    values = first_values(t, 400, lits=[3, "ab", [1, 2], [[0]], [], True])
    scope: dict = {}
    exec(_HARNESS, scope)
    assert all(scope["_evo_enum_type_ok"](v, t) for v in values)
    assert len({repr(v) for v in values}) == len(values)


def test_bool_lists_do_not_run_out_and_the_empty_list_comes_early():
    values = first_values("List[bool]", 100)
    assert len(values) == 100 and values[0] == []  # a finite element type still grows by length


def test_literals_come_first_and_their_neighbours():
    assert first_values("int", 4, lits=[37]) == [37, 36, 38, 0]
    assert literals("def f(s: str, t='xy', n=-4):\n    return s == t * 2") == ["xy", 2, -4] or \
        set(map(repr, literals("def f(s: str, t='xy', n=-4):\n    return s == t * 2"))) >= {"'xy'", "2", "-4"}


def test_hardness_is_graded_and_deterministic(sandbox):
    items = [puzzle("def f(x: int):\n    return x + 1 == 8", "int"),
             puzzle("def f(x: int):\n    return x * x == 400", "int"),
             puzzle("def f(s: str):\n    return s.count('a') == 3 and s.count('b') == 2", "str"),
             puzzle("def f(x: int):\n    return x * 3 == 144873", "int")]
    a, b = enumerate_solve(items, sandbox, budget=2000), enumerate_solve(items, sandbox, budget=2000)
    assert [r.steps for r in a] == [r.steps for r in b]
    h = [hardness(r, 2000) for r in a]
    assert 0.0 < h[0] < h[1] < h[2] < h[3] == 1.0
    assert a[3].stop == "budget"


def test_a_literal_answer_is_easy(sandbox):
    (r,) = enumerate_solve([puzzle("def f(x: int):\n    return x == 987654321", "int")], sandbox)
    assert r.steps == 1 and hardness(r) == 0.0


@pytest.mark.parametrize("f, t", [("def f(n: int):\n    return n == 3**40", "int"),
                                  ("def f(s: str):\n    return s == 'ab' * 9", "str"),
                                  ("def f(x: str):\n    return x == 'olleh'[::-1]", "str"),
                                  ("def f(x: str):\n    return x[::-1] == 'hello'", "str"),
                                  ("def f(ys: list):\n    return ys == [1, 2, 3, 4, 5]", "list"),
                                  ("def f(x: int):\n    return x == 4829 * 10 + 1", "int")])
def test_an_answer_spelled_out_in_f_is_found_first(sandbox, f, t):
    """Issue 30: large literals and their images bought search hardness 1.0."""
    (r,) = enumerate_solve([puzzle(f, t)], sandbox)
    assert r.steps is not None and r.steps <= 4 and hardness(r) < 0.16


@pytest.mark.parametrize("t", ["dict", "Dict[str,int]", "list", "List[dict]"])
def test_a_type_the_search_cannot_enumerate_earns_no_hardness(sandbox, t):
    (r,) = enumerate_solve([puzzle(f"def f(x: {t}):\n    return len(x) == 7", t)], sandbox)
    assert r.steps is None and r.stop == "unenumerable" and hardness(r) == 0.0


def test_constant_expressions_are_evaluated_safely():
    assert literals("def f(x: int):\n    return x == 10**10**10") == [10, -10, 10**10, -10**10]
    assert 12157665459056928801 in literals("def f(n: int):\n    return n == 3**40")
    assert "olleh" in literals("def f(s: str):\n    return s[::-1] == 'hello'")
    assert literals("def f(x: float):\n    return x == float('inf')") == ["inf", "fni", "fin", "INF"]  # the string, never a float inf


def test_a_slow_f_earns_credit_only_for_what_was_searched(sandbox):
    slow = puzzle("def f(x: int):\n    i = 0\n    while i < 200000:\n        i += 1\n    return x * 3 == 144873",
                  "int")
    (r,) = enumerate_solve([slow], sandbox, budget=10000)
    assert r.stop == "time" and r.tried < 1000
    assert hardness(r, 10000) < 0.8  # an honest unsolved puzzle scores 1.0


def test_a_stateful_f_that_accepts_late_earns_nothing(sandbox):
    counter = puzzle("def f(x: int, c=[0]):\n    c[0] += 1\n    return c[0] > 300", "int")
    (r,) = enumerate_solve([counter], sandbox)
    assert r.steps is None and r.stop == "answer does not re-check" and hardness(r) == 0.0


@pytest.mark.parametrize("body", ["raise SystemExit(0)", "import os\n    os._exit(0)",
                                  "print('x' * 10**6)\n    return False", "return [].pop()"])
def test_an_f_that_breaks_the_search_earns_nothing_or_is_just_wrong(sandbox, body):
    (r,) = enumerate_solve([puzzle(f"def f(x: int):\n    {body}", "int")], sandbox, budget=500)
    if body == "return [].pop()":  # an exception per call is a wrong answer per call
        assert r.stop == "budget"
    else:
        assert r.steps is None and hardness(r, 500) == 0.0


def test_an_f_that_mutates_its_argument_does_not_corrupt_later_candidates(sandbox):
    f = ("def f(li: List[List[int]]):\n    for x in li:\n        x.append(9)\n"
         "    return len(li) == 2 and li[0] == li[1] == [9, 9]")
    (r,) = enumerate_solve([puzzle(f, "List[List[int]]")], sandbox)
    assert r.steps is not None and r.answer == "[[9],[9]]"


def test_hostile_search_results_are_no_credit():
    assert hardness(SearchResult(None, stop="killed")) == 0.0
    assert hardness(SearchResult(None, stop="time", tried=-5)) == 0.0


def test_fitness_blends_generator_failure_and_search(sandbox):
    items = [puzzle("def f(x: int):\n    return x + 1 == 8", "int") | {"g": "def g():\n    return 7"},
             puzzle("def f(x: int):\n    return x * 3 == 144873", "int") | {"g": "def g():\n    return 48291"}]
    fails = ScriptedStandInLLM(lambda p, j: "):\n    return None\n")
    ctx = EvalContext(fails, sandbox)
    old = P3Domain(solve_attempts=2, search_weight=0.0).score(items, ctx)
    new = P3Domain(solve_attempts=2, search_weight=0.5, search_budget=2000).score(items, ctx)
    # AZR: no solve attempt succeeded, so the generator's part earns nothing
    assert [s.fitness for s in old] == [0.0, 0.0]
    # the search found the first: graded credit; the second nobody solved: no credit
    assert 0.0 < new[0].fitness < 0.5 and new[0].parts["search_steps"] > 1
    assert new[1].fitness == 0.0 and new[1].parts["search_stop"] == "budget"
    # a generator that solves the second once in four: difficulty, and the search's
    # "nothing found in the budget" now counts (an honest solver showed it solvable)
    once = ScriptedStandInLLM(lambda p, j: "):\n    return 48291\n" if j == 0 else "):\n    return 1\n")
    tuned = P3Domain(solve_attempts=4, search_weight=0.5, search_budget=2000).score(items, EvalContext(once, sandbox))
    assert tuned[1].parts["solved"] == 1 and tuned[1].parts["difficulty"] == 1 - 2 / 6
    assert tuned[1].fitness == 0.5 * (1 - 2 / 6) + 0.5 * 1.0


def test_search_options_are_checked():
    from evo.errors import EvoError

    with pytest.raises(EvoError, match="search_weight"):
        P3Domain(search_weight=1.5)
    with pytest.raises(EvoError, match="search_budget"):
        P3Domain(search_budget=0)

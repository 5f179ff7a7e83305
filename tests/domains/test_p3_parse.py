"""The P3 parser: well-formed completions, model garbage, and hostile text."""

import pytest

from domains.p3 import P3Domain, normalise_type, parse_puzzle
from evo.domain import ParseError

GOOD = '''def f(x: int, a=3):
    return x * a == 12

def g(a=3):
    return 12 // a

assert f(g())
'''


def test_parses_f_g_and_answer_type():
    item = parse_puzzle(GOOD)
    assert item["ans_type"] == "int"
    assert item["f"].startswith("def f(x: int, a=3):")
    assert item["g"] == "def g(a=3):\n    return 12 // a"


def test_takes_first_f_and_g_and_stops_at_fence():
    text = "def f(s: str):\n    return s == 'ab'\ndef g():\n    return 'ab'\n```\ndef g():\n    return 1"
    item = parse_puzzle(text)
    assert "'ab'" in item["g"]


def test_completion_through_open_prefix():
    dom = P3Domain()
    item = dom.parse(dom.open_prefix + "li: list[int]):\n    return sum(li) == 7\n\ndef g():\n    return [3, 4]\n")
    assert item["ans_type"] == "List[int]"


def test_truncated_body_is_trimmed_back_to_valid_code():
    text = "def f(n: int):\n    return n > 5 and n % 7 == 3\n\ndef g():\n    x = 10\n    return x\n    if (x"
    assert parse_puzzle(text)["g"] == "def g():\n    x = 10\n    return x"


def test_g_without_defaults_takes_fs_defaults():
    item = parse_puzzle("def f(x: int, a=3, b=4):\n    return x == a * b\ndef g(a: int, b):\n    return a * b")
    assert item["g"].startswith("def g(a=3, b=4):")


def test_imports_before_f_are_kept():
    item = parse_puzzle("import math\ndef f(x: float):\n    return math.isclose(x, 2.5)\ndef g():\n    return 2.5")
    assert item["f"].startswith("import math\n")


@pytest.mark.parametrize("text, reason", [
    ("", "no function f"),
    ("hello world, here is a puzzle", "no function f"),
    ("def f(x: int):\n    return x == 3\n", "no function g"),
    ("def f(x):\n    return x == 3\ndef g():\n    return 3", "no type annotation"),
    ("def f():\n    return True\ndef g():\n    return 3", "takes no answer"),
    ("def f(x: set):\n    return True\ndef g():\n    return set()", "unsupported answer type"),
    ("def f(x: Dict[List[int], int]):\n    return True\ndef g():\n    return {}", "unsupported answer type"),
    ("def f(x: int, y):\n    return x == y\ndef g():\n    return 3", "need default values"),
    ("def f(x: int):\n    return x == 3\ndef g(y):\n    return y", "callable with no arguments"),
    ("def f(x: int)\n    return x == 3\ndef g():\n    return 3", "syntax error in f"),
    ("\x00\x01 def f(x: int): ```", "no function f"),
])
def test_rejects_malformed(text, reason):
    with pytest.raises(ParseError, match=reason):
        parse_puzzle(text)


@pytest.mark.parametrize("raw, norm", [
    ("int", "int"), ("list[int]", "List[int]"), ("List[List[str]]", "List[List[str]]"),
    ("typing.List[float]", "List[float]"), ("", None), ("set", None), ("Tuple[int]", None),
    # bare containers: accepted, and checked as far as they say
    ("list", "list"), ("List", "list"), ("dict", "dict"), ("Dict", "dict"), ("List[dict]", "List[dict]"),
    ("dict[str, int]", "Dict[str,int]"), ("Dict[int, List[str]]", "Dict[int,List[str]]"),
    ("Dict[List[int], int]", None), ("Dict[int]", None), ("List[int, str]", None),
])
def test_normalise_type(raw, norm):
    assert normalise_type(raw) == norm


def test_shipped_seeds_parse_and_come_from_train_families():
    import json
    from pathlib import Path

    seeds = P3Domain().seeds()
    assert len(seeds) >= 50
    split = Path(__file__).resolve().parents[3] / "shared" / "data" / "p3" / "split.json"
    if split.exists():
        test_families = set(json.loads(split.read_text())["test"])
        assert not {s["name"].split(":")[0] for s in seeds} & test_families
    for s in seeds:
        assert parse_puzzle(s["f"] + "\n\n" + s["g"])["ans_type"] == s["ans_type"]


def test_same_f_with_another_g_is_the_same_puzzle():
    dom = P3Domain()
    a = parse_puzzle("def f(s: str):\n    return s.count('o') == 9  # nine\ndef g():\n    return 'o' * 9")
    b = parse_puzzle("def f(s: str) -> bool:\n    return s.count( 'o' )==9\ndef g():\n    return 'oo' * 4 + 'o'")
    c = parse_puzzle("def f(s: str):\n    return s.count('o') == 8\ndef g():\n    return 'o' * 8")
    assert dom.key(a) == dom.key(b) != dom.key(c)


def test_malformed_or_missing_seeds_file_is_one_clear_error(tmp_path):
    from evo.errors import EvoError

    bad = tmp_path / "seeds.jsonl"
    bad.write_text('{"f": "def f(x: int): return x == 3", "g": "def g(): return 3", "ans_type": "int"}\n{oops\n')
    with pytest.raises(EvoError, match="p3: seeds file .* line 2 is not JSON"):
        P3Domain(seeds_file=str(bad)).seeds()
    with pytest.raises(EvoError, match="p3: cannot read seeds file"):
        P3Domain(seeds_file=str(tmp_path / "missing.jsonl")).seeds()


@pytest.mark.parametrize("text, why", [
    ("def f(x: int):\n    return x == 3\n", "no function g"),
    ("def f(x: int):\n    return x == 3\ndef g(:\n    return 3", "syntax error in g"),
    ("def f(x: int):\n    return x == 3\ndef g(y):\n    return y", "callable with no arguments"),
])
def test_puzzle_with_unusable_solution_parses_for_a_solve_attempt(text, why):
    """A well-formed f whose g is missing or broken is kept (g None, with the reason):
    a fresh solve attempt may still supply a solution. Strict parsing refuses it."""
    item = parse_puzzle(text, solution_required=False)
    assert item["g"] is None and why in item["g_error"] and item["ans_type"] == "int"
    with pytest.raises(ParseError, match=why):
        parse_puzzle(text)


@pytest.mark.parametrize("text", ["def f(x):\n    return x == 3\n", "def f(x: int)\n    return 3\ndef g():\n  return 3"])
def test_broken_f_fails_even_without_requiring_a_solution(text):
    with pytest.raises(ParseError):
        parse_puzzle(text, solution_required=False)


def test_g_using_fs_parameters_gets_them_with_fs_defaults():
    item = parse_puzzle("def f(s: str, n=5, c='x'):\n    return s == c * n\ndef g():\n    return c * n")
    assert item["g"].startswith("def g(c='x', n=5):")


def test_names_g_binds_itself_are_not_taken_from_f():
    item = parse_puzzle("def f(x: int, n=3):\n    return x == n\ndef g():\n    n = 4\n    return [n for n in range(n)][-1]")
    assert item["g"].startswith("def g():")

"""The P3 verifier in the real sandbox: valid, invalid, trivial, wrong type, exceptions."""

import pytest

from domains.p3 import P3Domain, parse_puzzle
from evo.sandbox import Sandbox, SandboxLimits


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxLimits(timeout_s=2.0)) as sb:
        yield sb


def verdict(sandbox, code):
    return P3Domain().verify([parse_puzzle(code)], sandbox)[0]


@pytest.mark.parametrize("code, expected, reason", [
    ("def f(x: int, a=1073258, b=72352549):\n    return a + x == b\ndef g(a=1073258, b=72352549):\n    return b - a",
     "valid", None),
    ("def f(s: str):\n    return s.count('o') == 12 and 'oo' not in s\ndef g():\n    return 'ho' * 12",
     "valid", None),
    ("def f(li: List[int]):\n    return len(li) == 5 and sum(li) == 101\ndef g():\n    return [20, 20, 20, 20, 21]",
     "valid", None),
    # g's answer does not satisfy f
    ("def f(x: int):\n    return x * x == 1369\ndef g():\n    return 36", "invalid", "returned False"),
    # f returns a truthy non-True value: P3 requires `is True`
    ("def f(x: int):\n    return x * 0 + 7777\ndef g():\n    return 1234", "invalid", "not True"),
    # wrong type: bool is not int under P3's exact type check
    ("def f(x: int):\n    return x == 1\ndef g():\n    return True", "invalid", "wrong type"),
    ("def f(x: List[int]):\n    return len(x) == 20\ndef g():\n    return tuple(range(20))", "invalid", "wrong type"),
    ("def f(x: float):\n    return x > 1234\ndef g():\n    return 1235", "invalid", "wrong type"),
    # exceptions
    ("def f(x: int):\n    return x == undefined_name\ndef g():\n    return 3", "invalid", "NameError"),
    ("def f(x: int):\n    return 1 / (x - x) > 0\ndef g():\n    return 3", "invalid", "ZeroDivisionError"),
    # trivial: small answers satisfy f
    ("def f(x: int):\n    return x > 5\ndef g():\n    return 1000000", "trivial", "trivial answer 6"),
    ("def f(s: str):\n    return len(s) < 100\ndef g():\n    return 'hello'", "trivial", "''"),
    ("def f(li: List[int]):\n    return all(v > 3 for v in li)\ndef g():\n    return [4, 5]", "trivial", "[]"),
    # a puzzle that ignores its answer is trivial
    ("def f(x: int):\n    return True\ndef g():\n    return 987654", "trivial", "trivial"),
])
def test_verdicts(sandbox, code, expected, reason):
    v = verdict(sandbox, code)
    assert v.verdict == expected, v.reason
    if reason:
        assert reason in v.reason


def test_infinite_loop_is_a_timeout_and_the_verifier_survives(sandbox):
    sb = Sandbox(SandboxLimits(timeout_s=0.5))
    try:
        v = verdict(sb, "def f(x: int):\n    while True:\n        pass\ndef g():\n    return 3")
        assert v.verdict == "invalid" and v.reason.startswith("timeout")
        assert verdict(sb, "def f(x: int):\n    return x == 4321\ndef g():\n    return 4321").valid
    finally:
        sb.close()


def test_system_exit_in_g_is_not_success(sandbox):
    v = verdict(sandbox, "def f(x: int):\n    return x == 4321\ndef g():\n    raise SystemExit(0)")
    assert v.verdict == "invalid"


def test_os_exit_in_f_is_not_success(sandbox):
    v = verdict(sandbox, "import os\ndef f(x: int):\n    os._exit(0)\ndef g():\n    return 4321")
    assert v.verdict == "invalid"


def test_shipped_seeds_all_verify(sandbox):
    dom = P3Domain()
    seeds = dom.seeds()
    assert all(v.valid for v in dom.verify(seeds, sandbox))

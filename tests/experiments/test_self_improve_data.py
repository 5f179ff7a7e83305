"""The training-data diagnosis of self_improve_data.py: how a solution is written."""

from __future__ import annotations

from self_improve_data import answer_name, g_style


def test_answer_smuggled_as_a_default_is_told_from_fs_extra_parameters():
    f = "def f(abc: str, n=3):\n    return abc == 'x' * n"
    assert g_style(f, "abc='xxx'):\n    return abc\n\nassert f(g())\n```") == {
        "answer_param": True, "literal_return": False, "parsed": True}
    # P3's own convention: g takes f's extra parameters, and computes the answer from them
    assert g_style(f, "n=3):\n    return 'x' * n\n\nassert f(g())\n```")["answer_param"] is False
    assert g_style(f, "):\n    return 'xxx'\n")["literal_return"] is True
    assert g_style(f, "):\n    return ['x'] * 3\n")["literal_return"] is False  # computed


def test_malformed_code_reads_as_neither():
    bad = {"answer_param": False, "literal_return": False, "parsed": False}
    assert g_style("def f(x: int):\n    return x >", "):\n    return 1") == bad
    assert g_style("def f(x: int):\n    return x > 1", "):\n  return (") == bad
    assert g_style("x = 1", "):\n    return 1") == bad  # f is not a function
    assert answer_name("not python (") == "?" and answer_name("def f(s: str):\n    return s") == "s"

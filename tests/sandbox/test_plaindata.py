"""The plain-data codec that carries untrusted results across the sandbox boundary:
exact round trips, no subclass or foreign object gets through, hostile encoded text is
a clear NotPlainData (never a crash or a different value)."""

import math

import pytest

from evo.sandbox.plaindata import MAX_DEPTH, NotPlainData, decode, encode, sandbox_prelude


def same(a, b) -> bool:
    """Equal with exactly the same types all the way down (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (a != a and b != b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("value", [
    None, True, False, 0, -1, 2**53, -2**53, 7**500, 1.0, -0.0, float("nan"), float("inf"), 0.1 + 0.2,
    "", "plain", "\u00e9\U0001F600", "\ud83d\ude00", "x\ud800", [], [1, [2, [3.0]]], (1, "a"), (),
    {}, {1: "a", "1": 1, 2.5: None, (1, 2): [True]}, {1, 2, 3}, frozenset({"a"}), [[True, 1]],
])
def test_round_trip_is_exact(value):
    assert same(decode(encode(value)), value)


def test_bool_and_int_and_float_stay_apart():
    assert [type(x) for x in decode(encode([True, 1, 1.0]))] == [bool, int, float]


@pytest.mark.parametrize("make", [
    lambda: type("I", (int,), {"__eq__": lambda s, o: True})(3),
    lambda: type("S", (str,), {})("x"),
    lambda: type("L", (list,), {})([1]),
    lambda: type("D", (dict,), {})(),
    lambda: [object()],
    lambda: {"k": (lambda: 1)},
    lambda: (i for i in range(3)),
    lambda: b"bytes",
    lambda: 1j,
])
def test_nothing_but_plain_data_is_encoded(make):
    with pytest.raises(NotPlainData):
        encode(make())


def test_caps_on_depth_size_and_cycles():
    deep = []
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    cyclic = []
    cyclic.append(cyclic)
    for value in (deep, cyclic, "a" * 7_000_000, [0] * 2_000_001):
        with pytest.raises(NotPlainData):
            encode(value)


@pytest.mark.parametrize("text", [
    None, 5, b"[]", "", "not json", "[" * 100000 + "]" * 100000, '{"h": "12"}', '{"h": "0xzz"}',
    '{"t": 5}', '{"d": [[1]]}', '{"d": [[[1], 2]]}', '{"s": [[1]]}', '{"x": []}', '{"t": [], "s": []}',
    '{"u": "zz"}', "1" * 5000, "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2),
])
def test_hostile_encoded_text_is_rejected(text):
    with pytest.raises(NotPlainData):
        decode(text)


def test_the_sandbox_copy_is_the_same_codec():
    ns: dict = {}
    exec(sandbox_prelude("_p"), ns)
    assert ns["_p"].encode({1: (2, {3})}) == encode({1: (2, {3})})
    assert set(ns) == {"__builtins__", "_p"}

"""A labelled held-out set for the math domain: templated multi-step word problems.

No package reachable here ships GSM8K-like problems offline (``aviary-gsm8k`` loads
``openai/gsm8k`` from the Hugging Face hub at run time, ``gradeschoolmathsolver`` is an app
with no data), so the set is generated: 17 templates of 2-4 steps (``+ - * //``, divisions
always exact), names, pronouns, items and units drawn from small lists, the answer computed
while the worked solution is written. Every answer is a positive integer.

Splits: one seeded stream of instances (``POOL_SEED``, fixed: the same set on every machine
and for every ``evo eval --seed``); an instance is ``(template, every value drawn)``, and its
split is a hash of that key, so train and test never share an instance; instances whose
normalised question text was already drawn, or equals a math_sc seed question, are dropped.
Train and test share templates, as GSM8K's splits share a distribution: the held-out set
measures new instances, not new kinds of problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

POOL_SEED = 20261202
SPLIT_SIZES = {"train": 2000, "test": 1000}
TEST_SHARE = 1 / 3  # of the hash space; the stream runs until both splits are full

NAMES = [("Maya", "she"), ("Leo", "he"), ("Aisha", "she"), ("Tom", "he"), ("Priya", "she"), ("Omar", "he"),
         ("Lena", "she"), ("Carlos", "he"), ("Yuki", "she"), ("Ben", "he"), ("Sofia", "she"), ("Ravi", "he"),
         ("Nora", "she"), ("Felix", "he"), ("Amara", "she"), ("Jonas", "he"), ("Ines", "she"), ("Kofi", "he"),
         ("Mei", "she"), ("Diego", "he"), ("Hana", "she"), ("Ivan", "he"), ("Zara", "she"), ("Sam", "they")]
ITEMS = ["pencil", "marble", "sticker", "card", "shell", "button", "stamp", "bead", "coin", "ribbon"]
FOODS = ["cookies", "muffins", "rolls", "tarts", "pancakes", "dumplings"]
PLANTS = ["tomatoes", "carrots", "tulips", "peppers", "roses", "beans"]
THINGS = ["bike", "game", "jacket", "lamp", "backpack", "watch"]
VEHICLES = [("car", "km"), ("train", "km"), ("truck", "miles"), ("boat", "km"), ("bus", "miles")]
PRODUCTS = ["toy", "cup", "bottle", "brick", "chair", "candle"]

Instance = dict[str, Any]


def _person(rng: np.random.Generator, exclude: tuple[str, ...] = ()) -> tuple[str, str]:
    options = [p for p in NAMES if p[0] not in exclude]
    return options[int(rng.integers(len(options)))]


def _pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _r(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def _verb(pron: str, singular: str, plural: str) -> str:
    return plural if pron == "they" else singular


def _obj(pron: str) -> str:
    return {"she": "her", "he": "him", "they": "them"}[pron]


def _poss(pron: str) -> str:
    return {"she": "her", "he": "his", "they": "their"}[pron]


# Each template: rng -> (question, [(step text, value)], values that define the instance).
# The worked solution is the steps joined; the last step's value is the answer.

def t_packs(rng):
    (n, p), item = _person(rng), _pick(rng, ITEMS)
    a, b = _r(rng, 3, 12), _r(rng, 4, 24)
    c = _r(rng, 1, a * b - 1)
    q = (f"{n} buys {a} packs of {item}s. Each pack holds {b} {item}s. {p.capitalize()} "
         f"{_verb(p, 'gives', 'give')} away {c} {item}s. How many {item}s {_verb(p, 'does', 'do')} {p} have left?")
    return q, [(f"{a} * {b} = {a * b}", a * b), (f"{a * b} - {c} = {a * b - c}", a * b - c)], (n, item, a, b, c)


def t_savings(rng):
    (n, p), thing = _person(rng), _pick(rng, THINGS)
    a, b = _r(rng, 5, 60), _r(rng, 3, 20)
    c = _r(rng, 1, a * b - 1)
    q = (f"{n} saves ${a} every week for {b} weeks, then spends ${c} on a {thing}. "
         f"How many dollars {_verb(p, 'does', 'do')} {p} have left?")
    return q, [(f"{a} * {b} = {a * b}", a * b), (f"{a * b} - {c} = {a * b - c}", a * b - c)], (n, thing, a, b, c)


def t_share(rng):
    (n, p), food = _person(rng), _pick(rng, FOODS)
    c, each = _r(rng, 2, 12), _r(rng, 2, 15)
    b = _r(rng, 2, 12)
    while (c * each) % b:  # trays x per tray must split evenly: pick a tray size that divides
        b = _r(rng, 2, 12)
    a = c * each // b
    q = (f"{n} bakes {a} trays of {food} with {b} {food} on each tray. {p.capitalize()} "
         f"{_verb(p, 'shares', 'share')} them equally among {c} friends. How many {food} does each friend get?")
    return q, [(f"{a} * {b} = {a * b}", a * b), (f"{a * b} / {c} = {each}", each)], (n, food, a, b, c)


def t_train(rng):
    vehicle = _pick(rng, ["train", "bus", "ferry", "tram"])
    a = _r(rng, 20, 200)
    b = _r(rng, 1, a - 1)
    c = _r(rng, 1, 80)
    d = _r(rng, 1, a - b + c - 1)
    q = (f"A {vehicle} has {a} passengers. At the first stop {b} get off and {c} get on. "
         f"At the second stop {d} get off. How many passengers are on the {vehicle} now?")
    s1, s2 = a - b, a - b + c
    return q, [(f"{a} - {b} = {s1}", s1), (f"{s1} + {c} = {s2}", s2), (f"{s2} - {d} = {s2 - d}", s2 - d)], \
        (vehicle, a, b, c, d)


def t_garden(rng):
    (n, p), plant = _person(rng), _pick(rng, PLANTS)
    a, b = _r(rng, 2, 15), _r(rng, 3, 20)
    c, d = _r(rng, 1, a * b - 1), _r(rng, 1, 40)
    x = a * b
    q = (f"{n} plants {a} rows of {plant} with {b} plants in each row. {c} of the plants do not grow. "
         f"Then {p} {_verb(p, 'plants', 'plant')} {d} more that all grow. How many plants are growing?")
    return q, [(f"{a} * {b} = {x}", x), (f"{x} - {c} = {x - c}", x - c), (f"{x - c} + {d} = {x - c + d}", x - c + d)], \
        (n, plant, a, b, c, d)


def t_trip(rng):
    vehicle, unit = _pick(rng, VEHICLES)
    a, b, c, d = _r(rng, 20, 120), _r(rng, 2, 9), _r(rng, 20, 120), _r(rng, 1, 6)
    q = (f"A {vehicle} travels at {a} {unit} per hour for {b} hours, then at {c} {unit} per hour for "
         f"{d} hours. How many {unit} does it travel in total?")
    return q, [(f"{a} * {b} = {a * b}", a * b), (f"{c} * {d} = {c * d}", c * d),
               (f"{a * b} + {c * d} = {a * b + c * d}", a * b + c * d)], (vehicle, unit, a, b, c, d)


def t_change(rng):
    (n, p), (i1, i2) = _person(rng), tuple(str(x) for x in rng.choice(PRODUCTS, size=2, replace=False))
    a, b, c, d = _r(rng, 2, 9), _r(rng, 2, 15), _r(rng, 1, 6), _r(rng, 3, 20)
    x, y = a * b, c * d
    e = ((x + y) // 50 + 1) * 50
    q = (f"{n} buys {a} {i1}s at ${b} each and {c} {i2}s at ${d} each. {p.capitalize()} "
         f"{_verb(p, 'pays', 'pay')} with ${e}. How many dollars of change {_verb(p, 'does', 'do')} {p} get?")
    return q, [(f"{a} * {b} = {x}", x), (f"{c} * {d} = {y}", y), (f"{x} + {y} = {x + y}", x + y),
               (f"{e} - {x + y} = {e - x - y}", e - x - y)], (n, i1, i2, a, b, c, d)


def t_pages(rng):
    (n, p) = _person(rng)
    a = _r(rng, 8, 60)
    b = _r(rng, 3 * a + 1, 3 * a + 400)
    q = (f"{n} reads {a} pages on Monday and twice as many pages on Tuesday. The book has {b} pages. "
         f"How many pages are left to read?")
    return q, [(f"2 * {a} = {2 * a}", 2 * a), (f"{a} + {2 * a} = {3 * a}", 3 * a), (f"{b} - {3 * a} = {b - 3 * a}", b - 3 * a)], \
        (n, a, b)


def t_teams(rng):
    a, b, d = _r(rng, 3, 12), _r(rng, 15, 32), _r(rng, 3, 8)
    present = a * b - _r(rng, 1, 10)
    present -= present % d
    c = a * b - present  # at least 1: something was subtracted
    q = (f"A school has {a} classes with {b} students each. {c} students are absent today. "
         f"The students who are present form teams of {d}. How many teams are there?")
    return q, [(f"{a} * {b} = {a * b}", a * b), (f"{a * b} - {c} = {present}", present),
               (f"{present} / {d} = {present // d}", present // d)], (a, b, c, d)


def t_legs(rng):
    (n, _), a, b = _person(rng), _r(rng, 3, 60), _r(rng, 2, 40)
    q = f"{n}'s farm has {a} chickens and {b} cows. How many legs do the animals have in total?"
    return q, [(f"{a} * 2 = {2 * a}", 2 * a), (f"{b} * 4 = {4 * b}", 4 * b), (f"{2 * a} + {4 * b} = {2 * a + 4 * b}", 2 * a + 4 * b)], \
        (n, a, b)


def t_flour(rng):
    (n, p) = _person(rng)
    a, b = _r(rng, 120, 450), _r(rng, 2, 8)
    c = a * b + _r(rng, 10, 900)
    q = (f"A cake needs {a} grams of flour. {n} bakes {b} cakes and started with {c} grams of flour. "
         f"How many grams of flour {_verb(p, 'does', 'do')} {p} have left?")
    return q, [(f"{a} * {b} = {a * b}", a * b), (f"{c} - {a * b} = {c - a * b}", c - a * b)], (n, a, b, c)


def t_tickets(rng):
    a, b, c, d = _r(rng, 8, 40), _r(rng, 3, 20), _r(rng, 1, 6), _r(rng, 1, 8)
    place = _pick(rng, ["zoo", "museum", "cinema", "aquarium", "fair"])
    q = (f"At the {place}, adult tickets cost ${a} and child tickets cost ${b}. A family buys {c} adult "
         f"tickets and {d} child tickets. How many dollars do they pay?")
    return q, [(f"{c} * {a} = {a * c}", a * c), (f"{d} * {b} = {b * d}", b * d), (f"{a * c} + {b * d} = {a * c + b * d}", a * c + b * d)], \
        (place, a, b, c, d)


def t_boxes(rng):
    item = _pick(rng, PRODUCTS)
    b, c = _r(rng, 4, 24), _r(rng, 2, 9)
    per = _r(rng, 5, 60)
    a = per * b
    while (a * c) % b:
        a += 1
    q = (f"A factory makes {a} {item}s a day and packs them in boxes of {b}. How many boxes does it fill "
         f"in {c} days?")
    return q, [(f"{a} * {c} = {a * c}", a * c), (f"{a * c} / {b} = {a * c // b}", a * c // b)], (item, a, b, c)


def t_ages(rng):
    (n1, _), a = _person(rng), _r(rng, 4, 30)
    (n2, _) = _person(rng, (n1,))
    (n3, _) = _person(rng, (n1, n2))
    b = _r(rng, 2, 15)
    q = (f"{n1} is {a} years old. {n2} is {b} years older than {n1}. {n3} is twice as old as {n2}. "
         f"How old is {n3}?")
    return q, [(f"{a} + {b} = {a + b}", a + b), (f"2 * {a + b} = {2 * (a + b)}", 2 * (a + b))], (n1, n2, n3, a, b)


def t_more(rng):
    (n1, _), item = _person(rng), _pick(rng, ITEMS)
    (n2, _) = _person(rng, (n1,))
    a, b = _r(rng, 3, 40), _r(rng, 2, 6)
    c = _r(rng, 1, a * b - a - 1) if a * b - a > 1 else 0
    x = a * b
    q = (f"{n1} has {a} {item}s. {n2} has {b} times as many {item}s as {n1}. Then {n2} loses {c} {item}s. "
         f"How many more {item}s than {n1} does {n2} have now?")
    return q, [(f"{a} * {b} = {x}", x), (f"{x} - {c} = {x - c}", x - c), (f"{x - c} - {a} = {x - c - a}", x - c - a)], \
        (n1, n2, item, a, b, c)


def t_wages(rng):
    (n, p) = _person(rng)
    a, b, c, d = _r(rng, 2, 9), _r(rng, 2, 6), _r(rng, 8, 30), _r(rng, 2, 5)
    q = (f"{n} works {a} hours a day, {b} days a week, and earns ${c} an hour. How many dollars "
         f"{_verb(p, 'does', 'do')} {p} earn in {d} weeks?")
    h, w = a * b, a * b * c
    return q, [(f"{a} * {b} = {h}", h), (f"{h} * {c} = {w}", w), (f"{w} * {d} = {w * d}", w * d)], (n, a, b, c, d)


def t_stickers(rng):
    (n, p), item = _person(rng), _pick(rng, ITEMS)
    b, c = _r(rng, 2, 9), _r(rng, 2, 8)
    a = b * c + _r(rng, 1, 60)
    d = _r(rng, 1, 30)
    x = b * c
    q = (f"{n} has {a} {item}s. {p.capitalize()} {_verb(p, 'gives', 'give')} {b} {item}s to each of {c} friends, "
         f"then {_verb(p, 'buys', 'buy')} {d} more. How many {item}s {_verb(p, 'does', 'do')} {p} have now?")
    return q, [(f"{b} * {c} = {x}", x), (f"{a} - {x} = {a - x}", a - x), (f"{a - x} + {d} = {a - x + d}", a - x + d)], \
        (n, item, a, b, c, d)


TEMPLATES: dict[str, Callable[[np.random.Generator], Any]] = {
    f.__name__[2:]: f for f in (t_packs, t_savings, t_share, t_train, t_garden, t_trip, t_change, t_pages, t_teams,
                               t_legs, t_flour, t_tickets, t_boxes, t_ages, t_more, t_wages, t_stickers)}


def normalise(text: str) -> str:
    """The text as the disjointness checks compare it (lower case, single spaces)."""
    return " ".join(text.lower().split())


def instance_key(template: str, values: tuple[Any, ...]) -> str:
    return f"{template}|" + "|".join(map(str, values))


def split_of(key: str) -> str:
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return "test" if h < TEST_SHARE else "train"


def _seed_questions() -> set[str]:
    from domains.math_sc.parse import SEEDS_FILE
    from evo.domain import read_seeds

    return {normalise(s["question"]) for s in read_seeds(SEEDS_FILE, "math")}


@lru_cache(maxsize=1)
def _pool() -> dict[str, tuple[Instance, ...]]:
    rng = np.random.default_rng(POOL_SEED)
    names = list(TEMPLATES)
    out: dict[str, list[Instance]] = {s: [] for s in SPLIT_SIZES}
    seen_text, seen_key = _seed_questions(), set()
    draws = 0
    while any(len(out[s]) < n for s, n in SPLIT_SIZES.items()):
        draws += 1
        if draws > 50 * sum(SPLIT_SIZES.values()):
            raise RuntimeError("the templates cannot fill the splits with distinct instances")
        name = names[draws % len(names)]
        question, steps, values = TEMPLATES[name](rng)
        key, text = instance_key(name, values), normalise(question)
        if key in seen_key or text in seen_text:
            continue
        seen_key.add(key)
        seen_text.add(text)
        split = split_of(key)
        if len(out[split]) >= SPLIT_SIZES[split]:
            continue
        answer = steps[-1][1]
        solution = ". ".join(s for s, _ in steps) + f". The answer is {answer}."
        out[split].append({"id": f"{split}-{len(out[split]):04d}", "template": name, "key": key,
                           "question": question, "solution": solution, "answer": str(answer),
                           "steps": len(steps)})
    return {s: tuple(v) for s, v in out.items()}


def problems(split: str, limit: int | None = None, seed: int = 0) -> list[Instance]:
    """``limit`` problems of ``split`` ("train" or "test") in a ``seed``-ed order."""
    pool = _pool()
    if split not in pool:
        raise KeyError(split)
    items = list(pool[split])
    order = np.random.default_rng(seed).permutation(len(items))
    items = [dict(items[i]) for i in order]
    return items[:limit] if limit else items

"""``evo verify DOMAIN FILE.jsonl`` for every shipped domain: one JSON line per item (line,
verdict, reason, fitness), exit 0 once the file is read, a malformed line is a verdict for
that line; an unreadable file or unknown domain is one error line and exit 2. The P3 and
code_tests adversarial corpora give their labelled verdicts through the command too."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEEDS = {"p3": "domains/p3/seeds.jsonl", "code_tests": "domains/code_tests/seeds.jsonl",
         "math": "domains/math_sc/seeds.jsonl", "text_feedback": "domains/text_feedback/seeds.jsonl"}
MALFORMED = ["not json {", "[1, 2, 3]", "null", '"a string"', '{"unexpected": "keys"}',
             "[" * 100000 + "]" * 100000, '{"f": 3, "g": [], "question": 7, "text": {}, "solution": 1}']


def evo(*args):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "evo.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


@pytest.mark.parametrize("domain", sorted(SEEDS))
def test_every_domain_gives_one_line_per_item(tmp_path, domain):
    seed = (ROOT / SEEDS[domain]).read_text().splitlines()[0]
    f = tmp_path / "items.jsonl"
    f.write_text("\n".join([seed, "", *MALFORMED]) + "\n", encoding="utf-8")
    r = evo("verify", domain, f)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["line"] for o in out] == [1, *range(3, 3 + len(MALFORMED))]  # the blank line is no item
    assert out[0]["verdict"] == "valid", out[0]
    assert all(o["verdict"] == "invalid" and o["reason"].startswith(f"line {o['line']}:") for o in out[1:])
    assert all(set(o) == {"line", "verdict", "reason", "fitness"} for o in out)
    if domain == "code_tests":  # test strength needs no generator
        assert 0 < out[0]["fitness"] <= 1
    else:  # difficulty, self-consistency and the judge are relative to a generator
        assert out[0]["fitness"] is None


def test_unreadable_file_is_one_line_exit_2(tmp_path):
    f = tmp_path / "binary.jsonl"
    f.write_bytes(b"\xff\xfe\x00garbage")
    for args in (["verify", "p3", f], ["verify", "p3", tmp_path], ["verify", "no_such_domain", f]):
        r = evo(*args)
        assert r.returncode == 2 and r.stdout == ""
        assert len([x for x in r.stderr.splitlines() if x.strip()]) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("domain", ["p3", "code_tests"])
def test_adversarial_corpus_through_the_command(domain):
    path = ROOT / "tests" / "adversarial" / f"{domain}.jsonl"
    expected = [json.loads(line)["expect"] for line in path.read_text().splitlines() if line.strip()]
    r = evo("verify", domain, path)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["verdict"] for line in r.stdout.splitlines()] == expected

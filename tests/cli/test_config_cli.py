"""Bad input: every malformed config or path is one clear line on stderr and exit code 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evo.config import load_config, parse_overrides
from evo.errors import EvoError

EVO = [sys.executable, "-m", "evo.cli"]
ROOT = Path(__file__).resolve().parents[2]


def evo(*args, cwd=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*EVO, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_demo_config_loads():
    cfg = load_config(ROOT / "experiments" / "configs" / "p3_cpu.yaml")
    assert cfg.domain == "p3" and cfg.generator.model in ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b")


def test_gpu_config_loads():
    assert load_config(ROOT / "experiments" / "configs" / "p3_gpu.yaml").generator.backend == "vllm"


def test_overrides_are_nested_and_typed():
    cfg = load_config(None, parse_overrides(["iterations=3", "generator.batch_size=4", "archive.dims=[8, 8]"]))
    assert cfg.iterations == 3 and cfg.generator.batch_size == 4 and cfg.archive.dims == [8, 8]


@pytest.mark.parametrize("text, message", [
    ("iterations: -1", "iterations: Input should be greater than or equal to 0"),
    ("prompts_per_iteration: 0", "prompts_per_iteration: Input should be greater than 0"),
    ("bogus_key: 1", "bogus_key: Extra inputs are not permitted"),
    ("generator: {batch_size: many}", "generator.batch_size: Input should be a valid integer"),
    ("generator: {backend: tpu}", "generator.backend: Input should be 'transformers', 'ctranslate2', 'vllm', 'openai', 'auto' or 'scripted-stand-in'"),
    ("archive: {dims: [0, 4]}", "archive: Value error, archive.dims must be a non-empty list of positive ints"),
    ("operators: {weights: {lmx: -1}}", "operators: Value error, operator weights must be >= 0 with a positive sum"),
    ("sandbox: {timeout_s: 0}", "sandbox.timeout_s"),
    ("- just\n- a list", "must be a mapping"),
    ("key: [unclosed", "is not valid YAML"),
])
def test_bad_configs(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(EvoError) as err:
        load_config(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_override():
    with pytest.raises(EvoError, match="is not KEY=VALUE"):
        parse_overrides(["iterations"])


@pytest.mark.parametrize("args, message", [
    (["run", "--config", "missing.yaml", "--out", "x"], "cannot read config missing.yaml"),
    (["run", "--config", "experiments/configs/p3_cpu.yaml"], "--out DIR is required"),
    (["run", "--config", "experiments/configs/p3_cpu.yaml", "--out", "x", "--set", "domain=nope"], "unknown domain 'nope'"),
    (["run", "--config", "experiments/configs/p3_cpu.yaml", "--out", "/proc/evo-run"], "is not writable"),
    (["run", "--config", "experiments/configs/p3_cpu.yaml", "--out", "x", "--set", "generator.model=/no/such/model"],
     "cannot load generator model '/no/such/model'"),
    (["status", "/nonexistent"], "is not a campaign directory"),
    (["eval", "--backend", "nope", "--limit", "1"], "unknown generator backend 'nope'"),
    (["verify", "p3", "/nonexistent.jsonl"], "cannot read /nonexistent.jsonl"),
    (["verify", "nope", "x.jsonl"], "unknown domain 'nope'"),
    (["sandbox", "/nonexistent.py"], "no such file"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, message):
    r = evo(*args, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr
    assert not (ROOT / "x").exists()  # nothing half-written


def test_cli_verify_p3(tmp_path):
    f = tmp_path / "items.jsonl"
    rows = [
        {"f": "def f(x: int):\n    return x == 4321", "g": "def g():\n    return 4321"},
        {"f": "def f(x: int):\n    return x > 2", "g": "def g():\n    return 99"},
        {"f": "def f(x: int):\n    return x == 1", "g": "def g():\n    return 2"},
        {"nonsense": True},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    r = evo("verify", "p3", f, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["verdict"] for o in out] == ["valid", "trivial", "invalid", "invalid", "invalid"]
    assert "KeyError" in out[3]["reason"] and "line 5" in out[4]["reason"]


def test_cli_sandbox_prints_json_verdict(tmp_path):
    f = tmp_path / "prog.py"
    f.write_text("print('hi')\nraise ValueError('nope')\n")
    r = evo("sandbox", f, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["status"] == "failed" and "hi" in v["stdout"] and "ValueError" in (v["error"] or v["stderr"])


def test_cli_status_of_recorded_campaign(small_campaign):
    r = evo("status", small_campaign, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "campaign summary" in r.stdout and "QD-score" in r.stdout
    # which isolation contained the campaign's evaluations is recorded and shown
    assert "sandbox" in r.stdout and ("bwrap" in r.stdout or "NO namespace" in r.stdout)


def test_run_into_a_different_campaign_is_refused(small_campaign):
    r = evo("run", "--out", small_campaign, "--iterations", "1", cwd=ROOT)
    assert r.returncode == 2 and "belongs to a campaign with a different config" in r.stderr


def test_runtime_keys_may_change_on_resume_but_not_the_campaign():
    from evo.config import same_campaign

    base = load_config(ROOT / "experiments" / "configs" / "p3_cpu.yaml")
    moved = load_config(ROOT / "experiments" / "configs" / "p3_cpu.yaml", parse_overrides([
        "iterations=99", "generator.backend=vllm", "generator.batch_size=256", "executor.kind=ray",
        "sandbox.workers=16", "sandbox.isolation=bwrap"]))
    assert same_campaign(base, moved)
    for change in ("generator.model=other", "generator.temperature=0.1", "archive.dims=[5, 5]", "seed=3",
                   "sandbox.timeout_s=9"):
        assert not same_campaign(base, load_config(ROOT / "experiments" / "configs" / "p3_cpu.yaml", parse_overrides([change])))

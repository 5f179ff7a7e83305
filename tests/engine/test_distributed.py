"""The Ray executor on a local Ray instance (CPU): RaySandbox against the local Sandbox,
generator actors, and a scripted campaign with ``executor.kind: ray``."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray", reason="the distributed extra (ray) is not installed")

from evo.campaign import Campaign  # noqa: E402
from evo.config import validate_config  # noqa: E402
from evo.errors import EvoError  # noqa: E402
from evo.llm import SamplingParams, ScriptedStandInLLM  # noqa: E402
from evo.llm.ray_generator import RayGenerator  # noqa: E402
from evo.sandbox import Sandbox, SandboxLimits  # noqa: E402
from evo.sandbox.ray_sandbox import RaySandbox  # noqa: E402
from tests.conftest import scripted_p3  # noqa: E402

JOBS = [
    ("x = sum(range(10))", "x"),
    ("def f(s):\n    return s[::-1]\n", "f('abc')"),
    ("raise ValueError('bad puzzle')", None),  # failing
    ("while True:\n    pass\n", None),  # timing out
    ("import sys\nprint('out')\nprint('err', file=sys.stderr)", "[1, 2]"),
    ("y = 1 / 0", "y"),
    ("z = 'a' * 10", "len(z)"),
]


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _essence(v):
    return (v.status, v.value, v.error, v.stdout, v.stderr)


def test_ray_sandbox_matches_local_sandbox(local_ray):
    limits = SandboxLimits(timeout_s=1.0, workers=2)
    with Sandbox(limits) as local:
        expected = local.run_many(JOBS)
    with RaySandbox(limits) as remote:
        got = remote.run_many(JOBS)
        single = remote.run("a = 6 * 7", "a")
        slow = remote.run("while True:\n    pass\n", timeout_s=0.5)
        assert remote.isolation in ("bwrap", "rlimits")
        assert remote.run_many([]) == []
    assert [_essence(v) for v in got] == [_essence(v) for v in expected]
    assert [v.status for v in got] == ["ok", "ok", "failed", "timeout", "ok", "failed", "ok"]
    assert got[2].error == "ValueError: bad puzzle"
    assert single.ok and single.value == 42
    assert slow.status == "timeout"


def test_ray_sandbox_keeps_input_order_across_chunks(local_ray):
    jobs = [(f"x = {i} * {i}", "x") for i in range(13)]
    with RaySandbox(SandboxLimits(timeout_s=2.0), chunks_per_cpu=3) as remote:
        verdicts = remote.run_many(jobs)
    assert [v.value for v in verdicts] == [i * i for i in range(13)]


def test_ray_generator_actors_split_batches_in_order(local_ray):
    gen = RayGenerator("scripted-stand-in", "tests.conftest:scripted_p3", actors=2, gpus_per_actor=0)
    try:
        prompts = [f"def f(x{i}: int" for i in range(5)]
        params = SamplingParams(n=2, stop=["```"], seed=7)
        out = gen.generate(prompts, params)
        expected = ScriptedStandInLLM(scripted_p3).generate(prompts, params)
        assert [[g.text for g in row] for row in out] == [[g.text for g in row] for row in expected]
        gen.set_adapter(None, 3)
        assert gen.version == 3 and gen.generate([], params) == []
    finally:
        gen.close()


def test_ray_generator_needs_the_gpus_it_asks_for(local_ray):
    with pytest.raises(EvoError, match="more GPUs than the Ray cluster has"):
        RayGenerator("scripted-stand-in", "tests.conftest:scripted_p3", actors=1, gpus_per_actor=1)


def test_campaign_with_ray_executor_matches_local(local_ray, tmp_path):
    base = {"name": "ray", "iterations": 1, "prompts_per_iteration": 4, "samples_per_prompt": 2,
            "max_seeds": 6, "domain_options": {"solve_attempts": 2}, "archive": {"dims": [6, 6]},
            "generator": {"backend": "scripted-stand-in", "model": "tests.conftest:scripted_p3"}}
    summaries = {}
    for kind in ("local", "ray"):
        config = validate_config({**base, "executor": {"kind": kind}})
        campaign = Campaign(config, tmp_path / kind)
        try:
            assert isinstance(campaign.sandbox, RaySandbox) == (kind == "ray")
            summaries[kind] = campaign.run()
        finally:
            campaign.close()
    keys = ("candidates", "valid", "verdicts", "iterations", "evolved_elites")
    assert {k: summaries["ray"][k] for k in keys} == {k: summaries["local"][k] for k in keys}
    assert summaries["ray"]["valid"] > 0 and summaries["ray"]["iterations"] == 1


def test_executor_config_is_validated():
    with pytest.raises(EvoError, match="executor.kind"):
        validate_config({"executor": {"kind": "slurm"}})
    cfg = validate_config({"executor": {"kind": "ray", "address": "ray://head:10001", "generators": 2}})
    assert cfg.executor.address == "ray://head:10001" and cfg.executor.generators == 2


def failing_responder(prompt: str, j: int) -> str:
    raise RuntimeError(f"generator broke on {prompt!r}")


def test_actor_errors_carry_their_cause(local_ray):
    """The message of the exception inside the actor reaches the driver: ActorDiedError (an
    actor dying in __init__) keeps no `cause` attribute, only the creation task's traceback."""
    with pytest.raises(EvoError, match=r"failed to start: unknown generator backend 'nope'"):
        RayGenerator("nope", "m", actors=1, gpus_per_actor=0)
    gen = RayGenerator("scripted-stand-in", "tests.engine.test_distributed:failing_responder", actors=1,
                       gpus_per_actor=0)
    try:
        with pytest.raises(EvoError, match=r"actor failed: generator broke on 'p'"):
            gen.generate(["p"], SamplingParams())
    finally:
        gen.close()


def test_actors_get_absolute_adapter_paths(local_ray, tmp_path, monkeypatch):
    from evo.llm.ray_generator import _absolute

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "c" / "adapters" / "round-1").mkdir(parents=True)
    assert _absolute("runs/c/adapters/round-1") == str(tmp_path / "runs" / "c" / "adapters" / "round-1")
    assert _absolute("served-lora") == "served-lora"  # a name a server serves: left as it is
    gen = RayGenerator("scripted-stand-in", "tests.conftest:scripted_p3", actors=1, gpus_per_actor=0)
    try:
        gen.set_adapter("runs/c/adapters/round-1", 1)  # relative here, absolute on the actor
        assert gen.version == 1
        with pytest.raises(EvoError, match="not visible on node .*storage every Ray node mounts"):
            gen.set_adapter("/nonexistent/shared/round-2", 2)  # another node's local disk
        gen.sleep()  # a backend without sleep mode: a no-op on every actor
        gen.wake_up()
    finally:
        gen.close()

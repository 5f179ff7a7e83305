"""experiments/gpu_suite.py: the payload travels in parts and comes back together byte for
byte, a damaged or missing part is refused, the state comes back in parts and is restored,
and (slow, minutes: loads the real 135M model) ``--dry-run`` runs every call of
docs/gpu_suite.md at tiny size on this CPU, a machine lost between calls included."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

import gpu_suite  # noqa: E402
import self_improve  # noqa: E402
from stats import paired_bootstrap  # noqa: E402


def fake_parts(tmp: Path, part_bytes: int = 700) -> tuple[Path, bytes]:
    """A small payload laid out as prepare() lays the real one out, split like it."""
    import torch
    from safetensors.torch import save_file

    build = tmp / "build" / "payload"
    (build / gpu_suite.EMB_PKG / "model").mkdir(parents=True)
    save_file({"w": torch.arange(6, dtype=torch.float16)}, build / gpu_suite.EMB_PKG / "model" / "model.safetensors")
    (build / "wheels").mkdir()
    (build / "p3").mkdir()
    (build / "p3" / "split.json").write_text(json.dumps({"test": ["x"] * 50}))
    payload = tmp / "payload.tar"
    with tarfile.open(payload, "w") as tar:
        tar.add(build, arcname="payload")
    data = payload.read_bytes()
    local = tmp / "local"
    chunks = [data[i:i + part_bytes] for i in range(0, len(data), part_bytes)]
    import hashlib

    manifest = {"payload_sha256": hashlib.sha256(data).hexdigest(),
                "parts": [hashlib.sha256(c).hexdigest() for c in chunks], "bytes": len(data)}
    for i, c in enumerate(chunks, 1):
        (local / f"part-{i}").mkdir(parents=True)
        (local / f"part-{i}" / "payload.bin").write_bytes(c)
        (local / f"part-{i}" / "manifest.json").write_text(json.dumps(manifest))
    return local, data


def test_parts_reassemble_and_unpack(tmp_path):
    from safetensors.torch import load_file

    local, data = fake_parts(tmp_path)
    n = len(list(local.glob("part-*")))
    assert n >= 3
    device = tmp_path / "device"
    # any order; nothing is unpacked until the last part is there
    order = [n, *range(1, n)]
    assert [gpu_suite.stage(i, local, device) for i in order] == [False] * (n - 1) + [True]
    site = device / "site"
    assert (site / "READY").is_file() and json.loads((site / "p3" / "split.json").read_text())["test"][0] == "x"
    w = load_file(site / gpu_suite.EMB_PKG / "model" / "model.safetensors")["w"]
    assert str(w.dtype) == "torch.float32" and w.tolist() == [0, 1, 2, 3, 4, 5]
    assert not (device / "parts").exists()


def test_damaged_or_missing_part_refused(tmp_path):
    local, _ = fake_parts(tmp_path)
    blob = local / "part-2" / "payload.bin"
    blob.write_bytes(b"X" + blob.read_bytes()[1:])
    with pytest.raises(SystemExit, match="part 2 is damaged"):
        gpu_suite.stage(2, local, tmp_path / "device")
    with pytest.raises(SystemExit, match="carry"):
        gpu_suite.stage(99, local, tmp_path / "device")


def test_run_refuses_without_staged_models(tmp_path, capsys):
    rc = gpu_suite.run(tmp_path / "local", tmp_path / "device", tmp_path / "out", "tiny", 10, tmp_path / "cache")
    assert rc == 2 and "not staged" in capsys.readouterr().err


def test_state_round_trip_in_parts(tmp_path, monkeypatch):
    root = tmp_path / "device"
    (root / "results").mkdir(parents=True)
    steps = {"campaign:base": {}, "arm:base": {}, "arm:elites": {}, "arm:best_of_n": {}, "arm:seeds": {},
             "round:on:2": {}}
    (root / "results" / "self_improve_tiny.json").write_text(json.dumps({"steps": steps}))
    (root / "work" / "snap" / "s0").mkdir(parents=True)
    gpu_suite.save_state(root, "tiny", tmp_path / "early")  # arm 3b and later arms still train from s0
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in
                                                  sorted((tmp_path / "early").glob("state.tar.gz.*"))))) as tar:
        assert any(n.startswith("work/snap/s0") for n in tar.getnames())
    steps |= {s: {} for s in self_improve.step_names(self_improve.SIZES["tiny"]) if s.startswith("arm:")}
    (root / "results" / "self_improve_tiny.json").write_text(json.dumps({"steps": steps}))
    for snap in ("s0", "elites@1", "on@2"):
        d = root / "work" / "snap" / snap / "adapters" / "round-1"
        d.mkdir(parents=True)
        (d / "pool.jsonl").write_text("{}\n")
        (d / "adapter_model.safetensors").write_bytes(b"\0" * 1000)
    monkeypatch.setattr(gpu_suite, "STATE_PART_BYTES", 300)  # force several parts
    out = tmp_path / "out"
    gpu_suite.save_state(root, "tiny", out)
    assert len(list(out.glob("state.tar.gz.*"))) > 1
    local, results = tmp_path / "local", tmp_path / "results"
    gpu_suite.collect(out, local, results, "tiny")
    state = local / "state" / "state.tar.gz"
    assert gpu_suite.done_steps(state) == len(steps)
    with tarfile.open(state) as tar:
        names = tar.getnames()
    # every arm is done: s0 is no longer needed; round on:3 starts from on@2, off:2 from elites@1
    assert "work/snap/on@2/adapters/round-1/pool.jsonl" in names
    assert any(n.startswith("work/snap/elites@1") for n in names)
    assert not any(n.startswith("work/snap/s0") for n in names)
    assert not any(n.endswith("adapter_model.safetensors") for n in names)  # weights never travel
    assert (results / "self_improve_tiny.json").is_file()


def test_paired_bootstrap_known_inputs():
    same = paired_bootstrap([0.5, 0.2, 0.1], [0.5, 0.2, 0.1])
    assert same["mean_diff"] == 0 and same["p_boot"] == 1.0 and same["p_wilcoxon"] is None
    better = paired_bootstrap([1.0] * 30, [0.0] * 30)
    assert better["mean_diff"] == 1.0 and better["ci"] == [1.0, 1.0] and better["p_boot"] == 0.0
    assert better["wins"] == 30 and better["p_wilcoxon"] < 1e-5
    mixed = paired_bootstrap([1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1])
    assert mixed["p_boot"] > 0.5 and mixed["ci"][0] < 0 < mixed["ci"][1]
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1])


@pytest.mark.slow
def test_gpu_suite_dry_run():
    """The whole GPU sequence at tiny size on CPU (CI), real model and sandbox, on the transformers
    backend as on the GPU: ~15 minutes on the shared 2-core box at load 6-8 (2026-11-24), a few
    minutes on an idle one; the limit leaves room for a loaded machine."""
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "gpu_suite.py"), "--dry-run"],
                       capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    steps = len(self_improve.step_names(self_improve.SIZES["tiny"]))  # every step of the plan ran
    assert f"dry run: rc 0, {steps} steps" in r.stdout
    assert "restored the carried state" in r.stdout
    assert "| 3. seeds + evolved elites |" in r.stdout

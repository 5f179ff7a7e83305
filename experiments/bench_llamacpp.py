"""llama.cpp running the embedded Q4_K_M file directly: is it faster than vLLM's float32 on CPU?

Usage: pip install --no-deps llama-cpp-cffi==0.4.42      (MIT, Tangled Group; 291 MB, cp311)
       python experiments/bench_llamacpp.py [--model qwen2.5-coder-1.5b] [--batches 1,8,16,32]
                                            [--samples 32] [--threads 2] [--so PATH] [--vllm]
                                            [--results experiments/results/bench_llamacpp.md]

Issue 29 names "engines that run Q4_K_M directly" as a lever for the 1.5B on CPUs without
native bf16, where vLLM runs it in float32 (~10 generated tok/s on a 2-core AVX2 EPYC). This
measures llama.cpp on the same file and the demo workload (experiments/bench_generation.py:
the demo config's first prompts, 2 samples each, temperature 0.8, top-p 0.95, 160 new tokens
at most, the domain's stop strings), in waves of ``batch`` sequences decoded together; the
two samples of a prompt share its prefilled KV cache (``llama_kv_self_seq_cp``). ``--vllm``
runs evo's default engine (vLLM's CPU build, ``dtype: auto``) on the same prompts and
sampling settings in one batch, for the side-by-side row.

Why llama-cpp-cffi and not a dependency: it is the one llama.cpp wheel on PyPI that loads on
these machines (Debian 12, glibc 2.36). ``llama-cpp-py-sync`` is tagged manylinux2014 but
needs glibc 2.38; ``llama-cpp-python`` has no wheel. llama-cpp-cffi's CPU library wants two
symbols of a newer libstdc++ that its code paths here never call, so it is loaded with lazy
binding, straight from its file (its package ``__init__`` imports transformers and probes for
CUDA). Prompts are tokenised as raw text (no chat template), as the P3 domain sends them.
"""

from __future__ import annotations

import argparse
import glob
import importlib.machinery
import importlib.util
import os
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))


def load_llama_cpp(so: str | None):
    """llama-cpp-cffi's CPU library (``lib``, ``ffi``), without importing its package."""
    if so is None:
        spec = importlib.util.find_spec("llama")
        found = glob.glob(os.path.join(spec.submodule_search_locations[0], "_llama_cpp_cpu*.so")) if spec else []
        if not found:
            raise SystemExit("llama-cpp-cffi is not installed: pip install --no-deps llama-cpp-cffi==0.4.42, or pass --so")
        so = found[0]
    sys.setdlopenflags(os.RTLD_LAZY | os.RTLD_GLOBAL)
    loader = importlib.machinery.ExtensionFileLoader("llama._llama_cpp_cpu", so)
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(loader.name, so, loader=loader))
    loader.exec_module(module)
    return module.lib, module.ffi


class LlamaCpp:
    """One model and context; ``generate`` decodes a wave of (prompt, n) requests together."""

    def __init__(self, lib, ffi, gguf: Path, n_seq: int, n_ctx_per_seq: int, threads: int):
        self.lib, self.ffi = lib, ffi
        lib.llama_backend_init()
        mp = lib.llama_model_default_params()
        mp.n_gpu_layers = 0
        self.model = lib.llama_model_load_from_file(str(gguf).encode(), mp)
        if self.model == ffi.NULL:
            raise SystemExit(f"llama.cpp could not load {gguf}")
        self.vocab = lib.llama_model_get_vocab(self.model)
        cp = lib.llama_context_default_params()
        cp.n_ctx = n_seq * n_ctx_per_seq
        cp.n_batch = cp.n_ubatch = 512
        cp.n_seq_max = n_seq
        cp.n_threads = cp.n_threads_batch = threads
        self.ctx = lib.llama_init_from_model(self.model, cp)
        self.batch = lib.llama_batch_init(512, 0, n_seq)
        self.timing = {"prefill_s": 0.0, "decode_s": 0.0, "sample_s": 0.0}
        self.generated = self.prompt_tokens = 0

    def tokenize(self, text: str) -> list[int]:
        raw = text.encode()
        buf = self.ffi.new("int32_t[]", len(raw) + 8)
        n = self.lib.llama_tokenize(self.vocab, raw, len(raw), buf, len(raw) + 8, True, True)
        return list(buf[0:n])

    def piece(self, token: int) -> bytes:
        buf = self.ffi.new("char[]", 64)
        n = self.lib.llama_token_to_piece(self.vocab, token, buf, 64, 0, False)
        return self.ffi.buffer(buf, max(n, 0))[:]

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, pos, seq, wants_logits) rows."""
        b = self.batch
        for i, (tok, pos, seq, logits) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, 1, logits
            b.seq_id[i][0] = seq
        b.n_tokens = len(items)
        if self.lib.llama_decode(self.ctx, b) != 0:
            raise SystemExit("llama_decode failed (the KV cache is too small for this wave)")

    def _sampler(self, temperature: float, top_p: float, seed: int):
        lib = self.lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(temperature))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(top_p, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed))
        return chain

    def generate(self, prompts: list[str], n: int, params, seed: int) -> list[str]:
        """``n`` samples of each prompt; the samples of a prompt share its prefilled cache."""
        lib, t = self.lib, self.timing
        lib.llama_kv_self_clear(self.ctx)
        seqs: list[_Sequence] = []
        for p, prompt in enumerate(prompts):
            t0 = time.perf_counter()
            toks = self.tokenize(prompt)
            self.prompt_tokens += len(toks)
            for start in range(0, len(toks), 512):
                chunk = toks[start:start + 512]
                self._decode([(tok, start + i, p * n, start + i == len(toks) - 1) for i, tok in enumerate(chunk)])
            t["prefill_s"] += time.perf_counter() - t0
            for j in range(n):  # sampled now: the next prompt's prefill overwrites these logits
                if j:
                    lib.llama_kv_self_seq_cp(self.ctx, p * n, p * n + j, -1, -1)
                s = _Sequence(p * n + j, len(toks), self._sampler(params.temperature, params.top_p, seed + p * n + j))
                s.pending = self._sample(s, (len(toks) - 1) % 512)
                seqs.append(s)
        while True:
            rows = []
            for s in seqs:
                if s.done:
                    continue
                s.new_tokens += 1
                if lib.llama_vocab_is_eog(self.vocab, s.pending):
                    s.done = True
                    continue
                s.text += self.piece(s.pending)
                text = s.text.decode(errors="ignore")
                if s.new_tokens >= params.max_new_tokens or any(stop in text for stop in params.stop):
                    s.done = True
                    continue
                rows.append(s)
            if not rows:
                break
            t0 = time.perf_counter()
            self._decode([(s.pending, s.pos, s.seq, True) for s in rows])
            t["decode_s"] += time.perf_counter() - t0
            for i, s in enumerate(rows):
                s.pos += 1
                s.pending = self._sample(s, i)
        for s in seqs:
            lib.llama_sampler_free(s.sampler)
        self.generated += sum(s.new_tokens for s in seqs)
        return [s.text.decode(errors="ignore") for s in seqs]

    def _sample(self, s: _Sequence, row: int) -> int:
        t0 = time.perf_counter()
        tok = self.lib.llama_sampler_sample(s.sampler, self.ctx, row)
        self.timing["sample_s"] += time.perf_counter() - t0
        return tok


@dataclass
class _Sequence:
    seq: int
    pos: int
    sampler: object
    pending: int = -1
    text: bytes = b""
    new_tokens: int = 0
    done: bool = False


def _vllm_row(model: str, prompts: list[str], params, batch: int):
    """evo's default engine on the same prompts and settings, in one batch."""
    from evo.llm.embedded import resolve_model_path
    from evo.llm.hardware import cpu_has_bf16
    from evo.llm.vllm_backend import VLLMGenerator

    t0 = time.perf_counter()
    resolve_model_path(model)  # a first use de-quantises into the cache: not the engine's start
    prep_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    llm = VLLMGenerator(model, batch_size=batch)
    start_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        outputs = llm.generate(prompts, params)
        wall = time.perf_counter() - t0
    finally:
        llm.close()
    tokens = sum(g.num_tokens for samples in outputs for g in samples)
    print(f"vllm: {tokens} tokens in {wall:.1f} s = {tokens / wall:.1f} tok/s (engine start {start_s:.0f} s)", flush=True)
    return (f"vLLM CPU 0.32, batch {batch}", tokens, wall, {"start_s": start_s, "prep_s": prep_s, "dtype": "bfloat16" if cpu_has_bf16() else "float32"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--batches", default="1,8,16,32", help="sequences decoded together")
    ap.add_argument("--samples", type=int, default=32, help="generated samples per batch size (prompts x 2)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--so", default=None, help="llama-cpp-cffi's _llama_cpp_cpu .so (default: the installed one)")
    ap.add_argument("--vllm", action="store_true", help="also run evo's vLLM engine on the same workload")
    ap.add_argument("--results", default=str(ROOT / "experiments" / "results" / "bench_llamacpp.md"))
    args = ap.parse_args()

    from bench_generation import FLAGS, demo_workload
    from machine import cpu_flag_line, cpu_model, load_average, nproc

    from evo.llm.embedded import assemble_gguf

    lib, ffi = load_llama_cpp(args.so)
    system = ffi.string(lib.llama_print_system_info()).decode().strip()
    gguf = assemble_gguf(args.model)
    batches = [int(b) for b in args.batches.split(",")]
    prompts, params, _ = demo_workload(args.samples // 2)
    t0 = time.perf_counter()
    engine = LlamaCpp(lib, ffi, gguf, max(batches), 512 + params.max_new_tokens, args.threads)
    load_s = time.perf_counter() - t0
    before = load_average()
    rows = []
    for batch in batches:
        per_wave = max(1, batch // params.n)
        engine.timing = {k: 0.0 for k in engine.timing}
        engine.generated = engine.prompt_tokens = 0
        t0 = time.perf_counter()
        for start in range(0, len(prompts), per_wave):
            engine.generate(prompts[start:start + per_wave], params.n, params, seed=start)
        wall = time.perf_counter() - t0
        rows.append((f"llama.cpp, {batch} per wave", engine.generated, wall, dict(engine.timing)))
        print(f"batch {batch}: {engine.generated} tokens in {wall:.1f} s = {engine.generated / wall:.1f} tok/s "
              f"(prefill {engine.timing['prefill_s']:.1f} s, decode {engine.timing['decode_s']:.1f} s, "
              f"sampling {engine.timing['sample_s']:.1f} s)", flush=True)
    prompt_tokens = engine.prompt_tokens
    if args.vllm:
        rows.append(_vllm_row(args.model, prompts, params, max(batches)))
    lines = [
        f"# llama.cpp on the Q4_K_M file ({args.model}), the demo workload",
        "",
        f"`python experiments/bench_llamacpp.py --model {args.model} --batches {args.batches} "
        f"--samples {args.samples} --threads {args.threads}{' --vllm' if args.vllm else ''}`",
        "",
        f"- date: {date.today().isoformat()}; machine: {nproc()} cores, {cpu_model()}; flags: {cpu_flag_line(FLAGS)}",
        f"- load average before: {before}; after: {load_average()}",
        "- engine: llama-cpp-cffi 0.4.42's CPU library; llama.cpp system info: " + system,
        f"- model load (mmap) and context: {load_s:.1f} s; {args.samples} samples of at most "
        f"{params.max_new_tokens} tokens per row, 2 per prompt ({prompt_tokens:,} prompt tokens), the "
        "two samples of a prompt sharing its prefill",
        "",
        "| engine | generated tokens | wall s | generated tok/s | prefill s | decode s | sampling s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, tokens, wall, timing in rows:
        cells = [f"{timing[k]:.1f}" if k in timing else "-" for k in ("prefill_s", "decode_s", "sample_s")]
        lines.append(f"| {name} | {tokens} | {wall:.1f} | {tokens / wall:.1f} | {' | '.join(cells)} |")
    if "start_s" in rows[-1][3]:
        v = rows[-1][3]
        lines.append(f"\nvLLM ({v['dtype']}), not in its wall time: the model cache {v['prep_s']:.0f} s (a first "
                     f"use de-quantises), the engine start {v['start_s']:.0f} s.")
    Path(args.results).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()

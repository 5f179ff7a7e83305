"""Held-out measurement: pass@k of a generator on a domain's benchmark (``evo eval``).

A domain brings its benchmark (:meth:`evo.domain.Domain.benchmark`: prompts and a checker;
P3's test families, for instance); this module samples ``n`` completions per problem from a
base model or an adapter, has the benchmark check them, and reports pass@k for every
requested ``k <= n`` with the unbiased estimator (Chen et al., 2021) and a 95% bootstrap
interval over problems. Results append to a JSONL file (a campaign's ``heldout.jsonl`` by
default) so the curve over rounds can be plotted. ``evo`` never imports a domain here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from math import comb
from pathlib import Path
from typing import Any

import numpy as np

from evo.errors import EvoError
from evo.rundir import HELDOUT_FILE  # noqa: F401  (re-exported: the file name lives in evo.rundir)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct."""
    if k > n:
        raise ValueError("k exceeds the number of samples")
    return 1.0 if n - c < k else 1.0 - comb(n - c, k) / comb(n, k)


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement)."""
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return (float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, a.size, size=(n_boot, a.size))
    means = a[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def render_prompts(llm: Any, prompts: list[Any]) -> list[str]:
    """Text prompts as they are; chat prompts (message lists) through the model's chat
    template: a final assistant message is continued, otherwise a reply is started."""
    out = []
    for p in prompts:
        if isinstance(p, str):
            out.append(p)
            continue
        tokenizer = getattr(getattr(llm, "llm", llm), "tokenizer", None)
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise EvoError("chat-style prompts need a model with a chat template (transformers backend)")
        cont = bool(p) and p[-1]["role"] == "assistant"
        out.append(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=not cont,
                                                 continue_final_message=cont))
    return out


def evaluate(llm: Any, bench: Any, sandbox: Any, *, n: int = 4, ks: Sequence[int] = (1,),
             temperature: float = 0.8, top_p: float = 0.95, seed: int = 0,
             max_new_tokens: int | None = None, progress: str | Path | None = None,
             chunk: int = 16) -> dict[str, Any]:
    """Samples ``n`` completions per problem of ``bench`` (a :class:`evo.domain.Benchmark`),
    checks them; pass@k for each ``k <= n`` with a bootstrap interval over problems.

    With ``progress`` (a JSONL file) the problems go ``chunk`` at a time and each chunk's
    counts are appended as it ends: a rerun with the same arguments skips the chunks already
    there, so an interrupted evaluation of hours loses one chunk at most. Chunk ``i`` samples
    with seed ``seed + i``, so a resumed evaluation is the uninterrupted one."""
    from evo.llm import SamplingParams

    ks = sorted({k for k in ks if k <= n} or {min(n, 1)})
    t = time.time()
    params = SamplingParams(n=n, temperature=temperature, top_p=top_p,
                            max_new_tokens=max_new_tokens or bench.max_new_tokens, stop=bench.stop, seed=seed)
    if progress is None:
        gens = llm.generate(render_prompts(llm, bench.prompts), params)
        correct = [sum(row) for row in bench.check([[g.text for g in row] for row in gens], sandbox)]
    else:
        correct = _chunked_counts(llm, bench, sandbox, params, Path(progress), chunk)
    m = len(correct)
    out: dict[str, Any] = {"benchmark": bench.name, "n_puzzles": m, "n": n, "k": max(ks), "ks": ks,
                           "samples": m * n}
    for k in ks:
        per = [pass_at_k(n, c, k) for c in correct]
        out[f"pass@{k}"] = float(np.mean(per)) if per else 0.0
        out[f"pass@{k}_ci"] = list(bootstrap_ci(per, seed=seed))
    out.update(solved=[i for i, c in zip(bench.ids, correct) if c], correct=correct, wall_s=time.time() - t,
               max_new_tokens=params.max_new_tokens, temperature=temperature, seed=seed, **bench.meta)
    return out


def resume_chunks(ids: Sequence[str], settings: dict[str, Any], progress: Path, chunk: int, field: str,
                  compute: Callable[[int, int], list[Any]]) -> list[Any]:
    """Per id, the values ``compute(i, lo)`` returns for chunk ``i`` (the ids ``lo:lo + chunk``),
    each chunk appended to ``progress`` (JSONL, its values under ``field``) as it ends and read
    back on a rerun. A line counts only if it was written for the same ids and ``settings``;
    one cut short by a crash is redone. Held-out evaluation and the experiments' sampling
    resume this way."""
    if chunk < 1:
        raise EvoError("chunk must be at least 1")
    ids = list(ids)
    done: dict[int, list[Any]] = {}
    if progress.is_file():
        for line in progress.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            i = rec.get("chunk") if isinstance(rec, dict) else None
            if (isinstance(i, int) and rec.get("settings") == settings and isinstance(rec.get(field), list)
                    and rec.get("ids") == ids[i * chunk:(i + 1) * chunk]):
                done[i] = rec[field]
    progress.parent.mkdir(parents=True, exist_ok=True)
    out: list[Any] = []
    for i, lo in enumerate(range(0, len(ids), chunk)):
        if i not in done:
            done[i] = compute(i, lo)
            with progress.open("a") as fh:
                fh.write(json.dumps({"chunk": i, "ids": ids[lo:lo + chunk], "settings": settings,
                                     field: done[i]}) + "\n")
        out += done[i]
    return out


def _chunked_counts(llm: Any, bench: Any, sandbox: Any, params: Any, progress: Path, chunk: int) -> list[int]:
    """Correct samples per problem, ``chunk`` problems at a time, resumed from ``progress``."""
    from dataclasses import replace

    key = {"n": params.n, "temperature": params.temperature, "top_p": params.top_p,
           "max_new_tokens": params.max_new_tokens, "seed": params.seed}

    def counts(i: int, lo: int) -> list[int]:
        gens = llm.generate(render_prompts(llm, bench.prompts[lo:lo + chunk]), replace(params, seed=params.seed + i))
        # check() reads completions per problem of the whole benchmark: the other problems get none
        texts = [[]] * lo + [[g.text for g in row] for row in gens]
        part = bench.check(texts + [[]] * (len(bench.ids) - len(texts)), sandbox)[lo:lo + chunk]
        return [int(sum(row)) for row in part]

    return resume_chunks(bench.ids, key, progress, chunk, "correct", counts)


def resolve_model(model: str) -> tuple[str, str | None]:
    """(base model, adapter folder or None): a folder with ``adapter_config.json`` is an adapter."""
    path = Path(model)
    if (path / "adapter_config.json").is_file():
        round_file = path / "round.json"
        if round_file.is_file():
            base = json.loads(round_file.read_text())["base_model"]
        else:
            base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base:
            raise EvoError(f"adapter {path} names no base model")
        return base, str(path)
    return model, None


def run_eval(model: str, *, domain: str = "p3", split: str = "test", limit: int | None = None,
             n: int = 4, ks: Sequence[int] = (1,), prompt_style: str = "completion",
             domain_options: dict[str, Any] | None = None, out: str | Path | None = None,
             batch_size: int = 16, max_new_tokens: int | None = None, seed: int = 0,
             series: str = "archive", round: int | None = None, device: str = "auto",
             backend: str = "transformers") -> dict[str, Any]:
    """Loads ``model`` (a base model or an adapter folder), runs ``domain``'s benchmark,
    appends the record to ``out``."""
    from evo.domain import get_domain
    from evo.llm import hardware, load_generator
    from evo.llm.factory import check_backend
    from evo.sandbox import Sandbox

    check_backend(backend)  # before the model is resolved (a first use de-quantises it)
    if n < 1:
        raise EvoError("n must be at least 1")
    if any(k < 1 or k > n for k in ks):
        raise EvoError(f"every k must be between 1 and n={n} (n samples per problem)")
    if limit is not None and limit < 1:
        raise EvoError("--limit must be at least 1")
    bench = get_domain(domain, **(domain_options or {})).benchmark(split, limit, seed, prompt_style)
    base, adapter = resolve_model(model)
    if round is None and adapter and (Path(adapter) / "round.json").is_file():
        round = json.loads((Path(adapter) / "round.json").read_text())["round"]
    llm = load_generator(backend, base, adapter=adapter, batch_size=batch_size, device=device)
    try:
        with Sandbox() as sandbox:
            result = evaluate(llm, bench, sandbox, n=n, ks=ks, max_new_tokens=max_new_tokens, seed=seed)
    finally:
        if hasattr(llm, "close"):  # a vLLM engine holds GBs in its own processes
            llm.close()
    record = {"model": base, "adapter": adapter, "series": series if adapter else "base", "domain": domain,
              "round": round or 0, "split": split, "limit": limit, **result, "backend": backend,
              "created": time.time(), "date": time.strftime("%Y-%m-%d"), **hardware.machine_facts()}
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    return record


def plot_heldout(path: str | Path, out: str | Path | None = None) -> Path:
    """Plots pass@1 / pass@k by round from a ``heldout.jsonl``: one line per series (the base
    model is every series' round 0); the latest record of each (series, round) counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if not path.is_file():
        raise EvoError(f"no held-out results at {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        latest[(r.get("series", "archive"), r["round"])] = r
    base = latest.pop(("base", 0), None)
    fig, ax = plt.subplots(figsize=(6, 4))
    for series in sorted({s for s, _ in latest} or {"base"}):
        pts = sorted((rnd, r) for (s, rnd), r in latest.items() if s == series)
        if base is not None and not any(rnd == 0 for rnd, _ in pts):
            pts.insert(0, (0, base))
        k = pts[0][1]["k"]
        ax.plot([p for p, _ in pts], [r["pass@1"] for _, r in pts], "o-", label=f"{series} pass@1")
        ax.plot([p for p, _ in pts], [r[f"pass@{k}"] for _, r in pts], "s--", label=f"{series} pass@{k}")
    ax.set_xlabel("fine-tuning round (0 = base)")
    ax.set_ylabel("held-out pass rate")
    ax.set_title(f"held-out {rows[-1].get('benchmark', 'p3-test')}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out = Path(out) if out else path.with_suffix(".png")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

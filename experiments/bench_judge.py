"""What scoring each judge prompt alone costs, against batching with left padding, and how
far padding moves a score, in bfloat16 and float32 on this CPU.

    python experiments/bench_judge.py [--texts 24] [--batch 8]

The text_feedback judge (SmolLM2-135M, its seeds' judge prompts) scores the same texts
three ways per dtype: each prompt alone and unpadded (what
``domains.text_feedback.judge.yes_probability`` does), in left-padded batches (what it did
before issue 28), and alone again (to show the unpadded score repeats bit for bit).
Writes ``experiments/results/bench_judge.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import cpu_flags, cpu_model, load_average  # noqa: E402


def padded_batches(model, tokenizer, texts: list[str], batch: int, yes: list[int], no: list[int]) -> list[float]:
    """The judge before issue 28: left-padded batches, positions counted per row."""
    import torch

    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    out: list[float] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(texts), batch):
                enc = tokenizer(texts[start:start + batch], return_tensors="pt", padding=True,
                                add_special_tokens=False)
                pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                logp = torch.log_softmax(model(**enc, position_ids=pos).logits[:, -1, :].float(), dim=-1)
                out += torch.sigmoid(torch.logsumexp(logp[:, yes], -1) - torch.logsumexp(logp[:, no], -1)).tolist()
    finally:
        tokenizer.padding_side = side
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=24)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--out", default="experiments/results/bench_judge")
    args = ap.parse_args()
    import torch

    from domains.text_feedback.domain import TextFeedbackDomain
    from domains.text_feedback.judge import NO, YES, _token_ids, fence_text, yes_probability
    from evo.llm import TransformersLLM

    torch.set_num_threads(int(os.environ.get("EVO_THREADS", "2")))
    domain = TextFeedbackDomain()
    stories = [s["text"] for s in domain.seeds()]
    prompts = [p.replace("{text}", fence_text(t)) for t in stories for p, _ in domain._prompts][: args.texts]
    rows = []
    for dtype in ("bfloat16", "float32"):
        llm = TransformersLLM("smollm2-135m", dtype=dtype)
        yes_probability(llm, prompts[:2], chat=False)  # warm-up
        t0 = time.perf_counter()
        alone = yes_probability(llm, prompts, chat=False)
        t_alone = time.perf_counter() - t0
        again = yes_probability(llm, prompts[::-1], chat=False)[::-1]
        yes, no = _token_ids(llm.tokenizer, YES), _token_ids(llm.tokenizer, NO)
        t0 = time.perf_counter()
        batched = padded_batches(llm.model, llm.tokenizer, prompts, args.batch, yes, no)
        t_batched = time.perf_counter() - t0
        rows.append({"dtype": dtype, "prompts": len(prompts), "alone_s": round(t_alone, 2),
                     "batched_s": round(t_batched, 2), "alone_per_batched": round(t_alone / t_batched, 2),
                     "max_padding_shift": max(abs(a - b) for a, b in zip(alone, batched)),
                     "alone_repeats_exactly": alone == again})
        print(rows[-1], flush=True)
    meta = {"date": dt.date.today().isoformat(), "cpu": cpu_model(), "flags": cpu_flags(),
            "threads": torch.get_num_threads(), "load": load_average(), "batch": args.batch}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [f"# Judge: each prompt alone vs left-padded batches of {args.batch}", "",
             f"{meta['date']}, {meta['cpu']}, flags {meta['flags']}, {meta['threads']} threads, "
             f"load {meta['load']}", "",
             "| dtype | prompts | alone (s) | batched (s) | alone / batched | max score shift from padding "
             "| alone repeats bit for bit |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['dtype']} | {r['prompts']} | {r['alone_s']} | {r['batched_s']} | {r['alone_per_batched']} "
              f"| {r['max_padding_shift']:.2e} | {r['alone_repeats_exactly']} |" for r in rows]
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

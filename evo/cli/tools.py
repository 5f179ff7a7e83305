"""Commands around the loop: ``verify``, ``sandbox``, ``finetune``, ``eval`` (``eval-solve``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from evo.cli.app import _fail, app, console


@app.command()
def verify(
    domain: Annotated[str, typer.Argument(help="domain name, e.g. p3")],
    file: Annotated[Path, typer.Argument(help="JSONL file, one item per line")],
) -> None:
    """Verify items from a JSONL file (any shipped domain); prints one JSON line per item:
    its line number, verdict (valid, invalid, trivial), reason, and fitness where the domain
    has one without a generator (code_tests: test strength), else null. Exits 0 once the
    file is read, whatever the verdicts; a malformed line is an invalid verdict for it."""
    from evo.domain import get_domain
    from evo.sandbox import Sandbox

    dom = get_domain(domain)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}")
    results: list[dict] = []
    items, where = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        results.append({"line": n, "verdict": "invalid", "reason": None, "fitness": None})
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise TypeError(f"a line must be a JSON object, not {type(raw).__name__}")
            item = dom.parse(dom.from_record(raw))
        except Exception as exc:  # data from any source: a verdict for this line, never a crash
            results[-1]["reason"] = f"line {n}: {type(exc).__name__}: {str(exc)[:300]}"
            continue
        where.append(len(results) - 1)
        items.append(item)
    if items:
        try:
            sandbox = Sandbox()
        except RuntimeError as exc:  # e.g. bwrap demanded where none works
            _fail(str(exc))
        with sandbox:
            verdicts = dom.verify(items, sandbox)
            valid = [k for k, v in enumerate(verdicts) if v.valid]
            scores = dom.score_without_generator([items[k] for k in valid], sandbox) if valid else None
        for i, v in zip(where, verdicts):
            results[i].update(verdict=v.verdict, reason=v.reason)
        for k, score in zip(valid, scores or []):
            results[where[k]]["fitness"] = score.fitness
    for r in results:
        print(json.dumps(r))


@app.command()
def sandbox(
    file: Annotated[Path, typer.Argument(help="Python file to run")],
    timeout: Annotated[float, typer.Option(help="wall-time limit, seconds")] = 2.0,
    memory: Annotated[int, typer.Option(help="memory limit, MB")] = 512,
    isolation: Annotated[str, typer.Option(
        help="auto (bwrap if it works here, else rlimits only), bwrap (refuse without it), rlimits")] = "auto",
) -> None:
    """Run one file under the sandbox's default limits; prints the verdict as JSON (stdout)
    and the isolation in use (stderr)."""
    from evo.sandbox import SandboxLimits, run_file

    if not file.is_file():
        _fail(f"no such file: {file}")
    if isolation not in ("auto", "bwrap", "rlimits"):
        _fail(f"--isolation must be auto, bwrap or rlimits, not {isolation!r}")
    limits = SandboxLimits(timeout_s=timeout, memory_mb=memory, isolation=isolation)
    try:
        verdict = run_file(file, limits, on_start=lambda sb: console.print(
            f"isolation: {sb.describe()}", highlight=False, soft_wrap=True, markup=False))
    except RuntimeError as exc:  # --isolation bwrap where no bwrap works
        _fail(str(exc))
    print(json.dumps(verdict.to_dict()))



@app.command()
def finetune(
    directory: Annotated[Path, typer.Argument(help="campaign directory (a finished or paused campaign)")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override a finetune setting KEY=VALUE, e.g. --set max_steps=20 --set kl_coef=0.1")] = None,
    no_rescore: Annotated[bool, typer.Option("--no-rescore", help="skip re-scoring the elites")] = False,
    eval_limit: Annotated[int | None, typer.Option(
        help="then run eval-solve on N held-out test puzzles (appends to DIR/heldout.jsonl)")] = None,
    k: Annotated[int, typer.Option(help="eval-solve: samples per puzzle")] = 4,
) -> None:
    """One self-improvement round: LoRA fine-tune the generator on the campaign's elites
    (plus seed anchors), save the adapter to DIR/adapters/round-N/, re-score the archive."""
    from evo.config import parse_overrides
    from evo.finetune import finetune_campaign

    overrides = parse_overrides(set_ or [])
    with console.status("fine-tuning (LoRA via TRL; minutes on CPU)..."):
        record = finetune_campaign(directory, overrides, rescore=not no_rescore)
    m, rs = record["metrics"], record.get("rescore")
    table = Table(title=f"finetune round {record['round']} -> {record['adapter']}", show_header=False)
    rows = [("examples", f"{record['n_examples']} ({record['n_new_examples']} new, "
                         f"seed share {record['mix']['seed_share']:.0%})"),
            ("anchors", ", ".join(f"{k} {v}" for k, v in record["anchors"].items())),
            ("data hash", record["data_hash"][:16]),
            ("steps / loss", f"{m['steps']} / {m['first_loss']} -> {m['last_loss']}"),
            ("train time", f"{m['train_s']:.1f} s on {m['device']}")]
    if rs:
        rows.append(("re-score", f"{rs['elites']} elites, mean fitness {rs['mean_fitness_before']:.3f} -> "
                                 f"{rs['mean_fitness_after']:.3f}, QD {rs['qd_score_before']:.2f} -> "
                                 f"{rs['qd_score_after']:.2f}"))
    for key, value in rows:
        table.add_row(key, str(value))
    Console().print(table)
    if eval_limit:
        from evo.heldout import run_eval
        from evo.rundir import HELDOUT_FILE

        with console.status(f"eval on {eval_limit} held-out puzzles..."):
            r = run_eval(record["adapter"], limit=eval_limit, n=k, ks=(1, k), out=directory / HELDOUT_FILE)
        print(json.dumps({key: r[key] for key in ("series", "round", "n_puzzles", "pass@1", f"pass@{k}")}))


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="base model (alias, HF id, folder) or an "
                                       "adapter folder (DIR/adapters/round-N)")] = "smollm2-135m",
    domain: Annotated[str, typer.Option(help="whose benchmark: a domain name (p3: its test families)")] = "p3",
    split: Annotated[str, typer.Option(help="benchmark split: test (held-out) or train")] = "test",
    limit: Annotated[int | None, typer.Option(help="first N problems (seeded order)")] = None,
    n: Annotated[int, typer.Option(help="samples per problem")] = 10,
    k: Annotated[list[int] | None, typer.Option(help="pass@k for each k <= n (repeat: --k 1 --k 10)")] = None,
    prompt_style: Annotated[str, typer.Option(help="completion, completion_return, chat or chat_free (domain-specific)")] = "completion",
    data: Annotated[Path | None, typer.Option(help="P3 data folder [default: $EVO_P3_DATA or ../shared/data/p3]")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="append the result to this JSONL "
                                             "[default: DIR/heldout.jsonl for an adapter in DIR]")] = None,
    series: Annotated[str, typer.Option(help="curve name in the plot, e.g. archive or control")] = "archive",
    max_new_tokens: Annotated[int | None, typer.Option(help="tokens per answer [default: the benchmark's]")] = None,
    batch_size: Annotated[int, typer.Option(help="prompts per forward pass")] = 16,
    seed: Annotated[int, typer.Option(help="sampling and problem-order seed")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    backend: Annotated[str, typer.Option(help="generator backend: auto (vllm where it runs, else transformers), "
                                         "vllm, transformers or ctranslate2")] = "auto",
    plot: Annotated[bool, typer.Option("--plot", help="then plot the curve of --out (PNG beside it)")] = False,
) -> None:
    """Held-out pass@k of any base model or adapter on a domain's benchmark (unbiased estimator,
    95% bootstrap intervals over problems); every answer checked in the sandbox."""
    import os

    from evo.heldout import plot_heldout, resolve_model, run_eval
    from evo.rundir import HELDOUT_FILE

    ks = k or [1, n]
    if data is not None:
        os.environ["EVO_P3_DATA"] = str(data)
    _, adapter = resolve_model(model)
    if out is None and adapter and Path(adapter).parent.name == "adapters":
        out = Path(adapter).parent.parent / HELDOUT_FILE
    with console.status("sampling and checking answers..."):
        r = run_eval(model, domain=domain, split=split, limit=limit, n=n, ks=ks, prompt_style=prompt_style,
                     out=out, series=series, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed,
                     device=device, backend=backend)
    keys = ["model", "adapter", "benchmark", "series", "round", "split", "n_puzzles", "n"]
    keys += [f"pass@{kk}{s}" for kk in r["ks"] for s in ("", "_ci")] + ["wall_s"]
    print(json.dumps({key: r[key] for key in keys}))
    if plot and out is not None:
        print(plot_heldout(out))


@app.command("eval-solve")
def eval_solve_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="base model or adapter folder")] = "smollm2-135m",
    split: Annotated[str, typer.Option(help="P3 split: test (held-out) or train")] = "test",
    limit: Annotated[int | None, typer.Option(help="first N puzzles (one per family, seeded order)")] = None,
    k: Annotated[int, typer.Option(help="samples per puzzle (pass@1 and pass@k)")] = 4,
    data: Annotated[Path | None, typer.Option(help="P3 data folder [default: ../shared/data/p3]")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="append the result to this JSONL")] = None,
    series: Annotated[str, typer.Option(help="curve name in the plot, e.g. archive or control")] = "archive",
    max_new_tokens: Annotated[int, typer.Option(help="tokens per solution")] = 96,
    seed: Annotated[int, typer.Option(help="sampling and puzzle-order seed")] = 0,
    plot: Annotated[bool, typer.Option("--plot", help="then plot the curve of --out (PNG beside it)")] = False,
) -> None:
    """P3 held-out pass@1 and pass@k with k samples: `evo eval --domain p3 --n K` (kept for old scripts)."""
    eval_cmd(model=model, domain="p3", split=split, limit=limit, n=k, k=[1, k], prompt_style="completion",
             data=data, out=out, series=series, max_new_tokens=max_new_tokens, batch_size=16, seed=seed,
             device="auto", backend="transformers", plot=plot)



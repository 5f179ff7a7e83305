"""The ``evo`` command line: run and inspect campaigns, verify items, try the sandbox."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from evo.errors import EvoError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="evo: evolve diverse, verified synthetic data with an LLM and MAP-Elites.")
console = Console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="campaign YAML")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="campaign directory")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="continue the campaign in DIR")] = None,
    iterations: Annotated[int | None, typer.Option(help="override: iterations")] = None,
    seed: Annotated[int | None, typer.Option(help="override: random seed")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override KEY=VALUE (dotted keys)")] = None,
) -> None:
    """Run a campaign and print its summary. Rerunning the same command on the same
    directory resumes it; Ctrl-C finishes the current batch and stops (twice: at once)."""
    from evo.campaign import Campaign
    from evo.config import load_config, parse_overrides, validate_config

    overrides = parse_overrides(set_ or [])
    if iterations is not None:
        overrides["iterations"] = iterations
    if seed is not None:
        overrides["seed"] = seed
    if resume is not None:
        from archives import CampaignStore

        saved = CampaignStore.open(resume).get_meta("config")
        if saved is None:
            _fail(f"{resume} holds no campaign config (it never finished its set-up)")
        cfg, out = validate_config(saved, overrides), resume
    else:
        if out is None:
            _fail("--out DIR is required (or --resume DIR)")
        cfg = load_config(config, overrides)
    with console.status("loading model, embedder and sandbox..."):
        campaign = Campaign(cfg, out)
    if campaign.resumed:
        console.print(f"resuming the campaign in {out} at iteration {campaign.next_iteration()}")
    _stop_on_signals(campaign)
    try:
        with _progress() as progress:
            task = progress.add_task("evolving", total=cfg.iterations, stats="",
                                     completed=campaign.next_iteration() - 1)

            def on_iteration(s: dict) -> None:
                progress.update(task, completed=s["iteration"], stats=(
                    f"elites {s['num_elites']}  cov {s['coverage']:.1%}  QD {s['qd_score']:.1f}  "
                    f"valid {s['valid']}/{s['candidates']}"))

            summary = campaign.run(on_iteration)
    finally:
        campaign.close()
    _print_summary(summary)
    if campaign.stop_requested and summary["iterations"] < cfg.iterations:
        console.print(f"stopped after iteration {summary['iterations']}; everything is saved. "
                      f"Resume with: evo run --resume {out}")


def _stop_on_signals(campaign) -> None:
    """First SIGINT/SIGTERM: finish the batch in flight, save, exit 0. Second: stop now
    (the store's transactions keep it consistent; the batch in flight is lost)."""
    import signal

    def handler(signum, frame):
        if campaign.stop_requested:
            raise KeyboardInterrupt
        campaign.stop_requested = True
        console.print("stopping after the current batch (Ctrl-C again to stop at once)...")

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    TextColumn("{task.fields[stats]}"), console=console)


def _print_summary(s: dict) -> None:
    Console().print(_summary_table(s))


def _summary_table(s: dict) -> Table:
    table = Table(title="campaign summary", show_header=False)
    rows = [
        ("elites", f"{s['num_elites']} ({s['evolved_elites']} evolved, the rest seeds)"),
        ("coverage", f"{s['coverage']:.1%}"),
        ("QD-score", f"{s['qd_score']:.2f}"),
        ("max fitness", f"{s['obj_max']:.3f}"),
        ("valid rate", f"{s['valid_rate']:.1%} ({s['valid']}/{s['candidates']} generated)"),
        ("verdicts", ", ".join(f"{k} {v}" for k, v in sorted(s["verdicts"].items())) or "-"),
        ("on border", str(s["border"])),
        ("iterations", str(s["iterations"])),
        ("wall time", f"{s['wall_s']:.1f} s"),
        ("files", s["directory"]),
    ]
    for k, v in rows:
        table.add_row(k, v)
    return table


@app.command()
def status(
    directory: Annotated[Path, typer.Argument(help="campaign directory")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="re-render every few seconds until "
                                         "the campaign finishes (Ctrl-C stops watching)")] = False,
    interval: Annotated[float, typer.Option(help="--follow: seconds between refreshes")] = 3.0,
) -> None:
    """Per-iteration stats and the summary of a campaign (--follow: watch a running one)."""
    view, done = _status_view(directory, last=20 if follow else None)
    if not follow:
        Console().print(view)
        return
    import time

    from rich.live import Live

    try:
        with Live(view, console=Console(), auto_refresh=False, vertical_overflow="visible") as live:
            while not done:
                time.sleep(interval)
                view, done = _status_view(directory, last=20)
                live.update(view, refresh=True)
    except KeyboardInterrupt:
        pass


def _status_view(directory: Path, last: int | None = None):
    """(renderable, finished?): the iteration table (the ``last`` rows), progress and summary."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar

    from archives import Archive, CampaignStore, Measures, rebuild_archive
    from evo.campaign import MEASURES_FILE, summarize

    store = CampaignStore.open(directory)
    try:
        cfg = store.get_meta("config") or {}
        if not (directory / MEASURES_FILE).exists():
            _fail(f"{directory} has no {MEASURES_FILE}; the campaign never finished its set-up")
        archive = rebuild_archive(store, Archive(Measures.load(directory / MEASURES_FILE),
                                                 cfg.get("archive", {}).get("dims"), cfg.get("seed", 0)))
        iters = store.iterations()
        table = Table(title=f"{cfg.get('name', 'campaign')} ({cfg.get('domain', '?')})")
        for col in ("iter", "cands", "valid", "added", "elites", "coverage", "QD", "max", "wall s"):
            table.add_column(col, justify="right")
        for it in iters[-last:] if last else iters:
            table.add_row(str(it["iteration"]), str(it["candidates"]), str(it["valid"]), str(it["added"]),
                          str(it["num_elites"]), f"{it['coverage']:.1%}", f"{it['qd_score']:.2f}",
                          f"{it['obj_max']:.2f}", f"{it['wall_s']:.1f}")
        summary = summarize(store, archive, directory)
    finally:
        store.close()
    total, done = int(cfg.get("iterations", 0)), summary["iterations"]
    line = Table.grid(padding=(0, 1))
    line.add_row(f"iteration {done}/{total or '?'}", ProgressBar(total=max(total, 1), completed=done, width=40))
    return Group(table, line, _summary_table(summary)), bool(total) and done >= total


@app.command()
def verify(
    domain: Annotated[str, typer.Argument(help="domain name, e.g. p3")],
    file: Annotated[Path, typer.Argument(help="JSONL file, one item per line")],
) -> None:
    """Verify items from a JSONL file; prints one JSON verdict per line."""
    from evo.domain import ParseError, Verification, get_domain
    from evo.sandbox import Sandbox

    dom = get_domain(domain)
    try:
        lines = file.read_text().splitlines()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")
    results: list[Verification | None] = []
    items, where = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            item = dom.parse(dom.from_record(raw))
        except (json.JSONDecodeError, ParseError, TypeError, KeyError) as exc:
            results.append(Verification("invalid", f"line {n}: {type(exc).__name__}: {exc}"))
            continue
        results.append(None)
        where.append(len(results) - 1)
        items.append(item)
    with Sandbox() as sandbox:
        for i, v in zip(where, dom.verify(items, sandbox)):
            results[i] = v
    for v in results:
        print(json.dumps({"verdict": v.verdict, "reason": v.reason}))


@app.command()
def sandbox(
    file: Annotated[Path, typer.Argument(help="Python file to run")],
    timeout: Annotated[float, typer.Option(help="wall-time limit, seconds")] = 2.0,
    memory: Annotated[int, typer.Option(help="memory limit, MB")] = 512,
) -> None:
    """Run one file under the sandbox's default limits; prints the verdict as JSON."""
    from evo.sandbox import SandboxLimits, run_file

    if not file.is_file():
        _fail(f"no such file: {file}")
    print(json.dumps(run_file(file, SandboxLimits(timeout_s=timeout, memory_mb=memory)).to_dict()))


@app.command()
def export(
    directory: Annotated[Path, typer.Argument(help="campaign directory")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")],
    format: Annotated[str, typer.Option("--format", "-f", help="jsonl, parquet or hf")] = "jsonl",
    min_fitness: Annotated[float | None, typer.Option(help="keep items with fitness >= X")] = None,
    per_cell: Annotated[int | None, typer.Option(help="keep up to N best items per cell")] = None,
    include_history: Annotated[bool, typer.Option(
        "--include-history", help="every valid candidate, not only the elites")] = False,
    split: Annotated[float | None, typer.Option(help="train share, e.g. 0.9 (in (0, 1])")] = None,
    dedup: Annotated[float | None, typer.Option(
        help="drop near-duplicates above this cosine similarity")] = None,
    split_threshold: Annotated[float | None, typer.Option(
        help="similarity that keeps items on one side of the split [default: --dedup or 0.95]")] = None,
    seed: Annotated[int, typer.Option(help="random seed of the split")] = 0,
    reverify: Annotated[bool, typer.Option("--reverify", help="re-run the verifier, drop failures")] = False,
    no_seeds: Annotated[bool, typer.Option("--no-seeds", help="leave the seed items out")] = False,
    force: Annotated[bool, typer.Option("--force", help="replace a non-empty --out")] = False,
) -> None:
    """Export the campaign as a fine-tuning dataset (with a dataset card)."""
    from evo.export import export_campaign

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True)
    tasks: dict[str, int] = {}

    def on_progress(phase: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()  # only once there is work to show: a bad argument stays one line
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    try:
        stats = export_campaign(directory, out, format=format, min_fitness=min_fitness,
                                per_cell=per_cell, include_history=include_history, split=split,
                                dedup=dedup, seed=seed, reverify=reverify, include_seeds=not no_seeds,
                                force=force, split_threshold=split_threshold, progress=on_progress)
    finally:
        if tasks:
            bar.stop()
    table = Table(title=f"export -> {stats['out']} ({stats['format']})", show_header=False)
    rows = [("selected", f"{stats['pool']} ({stats['source']})"),
            ("seeds dropped", stats["dropped_seeds"]), ("below min fitness", stats["dropped_min_fitness"]),
            ("exact duplicates", stats["removed_exact"]), ("near duplicates", stats["removed_near"]),
            ("over per-cell cap", stats["dropped_per_cell"]), ("failed re-verify", stats["removed_reverify"]),
            ("exported", f"{stats['exported']} ({stats['seeds']} seeds, {stats['cells']} cells)")]
    rows += [(f"split {k}", v) for k, v in stats["splits"].items()]
    for k, v in rows:
        table.add_row(k, str(v))
    Console().print(table)


@app.command()
def plot(directory: Annotated[Path, typer.Argument(help="campaign directory")]) -> None:
    """Archive heatmap, QD/coverage/max-fitness curves, valid rates, fitness histogram -> DIR/plots/."""
    from evo.plot import plot_campaign

    with _steps("plotting", 5) as step:
        paths = plot_campaign(directory, on_step=step)
        step("done")
    for p in paths:
        print(p)


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="campaign directory")],
    other: Annotated[Path | None, typer.Argument(help="a second campaign to compare with")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file (default DIR/report.html)")] = None,
) -> None:
    """One self-contained HTML report: plots, summary, interactive heatmap (and a comparison)."""
    from evo.report import build_report

    dirs = [directory] + ([other] if other else [])
    with _steps("report", 1 + 2 * len(dirs) + (len(dirs) > 1)) as step:
        path = build_report(dirs, out, on_step=step)
        step("done")
    print(path)


class _steps:
    """A Rich progress bar advanced once per named step (``step(name)``)."""

    def __init__(self, what: str, total: int) -> None:
        self.progress = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[step]}"), console=console, transient=True)
        self.task = self.progress.add_task(what, total=total, step="")
        self.started = False

    def __enter__(self):
        self.progress.start()
        return self

    def __call__(self, name: str) -> None:
        if self.started:
            self.progress.advance(self.task)
        self.started = True
        self.progress.update(self.task, step=name)

    def __exit__(self, *_) -> None:
        self.progress.stop()



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
        from evo.evalsolve import HELDOUT_FILE, run_eval_solve

        with console.status(f"eval-solve on {eval_limit} held-out puzzles..."):
            r = run_eval_solve(record["adapter"], limit=eval_limit, k=k, out=directory / HELDOUT_FILE)
        print(json.dumps({key: r[key] for key in ("series", "round", "n_puzzles", "pass@1", f"pass@{k}")}))


@app.command("eval-solve")
def eval_solve_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="base model (alias, HF id, folder) or an "
                                       "adapter folder (DIR/adapters/round-N)")] = "smollm2-135m",
    split: Annotated[str, typer.Option(help="P3 split: test (held-out) or train")] = "test",
    limit: Annotated[int | None, typer.Option(help="first N puzzles (one per family, seeded order)")] = None,
    k: Annotated[int, typer.Option(help="samples per puzzle (pass@1 and pass@k)")] = 4,
    data: Annotated[Path | None, typer.Option(help="P3 data folder [default: ../shared/data/p3]")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="append the result to this JSONL "
                                             "[default: DIR/heldout.jsonl for an adapter in DIR]")] = None,
    series: Annotated[str, typer.Option(help="curve name in the plot, e.g. archive or control")] = "archive",
    max_new_tokens: Annotated[int, typer.Option(help="tokens per solution")] = 96,
    seed: Annotated[int, typer.Option(help="sampling and puzzle-order seed")] = 0,
    plot: Annotated[bool, typer.Option("--plot", help="then plot the curve of --out (PNG beside it)")] = False,
) -> None:
    """Held-out pass@k: sample k solutions per P3 puzzle of the split, verify them in the sandbox."""
    from evo.evalsolve import HELDOUT_FILE, plot_heldout, resolve_model, run_eval_solve

    _, adapter = resolve_model(model)
    if out is None and adapter and Path(adapter).parent.name == "adapters":
        out = Path(adapter).parent.parent / HELDOUT_FILE
    with console.status("sampling and verifying solutions..."):
        r = run_eval_solve(model, split=split, limit=limit, k=k, data_dir=data, out=out, series=series,
                           max_new_tokens=max_new_tokens, seed=seed)
    print(json.dumps({key: r[key] for key in ("model", "adapter", "series", "round", "split", "n_puzzles",
                                              "parsed_rate", "pass@1", f"pass@{k}", "wall_s")}))
    if plot and out is not None:
        print(plot_heldout(out))


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    from pydantic import ValidationError

    try:
        app()
    except EvoError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ValidationError as exc:
        err = exc.errors()[0]
        console.print(f"[red]error:[/red] {'.'.join(map(str, err['loc']))}: {err['msg']}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()

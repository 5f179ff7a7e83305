"""Commands that turn a campaign into something to use or look at: ``export``, ``plot``, ``report``."""

from __future__ import annotations

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
)
from rich.table import Table

from evo.cli.app import app, console


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




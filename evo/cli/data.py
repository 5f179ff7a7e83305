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
    format: Annotated[str, typer.Option("--format", "-f", help=(
        "sft rows, dpo pairs or kto rows (jsonl, parquet or hf here mean sft rows in "
        "that file format)"))] = "sft",
    files: Annotated[str, typer.Option("--files", help="jsonl, parquet or hf")] = "jsonl",
    task: Annotated[str, typer.Option("--task", help="sft framing: generate, solve or both")] = "generate",
    decontaminate: Annotated[str, typer.Option(
        "--decontaminate", help="drop, flag or off: items overlapping a held-out benchmark")] = "drop",
    against: Annotated[list[str] | None, typer.Option(
        "--against", help="benchmark name or file of items (repeat; default: every benchmark "
        "the installed domains bring)")] = None,
    push_to_hub: Annotated[str | None, typer.Option(
        "--push-to-hub", help="then push the dataset to this Hub repo (needs the network)")] = None,
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
        stats = export_campaign(directory, out, format=format, files=files, task=task,
                                decontaminate=decontaminate, against=against, min_fitness=min_fitness,
                                per_cell=per_cell, include_history=include_history, split=split,
                                dedup=dedup, seed=seed, reverify=reverify, include_seeds=not no_seeds,
                                force=force, split_threshold=split_threshold, progress=on_progress)
    finally:
        if tasks:
            bar.stop()
    table = Table(title=f"export -> {stats['out']} ({stats['format']})", show_header=False)
    labels = [("dropped_seeds", "seeds dropped"), ("dropped_min_fitness", "below min fitness"),
              ("removed_exact", "exact duplicates"), ("removed_near", "near duplicates"),
              ("dropped_per_cell", "over per-cell cap"), ("removed_reverify", "failed re-verify"),
              ("removed_contaminated", "benchmark overlap"), ("pairs", "preference pairs")]
    rows = [("selected", f"{stats['pool']} ({stats['source']})")]
    rows += [(label, stats[k]) for k, label in labels if k in stats]
    rows += [("exported", f"{stats['exported']} rows ({stats['cells']} cells)")]
    for name, why in stats.get("decontamination", {}).get("skipped", {}).items():
        rows.append((f"not checked: {name}", why))
    rows += [(f"split {k}", v) for k, v in stats["splits"].items()]
    for k, v in rows:
        table.add_row(k, str(v))
    Console().print(table)
    if push_to_hub:
        from evo.export_hub import push_to_hub as push

        print(push(out, push_to_hub))


@app.command("check-contamination")
def check_contamination(
    source: Annotated[Path, typer.Argument(help="campaign directory, exported dataset folder, "
                                                "or a JSONL/Parquet file")],
    against: Annotated[list[str] | None, typer.Option(
        "--against", help="benchmark name or file of items (repeat; default: every benchmark "
        "the installed domains bring)")] = None,
    cosine: Annotated[float, typer.Option(help="embedding similarity that counts as overlap")] = 0.95,
    jaccard: Annotated[float, typer.Option(help="MinHash Jaccard that counts as overlap")] = 0.8,
    show: Annotated[int, typer.Option(help="list up to N flagged items")] = 20,
) -> None:
    """Which items of a campaign or dataset overlap a held-out benchmark (exit 1 if any)."""
    from evo.decontam_check import check

    report, ids = check(source, against, cosine=cosine, jaccard=jaccard)
    summary = report.summary()
    table = Table(title=f"{source}: {summary['flagged']} of {summary['total']} items overlap")
    for col in ("benchmark", "items", "flagged", *summary["settings"]["methods"]):
        table.add_column(col)
    for name, n in summary["checked"].items():
        per = summary["per_source"][name]
        table.add_row(name, str(n), str(per["items"]),
                      *[str(per[m]) for m in summary["settings"]["methods"]])
    for name, why in summary["skipped"].items():
        table.add_row(name, "not checked", why)
    Console().print(table)
    for i in report.contaminated[:show]:
        hits = ", ".join(f"{h.source}:{h.item_id} ({h.method} {h.score:.2f})" for h in report.hits[i])
        print(f"{ids[i]}: {hits}")
    raise typer.Exit(1 if summary["flagged"] else 0)


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




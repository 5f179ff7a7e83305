"""Commands that turn a campaign into something to use or look at: ``export``, ``plot``, ``report``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

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


def _with_export_options(command: Callable[..., None]) -> Callable[..., None]:
    """One typer option per :class:`~evo.export.ExportConfig` field (its flags, default and
    help text), collected into the ``options`` argument ``command`` receives."""
    from evo.export.options import ExportConfig

    fields = ExportConfig.model_fields
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "options"]
    added = []
    for name, field in fields.items():
        annotation = field.annotation
        default = field.default
        if field.json_schema_extra["invert"]:  # --no-seeds: a switch that sets the field False
            annotation, default = bool, False
        option = typer.Option(*ExportConfig.cli_flags(name), help=field.description)
        added.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                       annotation=Annotated[annotation, option], default=default))

    def run(**values: Any) -> None:
        chosen = {name: values.pop(name) for name in fields}
        for name in fields:
            if fields[name].json_schema_extra["invert"]:
                chosen[name] = not chosen[name]
        command(options=ExportConfig(**chosen), **values)

    run.__name__, run.__doc__ = command.__name__, command.__doc__
    run.__signature__ = inspect.Signature(own + added)  # type: ignore[attr-defined]
    return run


@app.command()
@_with_export_options
def export(
    directory: Annotated[Path, typer.Argument(help="campaign directory")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")],
    push_to_hub: Annotated[str | None, typer.Option(
        "--push-to-hub", help="then push the dataset to this Hub repo (needs the network)")] = None,
    options: Any = None,
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
        stats = export_campaign(directory, out, options, progress=on_progress)
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
        from evo.export.hub import push_to_hub as push

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
    from evo.export.decontam_check import check

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
    from evo.visualize.plot import plot_campaign

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
    from evo.visualize.report import build_report

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




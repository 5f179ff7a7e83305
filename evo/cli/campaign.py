"""Commands that run and watch campaigns: ``run``, ``status``."""

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
    TimeRemainingColumn,
)
from rich.table import Table

from evo.cli.app import _fail, app, console


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

        saved = CampaignStore.read_meta(resume, "config")  # raw: the overrides go over it
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
    from evo.summary import summary_rows

    table = Table(title="campaign summary", show_header=False)
    rows = [*summary_rows(s), ("iterations", str(s["iterations"])), ("files", s["directory"])]
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

    from evo.errors import EvoError
    from evo.rundir import open_run
    from evo.summary import summarize

    with open_run(directory) as run:
        store = run.store
        try:
            run.require_measures()
        except EvoError as exc:
            _fail(str(exc))
        cfg = run.config
        archive = run.archive
        iters = store.iterations()
        table = Table(title=f"{cfg.name} ({cfg.domain})")
        for col in ("iter", "cands", "valid", "added", "elites", "coverage", "QD", "max", "wall s"):
            table.add_column(col, justify="right")
        for it in iters[-last:] if last else iters:
            table.add_row(str(it["iteration"]), str(it["candidates"]), str(it["valid"]), str(it["added"]),
                          str(it["num_elites"]), f"{it['coverage']:.1%}", f"{it['qd_score']:.2f}",
                          f"{it['obj_max']:.2f}", f"{it['wall_s']:.1f}")
        summary = summarize(store, archive, directory)
    total, done = cfg.iterations, summary["iterations"]
    line = Table.grid(padding=(0, 1))
    line.add_row(f"iteration {done}/{total or '?'}", ProgressBar(total=max(total, 1), completed=done, width=40))
    return Group(table, line, _summary_table(summary)), bool(total) and done >= total



"""``evo check DIR``: verify a campaign directory (see :mod:`evo.check`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evo.cli.app import app


@app.command()
def check(directory: Annotated[Path, typer.Argument(help="campaign directory")]) -> None:
    """Verify a campaign: schema version, SQLite integrity and references, contiguous ids,
    the archive rebuilt against the recorded stats, fine-tune rounds and adapters.
    Exit 0 when clean, 1 with each problem listed, 2 for unreadable input."""
    from evo.check import check_campaign

    result = check_campaign(directory)
    for note in result.notes:
        print(f"  {note}")
    for problem in result.problems:
        print(f"problem: {problem}")
    if result.ok:
        print(f"{directory}: no problems found")
        return
    print(f"{directory}: {len(result.problems)} problem(s) found")
    raise typer.Exit(1)

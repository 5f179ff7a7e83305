"""The ``evo`` command line: run and inspect campaigns, verify items, try the sandbox,
export datasets, plot and report, fine-tune. Each submodule registers its commands."""

from __future__ import annotations

import sys

from evo.cli import campaign, check, data, tools  # noqa: F401  (register the commands)
from evo.cli.app import app, console
from evo.errors import EvoError

__all__ = ["app", "main"]


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



"""P3's held-out benchmark for the contamination check: every puzzle of the test families.

The data (``puzzles.json`` and ``split.json`` of the P3 release) lives outside the
repository: ``$EVO_P3_DATA``, else ``../shared/data/p3`` next to the checkout (where
``evo eval-solve`` reads it too). Without it the source says so; nothing else breaks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from domains.p3.parse import normalised_puzzle, parse_puzzle
from evo.domain import BenchmarkItem, ParseError
from evo.errors import EvoError

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "p3"


def data_dir() -> Path:
    return Path(os.environ.get("EVO_P3_DATA") or DEFAULT_DATA)


def p3_split_items(split: str = "test", data: str | Path | None = None) -> list[BenchmarkItem]:
    """Every puzzle of ``split``'s families with its reference solutions: ``key`` is the
    AST-normalised puzzle (:meth:`P3Domain.key`), ``embed`` the puzzle as candidates
    embed it, ``text`` the puzzle and its solution bodies."""
    folder = Path(data) if data else data_dir()
    try:
        puzzles = json.loads((folder / "puzzles.json").read_text())
        families = set(json.loads((folder / "split.json").read_text())[split])
    except OSError as exc:
        raise EvoError(f"p3-{split}: no P3 data in {folder} ({exc.strerror}; "
                       "set EVO_P3_DATA to the folder with puzzles.json and split.json)") from None
    except (KeyError, ValueError) as exc:
        raise EvoError(f"p3-{split}: unreadable P3 data in {folder} ({exc})") from None
    items = []
    for p in puzzles:
        if p["name"].split(":")[0] not in families:
            continue
        f = p["sat"].replace("def sat(", "def f(", 1)
        try:  # parse with a placeholder g: normalises f exactly as candidates are
            f = parse_puzzle(f + "\n\ndef g():\n    return None")["f"]
        except ParseError:
            pass
        bodies = "\n".join(p.get("sol_bodies") or [])
        items.append(BenchmarkItem(id=p["name"], text=f"{f}\n{bodies}", embed=f,
                                   key=normalised_puzzle(f), domain="p3"))
    return items

"""The P3 domain: Python Programming Puzzles, verified in the sandbox."""

from domains.p3.domain import P3Domain, render_puzzle
from domains.p3.parse import normalise_type, parse_puzzle

__all__ = ["P3Domain", "normalise_type", "parse_puzzle", "render_puzzle"]

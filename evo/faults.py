"""Crash points for testing crash safety: ``EVO_CRASH_AT=point:iteration`` makes the
process SIGKILL itself when the campaign reaches that point of that iteration.

Points: ``generate`` (after generation), ``evaluate`` (after evaluation, before the
store write), ``store`` (inside the store transaction, before it commits), ``round`` (a search
strategy's first round judged, the iteration not yet recorded; :mod:`evo.search`).
"""

from __future__ import annotations

import os
import signal

ENV = "EVO_CRASH_AT"


def crash_point(point: str, iteration: int) -> None:
    if os.environ.get(ENV) == f"{point}:{iteration}":
        os.kill(os.getpid(), signal.SIGKILL)

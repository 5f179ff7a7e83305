"""Resumable experiments: named steps whose results are written when each ends, and chunked
sampling that survives an interruption (the pattern of self_improve.py, shared by
lmsi_math.py and rm_selfplay.py).

- :class:`Steps`: the results file holds the plan and every finished step; a rerun with the
  same plan skips finished steps, a changed plan (or ``fresh``) starts over and empties the
  work folder (its files belong to the old plan). Each step prints its expected time on
  this machine before it starts and its result when it ends.
- :func:`sample_chunked`: ``n`` completions per prompt, ``chunk`` prompts at a time, each
  chunk appended to a JSONL file as it ends; a rerun reads back the chunks written for the
  same prompts and settings and samples only the rest. Chunk ``i`` samples with
  ``seed + i``, so a resumed run is the uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from evo.heldout import render_prompts, resume_chunks

Report = Callable[[dict[str, Any], Path], None]


class Steps:
    """Steps of one experiment, their results in ``json_path`` (and ``md_path`` via ``report``)."""

    def __init__(self, json_path: Path, md_path: Path, plan: dict[str, Any], work: Path,
                 report: Report | None = None, machine: Callable[[], str] | None = None,
                 fresh: bool = False) -> None:
        self.json_path, self.md_path, self.work, self.report = json_path, md_path, work, report
        self.machine = machine
        old = None if fresh or not json_path.is_file() else json.loads(json_path.read_text())
        if old is None or old.get("plan") != plan or not work.is_dir():
            if work.exists():
                shutil.rmtree(work)
            old = {"plan": plan, "steps": {}}
        work.mkdir(parents=True, exist_ok=True)
        self.res = old

    @property
    def done(self) -> dict[str, Any]:
        return self.res["steps"]

    def save(self, step: str, value: dict[str, Any]) -> None:
        self.res["steps"][step] = value
        self.res["date"] = date.today().isoformat()
        if self.machine is not None:
            self.res["machine"] = self.machine()
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.res, indent=1))
        tmp.replace(self.json_path)  # a crash mid-write leaves the previous file
        if self.report is not None:
            self.report(self.res, self.md_path)

    def run(self, steps: list[tuple[str, Callable[[], dict[str, Any]], float]],
            deadline: float | None = None) -> bool:
        """Runs the unfinished ``(name, fn, expected seconds)`` in order; stops before a step
        once ``deadline`` (a ``time.time()``) has passed. True when every step is done."""
        for name, fn, expected_s in steps:
            if name in self.done:
                continue
            if deadline is not None and time.time() > deadline:
                print(f"paused before {name} (time budget)", flush=True)
                return False
            print(f"[{time.strftime('%H:%M:%S')}] {name}: expected ~{_minutes(expected_s)} on this machine",
                  flush=True)
            t = time.time()
            value = fn()
            value["step_s"] = round(time.time() - t, 1)
            self.save(name, value)
            print(f"[{time.strftime('%H:%M:%S')}] {name}: done in {_minutes(value['step_s'])}", flush=True)
        return True


def _minutes(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min"


def sample_chunked(llm: Any, prompts: list[Any], ids: list[str], params: Any, progress: Path,
                   chunk: int = 16) -> list[list[str]]:
    """Per prompt, the ``params.n`` completion texts; resumed from ``progress`` (JSONL)."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    if len(prompts) != len(ids):
        raise ValueError("one id per prompt")
    key = {"n": params.n, "temperature": params.temperature, "top_p": params.top_p,
           "max_new_tokens": params.max_new_tokens, "seed": params.seed, "stop": list(params.stop)}

    def texts(i: int, lo: int) -> list[list[str]]:
        seed = None if params.seed is None else params.seed + i
        gens = llm.generate(render_prompts(llm, prompts[lo:lo + chunk]), replace(params, seed=seed))
        return [[g.text for g in row] for row in gens]

    return resume_chunks(ids, key, progress, chunk, "texts", texts)

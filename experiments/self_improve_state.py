"""The run state of experiments/self_improve.py: the results file (the plan, finished steps and
finished parts of unfinished ones), campaign snapshots that are whole or absent, and the
tracked mirror a new machine resumes from. Nothing here generates or trains."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from datetime import date
from pathlib import Path
from typing import Any

from machine import cpu_flags, cpu_model, load_average
from self_improve_plan import EXPECTED_MIN
from self_improve_report import write_report

# A session's work tree is laid anew (its ignored runs/ gone), so the campaign dirs live beside
# the model cache, which a kept machine keeps; the small parts that cost the most to redo (the
# base campaign's snapshot, held-out chunk counts) are also mirrored into a tracked folder next
# to the results (<results>/self_improve_<size>.state), which a fresh machine restores from.
MIRROR_MAX_BYTES = 20 << 20  # a snapshot with a LoRA adapter (~37 MB for the 1.5B) is not mirrored


class RunState:
    """Run ``size``'s results in ``results``, its campaign dirs and snapshots in ``work``.

    A changed plan starts over (campaign dirs of another plan cannot resume); a work folder
    that lost the base snapshot (a new machine) is restored from the tracked mirror, and steps
    whose snapshots did not survive are done again."""

    def __init__(self, size: str, work: Path, results: Path, plan: dict[str, Any], p: dict[str, Any],
                 wanted: set[str] | None = None) -> None:
        self.size, self.work, self.p = size, work, p
        self.wanted = wanted  # the steps this run may do (None: all); lost snapshots only they need stay lost
        self.json_path, self.md_path = results / f"self_improve_{size}.json", results / f"self_improve_{size}.md"
        self.state = results / f"self_improve_{size}.state"
        old = json.loads(self.json_path.read_text()) if self.json_path.is_file() else None
        new_machine = (old is not None and old.get("plan") == plan and "campaign:base" in old["steps"]
                       and not (work / "snap" / "s0").is_dir())
        if new_machine:
            self.restore()  # what the tracked mirror kept
        if old is None or old.get("plan") != plan or (new_machine and not (work / "snap" / "s0").is_dir()):
            old = {"plan": plan, "steps": {}, "started": date.today().isoformat()}
            shutil.rmtree(work, ignore_errors=True)  # campaign dirs of another plan cannot resume
            shutil.rmtree(self.state, ignore_errors=True)
            reset = True
        else:
            reset = False
        work.mkdir(parents=True, exist_ok=True)
        if "campaign:base" not in old["steps"] and not (work / "base").is_dir() and (self.state / "base").is_dir():
            print(f"restoring the unfinished base campaign from {self.state / 'base'}", flush=True)
            shutil.copytree(self.state / "base", work / "base")  # it resumes after its last mirrored iteration
        old.setdefault("partial", {})  # finished parts of unfinished steps (see part())
        self.res = old
        self.drop_lost_steps(new_machine)
        if reset:  # at once: results of the old run must not sit beside this run's mirror
            self.write()

    def part(self, step: str, part: str, fn: Any) -> dict[str, Any]:
        """Part ``part`` of step ``step``: its saved result, or ``fn()`` run and saved at once,
        so that a step of hours resumes after its last finished part."""
        done = self.res["partial"].setdefault(step, {})
        if part not in done:
            self.expect(f"{step}/{part}", part)
            t = time.time()
            done[part] = {**fn(), "part_s": time.time() - t}
            self.write()
            print(f"[{time.strftime('%H:%M:%S')}] {step}/{part} done", flush=True)
        return done[part]

    def expect(self, what: str, kind: str) -> None:
        minutes = EXPECTED_MIN.get(self.size, {}).get(kind)
        if minutes:
            print(f"[{time.strftime('%H:%M:%S')}] {what}: expected ~{minutes:.0f} min on an idle 2-core box",
                  flush=True)

    def save(self, step: str, value: dict[str, Any]) -> None:
        self.res["steps"][step] = value
        self.res["partial"].pop(step, None)
        self.write()
        print(f"[{time.strftime('%H:%M:%S')}] {step}: {short(value)}", flush=True)

    def write(self) -> None:
        """The results file, whole or not at all (a crash mid-write keeps the previous one)."""
        self.res.update(date=date.today().isoformat(), machine=machine())
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.res, indent=1))
        tmp.replace(self.json_path)
        write_report(self.res, self.md_path)

    def progress_file(self, step: str) -> Path:
        """Held-out chunk counts, written straight into the tracked state folder (chunks of
        minutes each survive a new machine, if the snapshot they were measured on does)."""
        return self.state / "progress" / f"{step.replace(':', '_')}.jsonl"

    # -- snapshots, whole or absent --------------------------------------------------------
    def snapshot(self, name: str, as_: str) -> None:
        self._copy(self.work / name, as_)

    def snapshot_of(self, src: str, as_: str) -> None:
        self._copy(self.work / "snap" / src, as_)

    def _copy(self, src: Path, as_: str) -> None:
        """Copies to a temporary name, then renames: a crash never leaves half a snapshot."""
        dst, tmp = self.work / "snap" / as_, self.work / "snap" / f".{as_}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("writer.lock"))
        shutil.rmtree(dst, ignore_errors=True)
        tmp.rename(dst)
        self.mirror(dst)  # once, when the snapshot is made

    # -- surviving a new machine ------------------------------------------------------------
    def mirror(self, snap: Path) -> None:
        """Copies snapshot ``snap`` into the tracked state folder if it is small (whole or not
        at all: one without its adapter would measure the base)."""
        if sum(f.stat().st_size for f in snap.rglob("*") if f.is_file()) > MIRROR_MAX_BYTES:
            return
        dst, tmp = self.state / "snap" / snap.name, self.state / "snap" / f".{snap.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(snap, tmp)
        shutil.rmtree(dst, ignore_errors=True)
        tmp.rename(dst)

    def mirror_campaign(self, name: str) -> None:
        """The running campaign ``name``'s dir into the state folder, between two iterations: the
        store through SQLite's backup API (a consistent copy while it is open), the rest as files."""
        src, tmp, dst = self.work / name, self.state / f".{name}.tmp", self.state / name
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in src.iterdir():
            if f.suffix == ".sqlite":
                with sqlite3.connect(f) as db, sqlite3.connect(tmp / f.name) as out:
                    db.backup(out)
            elif f.is_file() and f.name != "writer.lock" and not f.name.endswith(("-wal", "-shm")):
                shutil.copy2(f, tmp / f.name)
        shutil.rmtree(dst, ignore_errors=True)
        tmp.rename(dst)

    def restore(self) -> None:
        if (self.state / "snap").is_dir():
            print(f"restoring the campaign snapshots from {self.state}", flush=True)
            shutil.copytree(self.state / "snap", self.work / "snap", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".*.tmp"))

    def drop_lost_steps(self, new_machine: bool) -> None:
        """Steps whose snapshot went with an old machine are done again: on a new machine, an
        unfinished step whose trained snapshot is gone is retrained; on every start (a machine
        that restored s0 in an earlier run lacks the rest as well), a finished step whose
        snapshot a wanted later step starts from is redone (its adapter cannot be measured
        again otherwise)."""
        snaps = self.work / "snap"
        for step in list(self.res["partial"]) if new_machine else ():
            if "train" in self.res["partial"][step] and not (snaps / f"{step.replace(':', '_')}@trained").is_dir():
                print(f"{step}: its trained snapshot is lost; training again", flush=True)
                self.res["partial"].pop(step)
                self.progress_file(step).unlink(missing_ok=True)
        needs = {"round:on:2": "elites@1", "round:off:2": "elites@1"}
        needs |= {f"round:{v}:{r}": f"{v}@{r - 1}" for v in ("on", "off") for r in range(3, self.p["rounds"] + 1)}
        makers = {"elites@1": "arm:elites"} | {f"{v}@{r}": f"round:{v}:{r}" for v in ("on", "off")
                                               for r in range(2, self.p["rounds"] + 1)}
        lost = True
        while lost:  # to a fixpoint: a redone round may need a snapshot that is lost as well
            lost = False
            for step, snap in needs.items():
                if self.wanted is not None and step not in self.wanted:
                    continue  # not run now: its source stays lost until a run that wants it
                maker = makers[snap]
                if step not in self.res["steps"] and not (snaps / snap).is_dir() and maker in self.res["steps"]:
                    print(f"{maker}: snapshot {snap} is lost; done again for {step}", flush=True)
                    self.res.setdefault("redone", []).append(maker)
                    self.res["steps"].pop(maker)
                    self.progress_file(maker).unlink(missing_ok=True)
                    if self.wanted is not None:
                        self.wanted.add(maker)  # this run does it first (run() goes in plan order)
                    lost = True


def machine() -> str:
    try:
        import torch

        gpu = f"; GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "; no GPU"
    except ImportError:
        gpu = ""
    return f"{cpu_model()}, flags: {cpu_flags()}, load {load_average()}{gpu}"


def short(v: dict[str, Any]) -> str:
    h = v.get("heldout") or {}
    return json.dumps({k: v[k] for k in ("valid_rate", "num_elites", "skipped", "step_s") if k in v}
                      | {k: h[k] for k in h if k.startswith("pass@") and not k.endswith("_ci")})

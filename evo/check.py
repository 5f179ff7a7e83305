"""``evo check DIR``: is a campaign directory whole? Read-only; safe beside a running writer.

Checks, each reporting problems in plain words:

- the store's schema version (newer than this evo: unreadable; older: a note, the next
  writer migrates it);
- SQLite's ``integrity_check`` and ``foreign_key_check``, and the references SQLite cannot
  declare (a child's parents, re-scores of candidates the store lacks);
- candidate ids contiguous from 1, iterations contiguous from 0, every batch with its
  stats row and every stats row with its batch;
- the archive rebuilt from the store, replayed iteration by iteration (with the
  re-scores where the campaign applied them), against each iteration's recorded stats,
  and every stored cell against the cell its saved measures fall in (``measures.npz``);
- a fine-tune round (``adapters/round-N/round.json``) and its adapter weights for every
  generator version the store records.

Unreadable input (not a directory, no store, not a SQLite file, a schema from a newer
evo) raises :class:`evo.errors.EvoError`.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from evo.errors import EvoError

# The archive numbers the loop records per iteration that a rebuild must reproduce.
STATS = ("num_elites", "qd_score", "coverage", "obj_max")
MAX_LISTED = 10  # problems of one kind listed before "and N more"


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_campaign(directory: str | Path) -> CheckResult:
    """Every check on the campaign in ``directory``; raises EvoError for unreadable input."""
    from archives import SCHEMA_VERSION, STORE_FILE, CampaignStore
    from archives.migrations import stored_version

    directory = Path(directory)
    if not directory.is_dir():
        raise EvoError(f"{directory} is not a directory")
    path = directory / STORE_FILE
    if not path.is_file():
        raise EvoError(f"{directory} is not a campaign directory (no {STORE_FILE})")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = stored_version(db)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise EvoError(f"campaign store {path} is unreadable or corrupt: {exc}") from None
    if version == 0:
        raise EvoError(f"{path} is not a campaign store (it has no candidates table)")
    store = CampaignStore(path, migrate=False)  # refuses a newer schema with the reason
    result = CheckResult()
    if version < SCHEMA_VERSION:
        result.notes.append(f"schema version {version}, older than this evo's {SCHEMA_VERSION}: the next "
                            "run, resume or finetune migrates it (after a backup)")
    else:
        result.notes.append(f"schema version {version}")
    try:
        store.db.execute("BEGIN")  # one snapshot for every check, even beside a running writer
        try:
            _integrity(store.db, result)
        except sqlite3.DatabaseError as exc:
            raise EvoError(f"campaign store {path} is unreadable or corrupt: {exc}") from None
        if not result.ok:
            return result  # the rest would only repeat the damage in other words
        _references(store.db, result)
        _contiguity(store.db, result)
        _archive(store, directory, result)
        _rounds(store.db, directory, result)
    finally:
        store.close()
    return result


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def _integrity(db: sqlite3.Connection, result: CheckResult) -> None:
    rows = [r[0] for r in db.execute("PRAGMA integrity_check(100)")]
    if rows != ["ok"]:
        result.problems += [f"SQLite integrity check: {r}" for r in rows]


def _references(db: sqlite3.Connection, result: CheckResult) -> None:
    fk = db.execute("PRAGMA foreign_key_check").fetchall()
    for table, rowid, parent, _ in fk[:MAX_LISTED]:
        result.problems.append(f"table {table}, row {rowid}: refers to a row missing from {parent}")
    if len(fk) > MAX_LISTED:
        result.problems.append(f"... and {len(fk) - MAX_LISTED} more foreign key violations")
    if not fk:  # a version-1 store declares no foreign key: check the same by hand
        orphans = [str(r[0]) for r in db.execute(
            "SELECT DISTINCT candidate_id FROM rescores WHERE candidate_id NOT IN (SELECT id FROM candidates)")]
        if orphans:
            result.problems.append(f"re-scores name candidates that are not in the store: {_listed(orphans)}")
    ids = {r[0] for r in db.execute("SELECT id FROM candidates")}
    bad = []
    for cid, parents in db.execute("SELECT id, parents FROM candidates ORDER BY id"):
        try:
            missing = [p for p in json.loads(parents) if p not in ids or p >= cid]
        except (ValueError, TypeError):
            bad.append(f"{cid} (unreadable parents)")
            continue
        if missing:
            bad.append(f"{cid} (parent {', '.join(map(str, missing))})")
    if bad:
        result.problems.append("candidates name parents that are not earlier candidates in the store: "
                               + _listed(bad))


def _ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return _listed(parts)


def _contiguity(db: sqlite3.Connection, result: CheckResult) -> None:
    ids = [r[0] for r in db.execute("SELECT id FROM candidates ORDER BY id")]
    if ids and ids[-1] != len(ids):
        present = set(ids)
        gaps = [i for i in range(1, ids[-1] + 1) if i not in present]
        result.problems.append(f"candidate ids are not contiguous: {len(gaps)} missing ({_ranges(gaps)})")
    iters = [r[0] for r in db.execute("SELECT iteration FROM iterations ORDER BY iteration")]
    if iters and iters != list(range(iters[-1] + 1)):
        gaps = sorted(set(range(iters[-1] + 1)) - set(iters))
        result.problems.append(f"iterations are not contiguous: no stats for iteration(s) {_ranges(gaps)}")
    batches = {r[0] for r in db.execute("SELECT DISTINCT iteration FROM candidates")}
    if orphans := sorted(batches - set(iters)):
        result.problems.append(f"candidates of iteration(s) {_ranges(orphans)} have no stats row "
                               "(a batch recorded without its iteration)")
    if empty := sorted(set(iters) - batches):
        result.problems.append(f"iteration(s) {_ranges(empty)} have stats but no candidates")
    order = db.execute("SELECT COUNT(*) FROM candidates a JOIN candidates b ON b.id = a.id + 1 "
                       "WHERE b.iteration < a.iteration").fetchone()[0]
    if order:
        result.problems.append(f"candidate ids run backwards in iteration at {order} place(s): "
                               "a later batch holds smaller ids")


def _archive(store: Any, directory: Path, result: CheckResult) -> None:
    from archives import Archive, Measures
    from evo.rundir import MEASURES_FILE, Run

    run = Run(directory, store)  # the shared reader, over check's own read-only snapshot
    if not isinstance(run.raw_config, dict):
        result.problems.append("the store holds no campaign config (meta 'config'): the campaign never "
                               "finished its set-up")
        return
    try:
        cfg = run.config
    except EvoError as exc:
        result.problems.append(f"the stored campaign config does not validate ({exc})")
        return
    try:
        measures = Measures.load(run.measures_path)
    except FileNotFoundError:
        result.problems.append(f"{MEASURES_FILE} is missing: the archive cannot be rebuilt")
        return
    except (OSError, ValueError, KeyError) as exc:
        result.problems.append(f"{MEASURES_FILE} is unreadable ({exc}): the archive cannot be rebuilt")
        return
    archive = Archive(measures, cfg.archive.dims, cfg.seed)
    recorded = {it["iteration"]: it for it in store.iterations()}
    wrong_dim, wrong_cell, mismatch = [], [], []
    rescores = _rescore_points(store)
    applied = None
    for it, batch in _batches(store):
        # the re-scores of a round that ran before this batch: the campaign restarted the
        # archive from those elites (rebuild_archive does the same for the latest)
        due = [v for v, (last, _) in rescores.items() if last < batch[0].id]
        if due and max(due) != applied:
            applied = max(due)
            archive.ribs.clear()
            _add(archive, rescores[applied][1])
        offered = [c for c in batch if c.verdict == "valid" and c.measures is not None
                   and (c.add_status or 0) >= 0]
        for c in offered:
            if len(c.measures) != measures.dim:
                wrong_dim.append(str(c.id))
        if any(len(c.measures) != measures.dim for c in offered):
            continue
        if offered:
            cells = archive.ribs.index_of(np.array([c.measures for c in offered], dtype=np.float64))
            wrong_cell += [f"{c.id} (stored {c.cell}, measures in {int(k)})" for c, k in zip(offered, cells)
                           if c.cell is not None and c.cell != int(k)]
        _add(archive, offered)
        if it in recorded:
            got, want = archive.stats(), recorded[it]
            if any(k in want and not math.isclose(got[k], want[k], rel_tol=1e-6, abs_tol=1e-9) for k in STATS):
                mismatch.append(f"iteration {it}: rebuilt " + _numbers(got) + "; recorded " + _numbers(want))
    if wrong_dim:
        result.problems.append(f"candidates whose measures do not have {measures.dim} dimensions (the "
                               f"saved {MEASURES_FILE}): {_listed(wrong_dim)}")
    if wrong_cell:
        result.problems.append(f"stored cells disagree with the saved measures: {_listed(wrong_cell)}")
    if mismatch:
        result.problems.append("the archive rebuilt from the store differs from the recorded iteration "
                               f"stats: {_listed(mismatch)}")
    else:
        result.notes.append(f"archive rebuild matches the stats of {len(recorded)} iteration(s)")


def _numbers(s: dict[str, Any]) -> str:
    return (f"{s.get('num_elites', '?')} elites, QD {s.get('qd_score', float('nan')):.4f}, "
            f"coverage {s.get('coverage', float('nan')):.4f}, max {s.get('obj_max', float('nan')):.4f}")


def _batches(store: Any):
    """(iteration, candidates) in store order."""
    batch: list = []
    for c in store.candidates():
        if batch and c.iteration != batch[-1].iteration:
            yield batch[-1].iteration, batch
            batch = []
        batch.append(c)
    if batch:
        yield batch[-1].iteration, batch


def _rescore_points(store: Any) -> dict[int, tuple[int, list]]:
    """{generator version: (last candidate id before its re-score, re-scored elites)}."""
    out: dict[int, tuple[int, list]] = {}
    rows = store.rescores()
    cands = store.get(sorted({r["candidate_id"] for r in rows}))
    for r in rows:
        if r["candidate_id"] not in cands:
            continue  # reported by the reference check
        c = replace(cands[r["candidate_id"]], fitness=r["fitness"])
        _, elites = out.setdefault(r["generator_version"], (r["last_candidate_id"], []))
        elites.append(c)
    return out


def _add(archive: Any, cands: list) -> None:
    if cands:
        archive.add([json.dumps(c.item) for c in cands], [c.fitness for c in cands],
                    np.array([c.measures for c in cands]), [c.id for c in cands])


def _rounds(db: sqlite3.Connection, directory: Path, result: CheckResult) -> None:
    from evo.finetune.rounds import ROUND_FILE, round_dir

    versions = {r[0] for r in db.execute("SELECT DISTINCT generator_version FROM candidates")}
    versions |= {r[0] for r in db.execute("SELECT DISTINCT generator_version FROM rescores")}
    row = db.execute("SELECT value FROM meta WHERE key = 'generator_round'").fetchone()
    if row is not None:
        versions.add(json.loads(row[0]).get("version", 0))
    rounds = 0
    for v in sorted(x for x in versions if x):
        folder = round_dir(directory, v)
        try:
            record = json.loads((folder / ROUND_FILE).read_text())
        except FileNotFoundError:
            result.problems.append(f"generator version {v} is recorded in the store, but its fine-tune round "
                                   f"is missing ({folder / ROUND_FILE})")
            continue
        except (OSError, ValueError) as exc:
            result.problems.append(f"{folder / ROUND_FILE} is unreadable: {exc}")
            continue
        if record.get("version", record.get("round")) != v:
            result.problems.append(f"{folder / ROUND_FILE} records version {record.get('version')}, not {v}")
        weights = [p for p in ("adapter_model.safetensors", "adapter_model.bin") if (folder / p).is_file()]
        if not (folder / "adapter_config.json").is_file() or not weights:
            result.problems.append(f"generator version {v}: the adapter in {folder} is incomplete "
                                   "(adapter_config.json and adapter_model.safetensors expected)")
        rounds += 1
    result.notes.append(f"{rounds} fine-tune round(s) with adapters for the recorded generator versions")

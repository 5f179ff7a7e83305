"""The campaign loop: select parents, prompt, generate, parse, verify, score, describe,
insert, record. One iteration per batch; the store commits once per batch."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from archives import Archive, CampaignStore, Candidate, Measures, rebuild_archive
from archives.store import RESOLVED_MARK
from evo.config import CampaignConfig, same_campaign, validate_config
from evo.descriptor import Embedder
from evo.domain import EvalContext, ParseError, get_domain
from evo.errors import EvoError
from evo.executor import load_from_config, open_sandbox
from evo.faults import crash_point
from evo.finetune import current_adapter, finetune_and_swap, latest_round
from evo.llm import LLM, Generation, SamplingParams
from evo.llm.timing import TimedLLM
from evo.lock import WriterLock
from evo.operators import Prompt, build_prompts
from evo.rundir import MEASURES_FILE, STORE_FILE
from evo.search import SEARCH_KINDS, TreeSearch
from evo.strategy import NOT_OFFERED, Strategy
from evo.summary import summarize, summary_rows

# MEASURES_FILE and the summary functions moved out of the loop (issue 34); still importable here
__all__ = ["MEASURES_FILE", "Campaign", "summarize", "summary_rows"]

class Campaign:
    """A campaign directory: config, store, archive, and the components that fill them."""

    def __init__(self, config: CampaignConfig, out_dir: str | Path, generator: LLM | None = None,
                 embedder: Embedder | None = None) -> None:
        self.config, self.dir = config, Path(out_dir)
        self.stop_requested = False  # set by a signal handler: finish the batch, then stop
        created = next((p for p in [*reversed(self.dir.parents), self.dir] if not p.exists()), None)
        self.resumed = self._check_dir()
        # One writer per campaign, taken before minutes of model loading (see evo.lock).
        self.lock = WriterLock(self.dir, "evo run").acquire()
        try:
            self._set_up(generator, embedder)
        except BaseException:
            self._abandon(created)
            raise

    def _set_up(self, generator: LLM | None, embedder: Embedder | None) -> None:
        config = self.config
        self.domain = get_domain(config.domain, **config.domain_options)
        self.seed_items = self.domain.seeds()
        if not self.seed_items:
            raise EvoError(f"domain '{config.domain}' has no seeds")
        self._seed_keys = {self.domain.key(s) for s in self.seed_items}
        # here, or on Ray actors (executor); a resumed campaign continues with its latest adapter
        adapter, version = current_adapter(self.dir) or (None, 0)
        self._owns_generator = generator is None  # close() stops only an engine it started
        generator = generator or load_from_config(config, adapter=adapter, version=version)
        self.generator = TimedLLM(generator)
        self.embedder = embedder or Embedder(config.descriptor.embedder)
        self.sandbox = open_sandbox(config)  # local, or Ray tasks (executor.kind)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store = CampaignStore(self.dir / STORE_FILE)
        # what contains this run's evaluations (bwrap and which binary, or rlimits only):
        # `evo status` and the report show it; recorded again on every resume
        describe = getattr(self.sandbox, "describe", None)
        self.store.set_meta(sandbox=describe() if describe else "on Ray workers (isolation per node)")
        self.measures = self._measures()
        self.archive = rebuild_archive(self.store, Archive(self.measures, config.archive.dims, config.seed))
        self.seeds = [(c.id, c.item) for c in self.store.candidates("is_seed = 1 AND verdict = 'valid'")]
        self.strategy = Strategy(config.strategy, self.archive)
        self.strategy.restore(self.store, self._embed)
        # beam / best_first: rounds of generate -> judge within each iteration (evo.search)
        self.search = TreeSearch(self) if config.strategy.kind in SEARCH_KINDS else None

    def _abandon(self, created: Path | None) -> None:
        """A set-up that failed: close what opened, give the lock back, and leave no
        directory behind that this run created and never stored anything in."""
        for part in ("sandbox", "store"):
            if hasattr(self, part):
                getattr(self, part).close()
        self._close_generator()
        fresh = not (self.dir / STORE_FILE).exists()
        self.lock.release(remove=fresh)
        if fresh and created is not None:
            _remove_empty_dirs(self.dir, created)

    def _check_dir(self) -> bool:
        """True when the directory holds this campaign already (same config but the
        iteration budget): then the run resumes it."""
        resumed = (self.dir / STORE_FILE).exists()
        if resumed:
            # Compare validated configs (fields added since, with defaults, don't count), and
            # let runtime keys change: a campaign may move to a GPU or a cluster mid-way.
            saved = validate_config(CampaignStore.read_meta(self.dir, "config", {}))
            if not same_campaign(saved, self.config):
                raise EvoError(f"{self.dir} belongs to a campaign with a different config; "
                               "resume it with --resume DIR or choose another --out")
        # Probe writability now, before minutes of model loading; leave nothing behind.
        first_missing = next((p for p in [*reversed(self.dir.parents), self.dir] if not p.exists()), None)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / f".write-probe-{os.getpid()}"  # per process: writers may race here
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise EvoError(f"output directory {self.dir} is not writable: {exc.strerror}") from None
        finally:
            if first_missing is not None:  # only what is still empty: a racing writer may own it now
                _remove_empty_dirs(self.dir, first_missing)
        return resumed

    def _measures(self) -> Measures:
        path = self.dir / MEASURES_FILE
        if path.exists():
            return Measures.load(path)
        emb = self.embedder.embed([self.domain.text(s) for s in self.seed_items])
        a = self.config.archive
        if a.kind == "grid":
            measures = Measures.fit_pca(emb, len(a.dims), a.margin)
        else:
            if a.cells > len(emb):
                raise EvoError(f"archive.cells ({a.cells}) exceeds the number of seeds ({len(emb)})")
            measures = Measures.fit_cvt(emb, a.cells, self.config.seed)
        measures.save(path)
        self.store.set_meta(config=self.config.model_dump(mode="json"), campaign_id=uuid.uuid4().hex,
                            created=time.time())
        return measures

    # -- the loop -------------------------------------------------------------
    def run(self, on_iteration: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        start, busy0 = time.time(), self.generator.busy_s
        if not self.seeds:
            self._insert_seeds()
        self._maybe_finetune(self.next_iteration() - 1)  # a round a crash cut short
        its = range(self.next_iteration(), self.config.iterations + 1)
        if self.config.pipeline.staleness:
            self._run_pipelined(its, on_iteration)
        else:
            for it in its:
                if self.stop_requested:
                    break
                stats = self.step(it)
                if on_iteration:
                    on_iteration(stats)
                self._maybe_finetune(it)
        wall = time.time() - start
        return {**self.summary(wall), "generator_busy": (self.generator.busy_s - busy0) / wall if wall else 0.0}

    def _run_pipelined(self, its: range, on_iteration: Callable[[dict[str, Any]], None] | None) -> None:
        """The async pipeline: batch i+1 is generated (in a thread) while batch i is
        evaluated here. Batch i+1's parents come from the archive after batch i-1."""
        with ThreadPoolExecutor(1, thread_name_prefix="evo-generate") as pool:
            nxt = pool.submit(self._generate, *self._prompts(its[0])) if its else None
            for it in its:
                t0 = time.time()
                prompts, outputs, gen_s = nxt.result()
                if self.stop_requested:
                    break  # this batch was never recorded: a resume generates it again
                due = self._finetune_due(it)  # then batch i+1 waits for the new generator
                if it + 1 in its and not due:
                    nxt = pool.submit(self._generate, *self._prompts(it + 1))
                stats = self._evaluate(it, *self._candidates(it, prompts, outputs), t0, gen_s)
                if on_iteration:
                    on_iteration(stats)
                if due:
                    self._maybe_finetune(it)
                    if it + 1 in its:
                        nxt = pool.submit(self._generate, *self._prompts(it + 1))

    def _finetune_due(self, it: int) -> bool:
        """A round is due once per ``finetune.every`` iterations (a skipped round counts:
        it is not retried every iteration until elites appear); never after the last."""
        every = self.config.finetune.every
        if not every or not 0 < it < self.config.iterations:
            return False
        return self.store.get_meta("finetune_slot", latest_round(self.dir)) < it // every

    def _maybe_finetune(self, it: int) -> None:
        """Every ``finetune.every`` iterations: LoRA round on the elites, swap the generator in,
        re-score the archive (see :mod:`evo.finetune`)."""
        if self._finetune_due(it):
            finetune_and_swap(self)  # a crash before the next line redoes the round on resume
            self.store.set_meta(finetune_slot=it // self.config.finetune.every)
            self.strategy.archive = self.archive  # the round rebuilt the archive

    def next_iteration(self) -> int:
        done = self.store.last_iteration()
        return 1 if done is None else done + 1

    def step(self, it: int) -> dict[str, Any]:
        """One iteration; its RNG derives from (seed, iteration) so a resume replays it."""
        if self.search is not None:
            return self.search.step(it)
        t0 = time.time()
        prompts, outputs, gen_s = self._generate(*self._prompts(it))
        return self._evaluate(it, *self._candidates(it, prompts, outputs), t0, gen_s)

    def _prompts(self, it: int) -> tuple[list[Prompt], SamplingParams]:
        c = self.config
        rng = np.random.default_rng([c.seed, it])
        prompts = build_prompts(self.domain, c.prompts_per_iteration, c.operators.weights,
                                c.operators.parents, self.strategy.sample_parents, self.seeds, rng)
        return prompts, self.sampling(it)

    def sampling(self, it: int) -> SamplingParams:
        c, gen = self.config, self.config.generator
        return SamplingParams(n=c.samples_per_prompt, temperature=gen.temperature, top_p=gen.top_p,
                              max_new_tokens=gen.max_new_tokens, stop=self.domain.stop,
                              seed=c.seed * 1_000_003 + it)

    def _generate(self, prompts: list[Prompt],
                  params: SamplingParams) -> tuple[list[Prompt], list[list[Generation]], float]:
        """The batch's completions and the generator seconds they took."""
        self.generator.take_seconds()
        outputs = self.generator.generate([p.text for p in prompts], params)
        return prompts, outputs, self.generator.take_seconds()

    def _candidates(self, it: int, prompts: list[Prompt], outputs: list[list[Generation]],
                    first_id: int | None = None) -> tuple[list[Candidate], dict[int, int]]:
        """Parsed, de-duplicated candidates, and the prompt (group) each came from; ids from
        ``first_id`` (a search's later rounds: the earlier ones are not stored yet)."""
        crash_point("generate", it)
        next_id, cands, groups = first_id or self.store.next_id(), [], {}
        for group, (prompt, samples) in enumerate(zip(prompts, outputs)):
            for s in samples:
                groups[next_id + len(cands)] = group
                cand = Candidate(id=next_id + len(cands), iteration=it, operator=prompt.operator,
                                 parents=prompt.parents, verdict="pending", prompt=prompt.text,
                                 completion=s.text, num_tokens=s.num_tokens,
                                 strategy=self.config.strategy.kind)
                try:
                    cand.item = self.domain.parse(self.domain.open_prefix + prompt.stem + s.text)
                except ParseError as exc:
                    cand.verdict, cand.reason = "parse_error", str(exc)
                cands.append(cand)
        self._mark_duplicates(cands)
        return cands, groups

    def _insert_seeds(self) -> None:
        next_id = self.store.next_id()
        items, k = self.seed_items, self.config.max_seeds
        if k is not None and k < len(items):  # a seeded, spread-out subset
            picks = np.random.default_rng(self.config.seed).choice(len(items), size=k, replace=False)
            items = [items[i] for i in sorted(picks)]
        cands = [Candidate(id=next_id + i, iteration=0, operator="seed", parents=[], is_seed=True,
                           verdict="pending", item=item) for i, item in enumerate(items)]
        self._evaluate(0, cands, None, time.time())
        self.seeds = [(c.id, c.item) for c in cands if c.verdict == "valid"]
        if not self.seeds:
            raise EvoError("no seed passed verification; check the domain's seeds")

    def _mark_duplicates(self, cands: list[Candidate]) -> None:
        """A copy of a seed, a parent or a sibling is not a new candidate."""
        parents = self.store.get(sorted({p for c in cands for p in c.parents}))
        seen = {self.domain.key(p.item) for p in parents.values() if p.item}
        seen |= self._seed_keys
        for c in cands:
            if c.verdict != "pending":
                continue
            key = self.domain.key(c.item)
            if key in seen:
                c.verdict, c.reason = "duplicate", "copy of a seed, a parent or another child in the batch"
            seen.add(key)

    def _embed(self, items: list[dict[str, Any]]) -> np.ndarray:
        return self.embedder.embed([self.domain.text(i) for i in items])

    def judge(self, it: int, cands: list[Candidate], round_: int = 0) -> dict[str, Any]:
        """Verify -> second chance -> score, for the pending candidates; the counts and
        seconds. ``round_`` > 0 (a search's later rounds) gives solve attempts other seeds."""
        self.generator.take_seconds()  # from here on: this batch's solve attempts
        self.generator.take_tokens()
        pending = [c for c in cands if c.verdict == "pending"]
        t = time.time()
        for c, v in zip(pending, self.domain.verify([c.item for c in pending], self.sandbox)):
            c.verdict, c.reason = v.verdict, v.reason
        verify_s = time.time() - t
        ctx = EvalContext(self.generator, self.sandbox, seed=self.config.seed * 7919 + it + 1_000_003 * round_)
        t = time.time()
        failed, resolved = [c for c in pending if c.verdict == "invalid"], 0
        for c, fix in zip(failed, self.domain.resolve([c.item for c in failed], ctx)):
            if fix is not None:  # the reason keeps why the candidate's own version failed
                item, v = fix
                c.item, c.verdict, resolved = item, v.verdict, resolved + 1
                c.reason = f"{v.reason or 'resolved by a fresh attempt'} {RESOLVED_MARK} {c.reason})"
        valid = [c for c in pending if c.verdict == "valid"]
        for c, s in zip(valid, self.domain.score([c.item for c in valid], ctx)):
            c.fitness, c.fitness_parts = float(s.fitness), s.parts
        return {"resolved": resolved, "verify_s": verify_s, "score_s": time.time() - t,
                "score_gen_s": self.generator.take_seconds(), "score_tokens": self.generator.take_tokens()}

    def _evaluate(self, it: int, cands: list[Candidate], groups: dict[int, int] | None,
                  t0: float, gen_s: float = 0.0, judged: dict[str, Any] | None = None) -> dict[str, Any]:
        """Verify -> score -> describe -> insert -> record, for the pending candidates;
        ``judged``: a search judged them round by round already, and these are its counts."""
        judged = judged if judged is not None else self.judge(it, cands)
        version = self.generator.version
        valid = [c for c in cands if c.verdict == "valid"]
        t = time.time()
        emb = self._embed([c.item for c in valid])
        offered = self.strategy.offer(valid, emb, [(groups or {}).get(c.id, c.id) for c in valid])
        measures = self.measures.transform(emb) if valid else np.zeros((0, self.measures.dim))
        border = self.measures.on_border(measures) if valid else np.zeros(0, bool)
        ins = [c for c, keep in zip(valid, offered) if keep]
        status, cells = self.archive.add([json.dumps(c.item) for c in ins], [c.fitness for c in ins],
                                         measures[offered], [c.id for c in ins])
        for c, m, b in zip(valid, measures, border):
            c.measures, c.on_border, c.add_status = m.tolist(), bool(b), NOT_OFFERED
        for c, st, cell in zip(ins, status, cells):
            c.add_status, c.cell = int(st), int(cell)
        self.strategy.observe(cands)
        describe_s = time.time() - t
        for c in cands:
            c.generator_version = version
        stats = {**self.archive.stats(), "candidates": len(cands), "valid": len(valid),
                 "added": int((status > 0).sum()), "border": int(border.sum()),
                 "tokens": sum(c.num_tokens for c in cands), "gen_s": gen_s, **judged,
                 "describe_s": describe_s, "wall_s": time.time() - t0, "generator_version": version}
        crash_point("evaluate", it)
        self.store.record(cands, it, stats, before_commit=lambda: crash_point("store", it))
        return {"iteration": it, **stats}

    def summary(self, wall_s: float) -> dict[str, Any]:
        return summarize(self.store, self.archive, self.dir, wall_s)

    def close(self) -> None:
        try:
            self.sandbox.close()
            self.store.close()
            self._close_generator()
        finally:
            self.lock.release()

    def _close_generator(self) -> None:
        """Stops the generator this campaign loaded (a vLLM engine's processes hold the model's
        memory until then); one the caller passed in stays the caller's."""
        close = getattr(getattr(getattr(self, "generator", None), "llm", None), "close", None)
        if getattr(self, "_owns_generator", False) and callable(close):
            close()


def _remove_empty_dirs(directory: Path, top: Path) -> None:
    """Removes ``directory`` and its parents up to ``top``, as long as they are empty."""
    for d in [directory, *directory.parents]:
        try:
            d.rmdir()
        except OSError:
            return
        if d == top:
            return

"""Fine-tuning rounds: data -> LoRA adapter in ``DIR/adapters/round-N/`` -> swap -> re-score.

A round directory holds the adapter (``adapter_config.json``, ``adapter_model.safetensors``),
``train.jsonl`` (the exact mix it was trained on), ``pool.jsonl`` (the accumulated non-seed
examples the next round builds on) and ``round.json``: base model, round, data hash, number
of examples, anchors used, trainer config, metrics, re-score numbers.

Each round trains a fresh adapter on the base model over the accumulated data (as STaR
restarts from the base model each iteration), so rounds never stack adapters.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from archives import Archive, CampaignStore
from evo.config import FinetuneConfig, validate_config
from evo.domain import Domain, get_domain
from evo.errors import EvoError
from evo.finetune.data import (
    CountTokens,
    Example,
    _approx_tokens,
    data_hash,
    item_examples,
    merge_rounds,
    mix_with_seeds,
    read_examples,
    shares,
    write_examples,
)
from evo.finetune.rescore import rescore_elites
from evo.finetune.train import free_memory, token_counter, train_lora

ADAPTERS = "adapters"
ROUND_FILE = "round.json"
POOL_FILE = "pool.jsonl"
TRAIN_FILE = "train.jsonl"


def round_dir(directory: str | Path, n: int) -> Path:
    return Path(directory) / ADAPTERS / f"round-{n}"


def latest_round(directory: str | Path) -> int:
    """The newest finished round in ``directory`` (0: none)."""
    done = [int(p.parent.name.split("-")[1]) for p in (Path(directory) / ADAPTERS).glob(f"round-*/{ROUND_FILE}")]
    return max(done, default=0)


def current_adapter(directory: str | Path) -> tuple[str, int] | None:
    """(adapter folder, generator version) of the newest round, for resuming a campaign."""
    n = latest_round(directory)
    return (str(round_dir(directory, n)), n) if n else None


def archive_examples(store: CampaignStore, archive: Archive, domain: Domain, cfg: FinetuneConfig,
                     round_n: int, seed: int = 0, count: CountTokens = _approx_tokens) -> list[Example]:
    """The current elites (seeds excluded: they enter through the seed anchor) as examples;
    those not above ``cfg.fitness_above`` (the archive's current fitness) and, with
    ``cfg.own_solutions_only``, those solved by a fresh attempt instead of their author are
    left out; at most ``cfg.max_examples`` elites, drawn with a seeded RNG."""
    fitness = {e["candidate_id"]: e["fitness"] for e in archive.elites()}
    ids = sorted(i for i, f in fitness.items() if cfg.fitness_above is None or f > cfg.fitness_above)
    cands = store.get(ids)
    items = [(i, cands[i].item) for i in ids if not cands[i].is_seed and cands[i].item
             and not (cfg.own_solutions_only and cands[i].resolved)]
    rng = np.random.default_rng([seed, round_n, 1])
    if cfg.max_examples is not None and len(items) > cfg.max_examples:
        items = [items[i] for i in sorted(rng.choice(len(items), cfg.max_examples, replace=False))]
    return item_examples(domain, items, "archive", seeds=domain.seeds(), n_shots=1,
                         solve=cfg.solve_examples, max_length=cfg.max_length, rng=rng, count=count,
                         round=round_n)


def run_round(directory: str | Path, domain: Domain, current: list[Example], cfg: FinetuneConfig, *,
              base_model: str, round_n: int, seed: int = 0, count: CountTokens = _approx_tokens,
              device: str = "auto", source: str = "archive") -> dict[str, Any]:
    """Mixes ``current`` with earlier rounds (``accumulate``) and seed examples (``seed_share``),
    trains the round's adapter, writes ``round.json`` and returns it."""
    out = round_dir(directory, round_n)
    if (out / ROUND_FILE).exists():
        raise EvoError(f"{out} already holds a finished round")
    previous = read_examples(round_dir(directory, round_n - 1) / POOL_FILE) if cfg.accumulate and round_n > 1 else []
    pool = merge_rounds(previous, current)
    if not pool:
        raise EvoError("nothing to fine-tune on: the archive holds no elites beyond the seeds yet")
    rng = np.random.default_rng([seed, round_n, 2])
    seed_examples = item_examples(domain, [(None, s) for s in domain.seeds()], "seed", seeds=domain.seeds(),
                                  n_shots=1, solve=cfg.solve_examples, max_length=cfg.max_length, rng=rng,
                                  count=count)
    train = mix_with_seeds(pool, seed_examples, cfg.seed_share, rng)
    train = [train[i] for i in rng.permutation(len(train))]
    out.mkdir(parents=True, exist_ok=True)
    write_examples(out / POOL_FILE, pool)
    write_examples(out / TRAIN_FILE, train)
    result = train_lora(base_model, train, out, cfg, seed=seed, device=device)
    record = {
        "round": round_n, "version": round_n, "base_model": base_model, "adapter": str(out), "source": source,
        "data_hash": data_hash(train), "pool_hash": data_hash(pool), "n_examples": len(train),
        "n_new_examples": len(pool) - len(previous), "mix": shares(train),
        "anchors": {"seed_share": cfg.seed_share, "seed_examples": shares(train)["sources"].get("seed", 0),
                    "accumulate": cfg.accumulate, "accumulated_rounds": sorted({e.round for e in pool
                                                                               if e.round is not None}),
                    "kl_coef": cfg.kl_coef, "kl": cfg.kl_coef > 0},
        "finetune_config": cfg.model_dump(mode="json"),
        "config_hash": hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest(),
        **result, "created": time.time(),
    }
    (out / ROUND_FILE).write_text(json.dumps(record, indent=2))
    return record


def _update_record(record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    record.update(extra)
    (Path(record["adapter"]) / ROUND_FILE).write_text(json.dumps(record, indent=2))
    return record


def finetune_and_swap(campaign: Any, current: list[Example] | None = None,
                      source: str = "archive") -> dict[str, Any]:
    """One in-loop round on a :class:`evo.campaign.Campaign` (or anything with its attributes:
    ``config``, ``dir``, ``store``, ``archive``, ``domain``, ``sandbox``, ``generator``):
    trains on the elites, loads the tuned generator (version = round number), swaps it into
    ``campaign.generator.llm``, re-scores the elites and rebuilds ``campaign.archive`` in place.
    Returns the round's record (also in ``DIR/adapters/round-N/round.json``); when the archive
    holds no elites beyond the seeds yet it trains nothing and returns ``{"skipped": reason}``.
    ``current`` replaces the elites as this round's new examples (an experiment's arm trained
    on other data through the same mix, trainer, swap and re-score); ``source`` names them."""
    from evo.llm import load_generator
    from evo.llm.factory import generator_options, resolve_backend
    from evo.llm.timing import TimedLLM

    c, g = campaign.config, campaign.config.generator
    cfg = c.finetune
    n = latest_round(campaign.dir) + 1
    # a local model (transformers, vllm, auto): count with its tokenizer; a served one may not be local
    local = resolve_backend(g.backend) in ("transformers", "ctranslate2", "vllm")
    count = token_counter(g.model) if local else _approx_tokens
    if current is None:
        current = archive_examples(campaign.store, campaign.archive, campaign.domain, cfg, n, c.seed, count)
    if not current and not (cfg.accumulate and n > 1 and read_examples(round_dir(campaign.dir, n - 1) / POOL_FILE)):
        # Nothing new to learn from: keep the generator, let evolution go on.
        return {"round": n, "skipped": "no elites beyond the seeds yet", "created": time.time()}
    old = campaign.generator.llm if getattr(campaign, "generator", None) is not None else None
    # vLLM on a GPU holds most of its memory (gpu_memory_utilization): free it while training
    # (sleep mode), or the round runs out of memory, and so does every resume that retries it.
    if hasattr(old, "sleep"):
        old.sleep()
    try:
        record = run_round(campaign.dir, campaign.domain, current, cfg, base_model=g.model, round_n=n,
                           seed=c.seed, count=count, device=g.device, source=source)
    finally:
        if hasattr(old, "wake_up"):
            old.wake_up()
    if cfg.eval_limit and old is not None and not _heldout_rows(campaign.dir, n - 1):
        _heldout(campaign, old, cfg, n - 1)  # the curve's starting point: the generator before this round
    if hasattr(old, "set_adapter"):  # vLLM: hot-swap the LoRA, the base weights stay loaded
        old.set_adapter(record["adapter"], n)
    elif old is None and not (cfg.rescore or cfg.eval_limit):
        return record  # `evo finetune DIR --no-rescore`: nothing would use a generator
    else:  # transformers: free the old generator (GPU memory), load base + adapter
        if old is not None:
            campaign.generator.llm = old = None
        free_memory()
        llm = load_generator(g.backend, g.model, adapter=record["adapter"], version=n,
                             **generator_options(g, cfg))
        if getattr(campaign, "generator", None) is None:
            campaign.generator = TimedLLM(llm)
        else:
            campaign.generator.llm = llm
    rescore = None
    if cfg.rescore:
        rescore = rescore_elites(campaign.store, campaign.archive, campaign.domain, campaign.generator,
                                 campaign.sandbox, seed=c.seed * 7919 + 1_000_000 * n)
        campaign.generator.take_seconds()  # re-scoring is not the next iteration's generation time
    campaign.store.set_meta(generator_round={"round": n, "adapter": record["adapter"], "version": n})
    heldout = _heldout(campaign, campaign.generator.llm, cfg, n) if cfg.eval_limit else None
    return _update_record(record, rescore=rescore, heldout=heldout)


def _heldout_rows(directory: Path, round_n: int) -> list[dict[str, Any]]:
    from evo.rundir import HELDOUT_FILE

    path = Path(directory) / HELDOUT_FILE
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return [r for r in rows if r["round"] == round_n]


def _heldout(campaign: Any, llm: Any, cfg: FinetuneConfig, round_n: int) -> dict[str, Any]:
    """Held-out pass@k of ``llm`` appended to DIR/heldout.jsonl, and the curve re-plotted."""
    from evo.heldout import evaluate, plot_heldout
    from evo.rundir import HELDOUT_FILE

    bench = campaign.domain.benchmark("test", cfg.eval_limit, 0)
    r = evaluate(llm, bench, campaign.sandbox, n=cfg.eval_k, ks=(1, cfg.eval_k), seed=campaign.config.seed)
    row = {"model": campaign.config.generator.model, "adapter": str(round_dir(campaign.dir, round_n))
           if round_n else None, "series": "archive" if round_n else "base", "round": round_n,
           "split": "test", "limit": cfg.eval_limit, **r, "created": time.time()}
    path = Path(campaign.dir) / HELDOUT_FILE
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    plot_heldout(path)
    return {k: row[k] for k in ("round", "n_puzzles", "k", "pass@1", f"pass@{cfg.eval_k}")}


def finetune_campaign(directory: str | Path, overrides: dict[str, Any] | None = None,
                      rescore: bool = True) -> dict[str, Any]:
    """``evo finetune DIR``: one round from a finished campaign directory (its stored config,
    with ``finetune.*`` overrides), then the swap's re-score of its archive."""
    from evo.lock import WriterLock
    from evo.rundir import MEASURES_FILE, open_run
    from evo.sandbox import Sandbox

    directory = Path(directory)
    open_run(directory).close()  # a readable campaign directory, before locking it
    lock = WriterLock(directory, "evo finetune").acquire()  # one writer per campaign
    try:
        run = open_run(directory, migrate=True)
    except BaseException:
        lock.release()
        raise
    store = run.store
    try:
        saved = run.raw_config  # raw: the finetune overrides go over it before validation
        if saved is None or not run.measures_path.exists():
            raise EvoError(f"{directory} holds no finished campaign set-up (config / {MEASURES_FILE})")
        config = validate_config(saved, {"finetune": overrides or {}})
        if config.finetune.rescore and not rescore:
            config = config.model_copy(update={"finetune": config.finetune.model_copy(update={"rescore": False})})
        archive = run.archive
        if len(archive) == 0:
            raise EvoError(f"{directory}: the archive is empty, nothing to fine-tune on")
        domain = get_domain(config.domain, **config.domain_options)
        with Sandbox(config.sandbox) as sandbox:
            campaign = SimpleNamespace(config=config, dir=directory, store=store, archive=archive,
                                       domain=domain, sandbox=sandbox, generator=None)
            record = finetune_and_swap(campaign)
            record["archive"] = archive.stats()
        return record
    finally:
        store.close()
        lock.release()

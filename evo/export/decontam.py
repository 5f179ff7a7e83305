"""Decontamination: which items of a dataset overlap a held-out benchmark.

Four checks, each reported by name; an item is contaminated when any one fires:

- ``13-gram``: the item shares a 13-token sequence with a benchmark item, in the style
  of GPT-3 and later lab reports. Normalisation: lower case, every character that is
  not a letter or digit becomes a space, split on whitespace. A benchmark item shorter
  than 13 tokens (but at least ``min_tokens``) counts as one gram, its whole sequence.
- ``minhash``: Jaccard similarity of the two items' 5-token shingle sets is at least
  ``jaccard`` (renamed constants or a reordered line still match). MinHash-LSH
  (``datasketch``) finds the candidate pairs without comparing every pair; each is then
  confirmed on the exact shingle sets.
- ``embedding``: cosine similarity of the items' embeddings (the campaign's embedder)
  is at least ``cosine``.
- ``key``: the domain's normalised key equals the benchmark item's (P3: the
  AST-normalised puzzle), for benchmarks of the same domain.

Benchmarks come from the domains (:meth:`evo.domain.Domain.contamination_sources`) or
from a file of items the user names (JSONL or JSON).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evo.domain import BenchmarkItem, Domain, available_domains, get_domain
from evo.errors import EvoError

_WORD = re.compile(r"[^0-9a-z]+")
METHODS = ("13-gram", "minhash", "embedding", "key")


@dataclass
class Settings:
    """Thresholds of the checks (the defaults are what ``evo export`` uses)."""

    ngram: int = 13
    min_tokens: int = 8
    shingle: int = 5
    jaccard: float = 0.8
    num_perm: int = 128
    cosine: float = 0.95
    methods: tuple[str, ...] = METHODS


@dataclass
class ContaminationReference:
    """Held-out items that exported data must not overlap (a domain's
    ``contamination_sources``, or a file), by name. Not :class:`evo.domain.Benchmark`,
    which is a pass@k set of prompts and a checker."""

    name: str
    items: list[BenchmarkItem]


Benchmark = ContaminationReference  # the old name (until the next release)


@dataclass
class Hit:
    """Item ``index`` of the checked data overlaps ``item_id`` of benchmark ``source``."""

    index: int
    source: str
    item_id: str
    method: str
    score: float


@dataclass
class Report:
    """Hits per checked item, the benchmarks checked, and those that could not be."""

    hits: list[list[Hit]]
    checked: dict[str, int] = field(default_factory=dict)  # source -> its item count
    skipped: dict[str, str] = field(default_factory=dict)  # source -> why not checked
    settings: Settings = field(default_factory=Settings)

    @property
    def contaminated(self) -> list[int]:
        return [i for i, h in enumerate(self.hits) if h]

    def summary(self) -> dict[str, Any]:
        """JSON-able counts: per source and per method, items flagged."""
        per: dict[str, dict[str, int]] = {s: {"items": 0, **dict.fromkeys(self.settings.methods, 0)}
                                          for s in self.checked}
        for hits in self.hits:
            for s in {h.source for h in hits}:
                per[s]["items"] += 1
            for s, m in {(h.source, h.method) for h in hits}:
                per[s][m] += 1
        return {"checked": dict(self.checked), "skipped": dict(self.skipped),
                "flagged": len(self.contaminated), "total": len(self.hits), "per_source": per,
                "settings": {"ngram": self.settings.ngram, "jaccard": self.settings.jaccard,
                             "cosine": self.settings.cosine, "methods": list(self.settings.methods)}}


def tokens(text: str) -> list[str]:
    """The documented normalisation: lower case, non-alphanumerics to spaces, split."""
    return _WORD.sub(" ", text.lower()).split()


def _grams(toks: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def find_contamination(texts: Sequence[str], benchmarks: Sequence[ContaminationReference], *,
                       keys: Sequence[str | None] | None = None, domain: str | None = None,
                       embed_texts: Sequence[str] | None = None,
                       embed: Callable[[list[str]], np.ndarray] | None = None,
                       embeddings: np.ndarray | None = None,
                       settings: Settings | None = None) -> Report:
    """Checks every text against every benchmark. ``keys`` (normalised keys of the texts'
    items under ``domain``) enables the key check; ``embed`` (texts -> unit-norm rows)
    enables the embedding check on ``embed_texts`` (default ``texts``), or on the texts'
    ``embeddings`` when they are already computed."""
    s = settings or Settings()
    report = Report(hits=[[] for _ in texts], settings=s,
                    checked={b.name: len(b.items) for b in benchmarks})
    toks = [tokens(t) for t in texts]
    if "13-gram" in s.methods:
        _ngram_hits(toks, benchmarks, s, report)
    if "minhash" in s.methods:
        _minhash_hits(toks, benchmarks, s, report)
    if "key" in s.methods and keys is not None and domain is not None:
        for b in benchmarks:
            index = {it.key: it.id for it in b.items if it.key is not None and it.domain == domain}
            for i, k in enumerate(keys):
                if k is not None and k in index:
                    report.hits[i].append(Hit(i, b.name, index[k], "key", 1.0))
    if "embedding" in s.methods and embed is not None and len(texts):
        emb = embeddings if embeddings is not None else \
            embed(list(embed_texts if embed_texts is not None else texts))
        for b in benchmarks:
            if not b.items:
                continue
            bench = embed([it.embed or it.text for it in b.items])
            for start in range(0, len(emb), 1024):
                sims = emb[start:start + 1024] @ bench.T
                best = sims.argmax(axis=1)
                for j, (col, sim) in enumerate(zip(best, sims[np.arange(len(best)), best])):
                    if sim >= s.cosine:
                        report.hits[start + j].append(
                            Hit(start + j, b.name, b.items[col].id, "embedding", float(sim)))
    return report


def _ngram_hits(toks: list[list[str]], benchmarks: Sequence[ContaminationReference], s: Settings,
                report: Report) -> None:
    for b in benchmarks:
        index: dict[tuple[str, ...], str] = {}
        short: dict[int, dict[tuple[str, ...], str]] = {}
        for it in b.items:
            t = tokens(it.text)
            if len(t) >= s.ngram:
                for g in _grams(t, s.ngram):
                    index.setdefault(g, it.id)
            elif len(t) >= s.min_tokens:
                short.setdefault(len(t), {})[tuple(t)] = it.id
        for i, t in enumerate(toks):
            found = next((index[g] for g in _grams(t, s.ngram) if g in index), None)
            for n, grams in short.items():
                if found is None:
                    found = next((grams[g] for g in _grams(t, n) if g in grams), None)
            if found is not None:
                report.hits[i].append(Hit(i, b.name, found, "13-gram", 1.0))


def _minhash_hits(toks: list[list[str]], benchmarks: Sequence[ContaminationReference], s: Settings,
                  report: Report) -> None:
    from datasketch import MinHash, MinHashLSH

    def shingles(t: list[str]) -> set[bytes]:
        return {" ".join(g).encode() for g in _grams(t, s.shingle)} or {" ".join(t).encode()}

    sets = [shingles(t) for t in toks]
    lean = [MinHash.bulk([list(x) for x in sets], num_perm=s.num_perm)] if sets else [[]]
    for b in benchmarks:
        lsh = MinHashLSH(threshold=s.jaccard, num_perm=s.num_perm)
        bsets = [shingles(tokens(it.text)) for it in b.items]
        for j, mh in enumerate(MinHash.bulk([list(x) for x in bsets], num_perm=s.num_perm)):
            lsh.insert(str(j), mh, check_duplication=False)
        for i, mh in enumerate(lean[0]):
            best = max(((len(sets[i] & bsets[int(j)]) / len(sets[i] | bsets[int(j)]), int(j))
                        for j in lsh.query(mh)), default=None)
            if best is not None and best[0] >= s.jaccard:
                report.hits[i].append(Hit(i, b.name, b.items[best[1]].id, "minhash", best[0]))


# -- where benchmarks come from -----------------------------------------------------------

def domain_sources(domain: Domain | None = None) -> dict[str, Callable[[], list[BenchmarkItem]]]:
    """Every benchmark the installed domains bring (``domain``'s own first, as configured)."""
    sources: dict[str, Callable[[], list[BenchmarkItem]]] = {}
    if domain is not None:
        sources.update(domain.contamination_sources())
    for name in available_domains():
        try:
            other = get_domain(name)
        except EvoError:
            continue  # a domain that needs options to exist brings nothing by default
        for k, v in other.contamination_sources().items():
            sources.setdefault(k, v)
    return sources


def load_benchmarks(against: Sequence[str] | None, domain: Domain | None = None,
                    key: Callable[[dict[str, Any]], str] | None = None
                    ) -> tuple[list[ContaminationReference], dict[str, str]]:
    """``against``: names of domain benchmarks or paths of item files; None: every domain
    benchmark that can be loaded here (the others come back in the skipped dict, with why).
    A named source that cannot be loaded is an error."""
    sources = domain_sources(domain)
    out, skipped = [], {}
    for name in (against if against is not None else sorted(sources)):
        if name in sources:
            try:
                out.append(ContaminationReference(name, sources[name]()))
            except EvoError as exc:
                if against is not None:
                    raise
                skipped[name] = str(exc)
        elif Path(name).is_file():
            out.append(ContaminationReference(Path(name).name, read_items(Path(name), domain)))
        else:
            known = ", ".join(sorted(sources)) or "none installed"
            raise EvoError(f"unknown benchmark '{name}': neither a file nor a known "
                           f"benchmark ({known})")
    return out, skipped


def read_items(path: Path, domain: Domain | None = None) -> list[BenchmarkItem]:
    """A user's file of benchmark items: JSONL (one object or string per line) or a JSON
    list. An object's text is its string fields joined; when ``domain`` can parse the
    object as one of its items (``from_record``), its key takes part in the key check."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvoError(f"cannot read benchmark file {path}: {exc}") from None
    try:
        rows = json.loads(raw) if path.suffix == ".json" else \
            [json.loads(line) for line in raw.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise EvoError(f"benchmark file {path} is not JSON/JSONL: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(rows, list) or not rows:
        raise EvoError(f"benchmark file {path} holds no items")
    items = []
    for n, row in enumerate(rows):
        if isinstance(row, str):
            items.append(BenchmarkItem(id=f"{path.name}:{n}", text=row))
            continue
        if not isinstance(row, dict):
            raise EvoError(f"benchmark file {path} item {n}: an object or a string, got {type(row).__name__}")
        text = "\n".join(str(v) for v in row.values() if isinstance(v, str))
        ident = str(row.get("id", row.get("task_id", row.get("name", f"{path.name}:{n}"))))
        items.append(BenchmarkItem(id=ident, text=text, key=_key(domain, row),
                                   domain=domain.name if domain else None))
    return items


def _key(domain: Domain | None, row: dict[str, Any]) -> str | None:
    if domain is None:
        return None
    try:
        return domain.key(domain.parse(domain.from_record(row)))
    except Exception:  # noqa: BLE001 - a record the domain cannot read has no key
        return None


def embed_cached(embedder: Any, cache: Path | None = None) -> Callable[[list[str]], np.ndarray]:
    """``embedder.embed`` in batches, remembering benchmark embeddings on disk (one file
    per embedder and text set) so that each export does not re-embed them."""
    def run(texts: list[str]) -> np.ndarray:
        digest = hashlib.sha256("\x00".join([str(getattr(embedder, "name", "")), *texts]).encode())
        path = cache / f"{digest.hexdigest()[:24]}.npy" if cache else None
        if path is not None and path.is_file():
            return np.load(path)
        parts = [np.zeros((0, embedder.dim), dtype=np.float32)]
        for start in range(0, len(texts), 256):
            parts.append(np.asarray(embedder.embed(texts[start:start + 256]), dtype=np.float32))
        out = np.concatenate(parts)
        if path is not None and len(texts) >= 64:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, out)
            tmp.replace(path)
        return out
    return run

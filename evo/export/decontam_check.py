"""``evo check-contamination``: the decontamination check on any campaign or dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evo.domain import get_domain
from evo.errors import EvoError
from evo.export.decontam import Report, Settings, embed_cached, find_contamination, load_benchmarks
from evo.rundir import STORE_FILE, open_run

TEXT_COLUMNS = ("text", "messages", "prompt", "chosen", "rejected", "completion")


def check(source: str | Path, against: list[str] | None, cosine: float = 0.95,
          jaccard: float = 0.8) -> tuple[Report, list[Any]]:
    """A campaign directory (every valid candidate, with the domain's key check) or a
    dataset (a folder ``datasets`` loads, or a JSONL/Parquet file: each row's text
    columns). Returns the report and an id per checked item."""
    from evo.descriptor import Embedder
    from evo.llm.embedded import cache_dir

    for name, value in (("--cosine", cosine), ("--jaccard", jaccard)):
        if not 0 < value <= 1:
            raise EvoError(f"{name} must be in (0, 1], got {value}")
    source = Path(source)
    settings = Settings(cosine=cosine, jaccard=jaccard)
    if (source / STORE_FILE).is_file():
        with open_run(source) as run:
            cfg = run.config
            cands = list(run.store.candidates("verdict = 'valid' AND item IS NOT NULL"))
        domain = get_domain(cfg.domain, **cfg.domain_options)
        benches, skipped = load_benchmarks(against, domain)
        embedder = Embedder(cfg.descriptor.embedder)
        items = [c.item for c in cands]
        report = find_contamination([domain.render(it) for it in items], benches,
                                    keys=[domain.key(it) for it in items], domain=domain.name,
                                    embed_texts=[domain.text(it) for it in items],
                                    embed=embed_cached(embedder, cache_dir() / "contamination"),
                                    settings=settings)
        ids: list[Any] = [c.id for c in cands]
    else:
        rows = _rows(source)
        benches, skipped = load_benchmarks(against)
        texts = [row_text(r) for r in rows]
        report = find_contamination(texts, benches, embed=embed_cached(
            Embedder(), cache_dir() / "contamination"), settings=settings)
        ids = [r.get("id", i) for i, r in enumerate(rows)]
    report.skipped.update(skipped)
    return report, ids


def _rows(source: Path) -> list[dict[str, Any]]:
    from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

    try:
        if source.is_dir():
            if (source / "dataset_dict.json").is_file() or (source / "dataset_info.json").is_file():
                ds = load_from_disk(str(source))
            else:
                ds = load_dataset(str(source))
        elif source.suffix in (".jsonl", ".json"):
            ds = load_dataset("json", data_files=str(source))
        elif source.suffix == ".parquet":
            ds = load_dataset("parquet", data_files=str(source))
        else:
            raise EvoError(f"{source}: not a campaign directory, dataset folder, JSONL or Parquet file")
    except EvoError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; one line for the user
        raise EvoError(f"cannot read {source} as a dataset: {str(exc).splitlines()[0]}") from None
    parts = list(ds.values()) if isinstance(ds, DatasetDict) else [ds]
    rows = [r for part in parts if isinstance(part, Dataset) for r in part]
    if not rows:
        raise EvoError(f"{source} holds no rows")
    return rows


def row_text(row: dict[str, Any]) -> str:
    """A row's text: its text columns, chat turns as their contents, joined."""
    parts = []
    for col in TEXT_COLUMNS:
        v = row.get(col)
        if isinstance(v, str):
            parts.append(v)
        elif isinstance(v, list):
            parts += [m.get("content", "") for m in v if isinstance(m, dict)]
    if not parts:
        parts = [v for v in row.values() if isinstance(v, str)]
    return "\n".join(parts)

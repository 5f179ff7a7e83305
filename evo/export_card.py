"""Writing an exported dataset: the data files per split and the dataset card (README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILES = {"jsonl": "{}.jsonl", "parquet": "{}.parquet"}
STAT_ROWS = [
    ("source", "selected from"), ("pool", "candidates in the selection"),
    ("dropped_seeds", "seeds dropped (--no-seeds)"), ("dropped_min_fitness", "below --min-fitness"),
    ("removed_exact", "exact duplicates removed"), ("removed_near", "near-duplicates removed"),
    ("dropped_per_cell", "over the --per-cell cap"), ("removed_reverify", "failed re-verification"),
    ("exported", "exported"), ("seeds", "of which seeds"), ("cells", "archive cells covered"),
    ("split_groups", "near-duplicate groups (split unit)"), ("split_threshold", "group threshold"),
]
COLUMNS = {
    "id": "candidate id in the campaign store",
    "messages": "chat example (user: instruction, assistant: the item); TRL SFTTrainer takes it as is",
    "fitness": "fitness the campaign gave the item", "fitness_parts": "its parts, as a JSON object",
    "measures": "archive measures (descriptor coordinates)", "cell": "archive cell index",
    "is_seed": "true for seed items (not generated)", "iteration": "campaign iteration that made it",
    "operator": "operator that made it (seed, lmx, mutation, scratch)",
    "parents": "candidate ids of its parents (lineage)",
    "generator_version": "generator version (fine-tuning round) that made it",
    "item": "the full item, as JSON",
}


def write_dataset(folder: Path, format: str, records: list[dict[str, Any]],
                  splits: dict[str, list[int]], campaign: Path, stats: dict[str, Any],
                  meta: dict[str, Any], command: str) -> None:
    """Writes the splits in ``format`` and README.md (with heatmap.png when it can) to ``folder``."""
    if format == "jsonl":
        for name, idx in splits.items():
            with open(folder / FILES["jsonl"].format(name), "w", encoding="utf-8") as fh:
                for i in idx:
                    fh.write(json.dumps(records[i], ensure_ascii=False) + "\n")
    elif format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(records)
        for name, idx in splits.items():
            pq.write_table(table.take(idx), folder / FILES["parquet"].format(name))
    else:
        from datasets import Dataset, DatasetDict
        from datasets.utils import logging as ds_logging

        was_on = ds_logging.is_progress_bar_enabled()
        ds_logging.disable_progress_bar()  # the CLI shows its own progress
        try:
            ds = Dataset.from_list(records)
            DatasetDict({n: ds.select(idx) for n, idx in splits.items()}).save_to_disk(str(folder))
        finally:
            if was_on:
                ds_logging.enable_progress_bar()
    heatmap = _heatmap(campaign, folder / "heatmap.png")
    card = dataset_card(format, records, splits, campaign, stats, meta, command, heatmap)
    (folder / "README.md").write_text(card, encoding="utf-8")


def _heatmap(campaign: Path, png: Path) -> str | None:
    """Draws the archive heatmap with ``evo.plot.heatmap``; returns why not, or None."""
    try:
        from evo.plot import heatmap
    except ImportError as exc:
        return f"evo.plot is not available ({exc})"
    try:
        heatmap(campaign, png)
    except Exception as exc:  # noqa: BLE001 - the card is still useful without the image
        return f"drawing it failed ({type(exc).__name__}: {exc})"
    return None if png.is_file() else "evo.plot.heatmap wrote no image"


def dataset_card(format: str, records: list[dict[str, Any]], splits: dict[str, list[int]],
                 campaign: Path, stats: dict[str, Any], meta: dict[str, Any], command: str,
                 heatmap_missing: str | None) -> str:
    cfg = meta.get("config") or {}
    domain, name = cfg.get("domain", "?"), cfg.get("name", "campaign")
    fit = [r["fitness"] for r in records]
    lines = ["---", "tags:", "- evo", "- synthetic", "- map-elites", f"- {domain}"]
    if format in FILES:
        lines += ["configs:", "- config_name: default", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {FILES[format].format(split)}"]
    lines += ["---", "", f"# {name}: {domain} dataset exported by evo", "",
              f"{len(records)} verified items from the MAP-Elites campaign `{name}` "
              f"(domain `{domain}`), selected from its "
              f"{'full history' if stats['source'] == 'history' else 'archive elites'} and "
              "ready for supervised fine-tuning (`messages` column).", "",
              "## How it was made", "", "```bash", command, "```", "",
              f"- campaign: `{campaign}` (id `{meta.get('campaign_id')}`)",
              f"- generator: `{cfg.get('generator', {}).get('model', '?')}`, "
              f"embedder: `{cfg.get('descriptor', {}).get('embedder', '?')}`",
              f"- archive: {cfg.get('archive', {}).get('kind', '?')} "
              f"{cfg.get('archive', {}).get('dims', '')}, campaign seed {cfg.get('seed', 0)}",
              "", "## Stats", "", "| step | count |", "|---|---|"]
    lines += [f"| {label} | {stats[k]} |" for k, label in STAT_ROWS if k in stats]
    lines += [f"| split `{s}` | {n} |" for s, n in stats["splits"].items()]
    lines += [f"| fitness min / mean / max | {min(fit):.3f} / {sum(fit) / len(fit):.3f} / "
              f"{max(fit):.3f} |", "", "## Archive heatmap", ""]
    lines += ([f"No heatmap in this card: {heatmap_missing}."] if heatmap_missing
              else ["![archive heatmap](heatmap.png)"])
    domain_cols = [c for c in records[0] if c not in COLUMNS]
    lines += ["", "## Columns", ""] + [f"- `{c}`: domain field" for c in domain_cols]
    lines += [f"- `{c}`: {d}" for c, d in COLUMNS.items()]
    lines += ["", "## Loading", "", "```python"]
    if format == "hf":
        lines += ["from datasets import load_from_disk", "ds = load_from_disk('PATH')"]
    else:
        files = ", ".join(f"'{s}': 'PATH/{FILES[format].format(s)}'" for s in splits)
        lines += ["from datasets import load_dataset",
                  "ds = load_dataset('PATH')  # the card's configs name the files",
                  f"ds = load_dataset('{'json' if format == 'jsonl' else 'parquet'}', "
                  f"data_files={{{files}}})  # the same, spelled out"]
    lines += ["```", ""]
    return "\n".join(lines)

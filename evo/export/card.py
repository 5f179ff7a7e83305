"""Writing an exported dataset: the data files per split and the dataset card (README.md,
a Hugging Face card whose YAML header lets ``datasets.load_dataset(PATH)`` read it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FILES = {"jsonl": "{}.jsonl", "parquet": "{}.parquet", "hf": "{}/*.arrow"}
STAT_ROWS = [
    ("source", "selected from"), ("pool", "candidates in the selection"),
    ("dropped_seeds", "seeds dropped (--no-seeds)"), ("dropped_min_fitness", "below --min-fitness"),
    ("removed_exact", "exact duplicates removed"), ("removed_near", "near-duplicates removed"),
    ("dropped_per_cell", "over the --per-cell cap"), ("removed_reverify", "failed re-verification"),
    ("removed_contaminated", "overlapping a held-out benchmark (removed)"),
    ("pairs", "preference pairs"), ("exported", "rows exported"), ("seeds", "of which seeds"), ("cells", "archive cells covered"),
    ("split_groups", "near-duplicate groups (split unit)"), ("split_threshold", "group threshold"),
]
COLUMNS = {
    "id": "candidate id in the campaign store",
    "messages": "chat example (user: instruction, assistant: the item); TRL SFTTrainer takes it as is",
    "fitness": "fitness the campaign gave the item", "fitness_parts": "its parts, as a JSON object",
    "measures": "archive measures (descriptor coordinates)", "cell": "archive cell index",
    "is_seed": "true for seed items (not generated)", "iteration": "campaign iteration that made it",
    "operator": "operator that made it (seed, lmx, mutation, scratch, continuation)",
    "parents": "candidate ids of its parents (lineage)",
    "generator_version": "generator version (fine-tuning round) that made it",
    "item": "the full item, as JSON",
    "task": "framing: generate (write a new item) or solve (the item is the prompt)",
    "contaminated_by": "held-out benchmark items this one overlaps (--decontaminate flag)",
}
PAIR_COLUMNS = {
    "prompt": "the generator's prompt (instruction and the parent examples), one user turn",
    "chosen": "the best verified child of that prompt (assistant turn)",
    "rejected": "a sibling that lost to it (assistant turn)",
    "completion": "a child of the prompt (assistant turn)",
    "label": "true: the best verified child; false: a sibling that lost",
    "lost_because": "why the rejected child lost: its verdict and reason, or its lower fitness",
    "chosen_id": "candidate id of the chosen child", "rejected_id": "candidate id of the rejected one",
    "chosen_fitness": "fitness of the chosen child", "rejected_fitness": "fitness of the rejected one (null if invalid)",
    "rejected_verdict": "verdict of the rejected child", "id": "candidate id", "verdict": "verifier verdict",
    "fitness": "fitness (null if not valid)", "operator": "operator that made the prompt",
    "iteration": "campaign iteration", "generator_version": "generator version (fine-tuning round)",
}


def write_dataset(folder: Path, records: list[dict[str, Any]], splits: dict[str, list[int]],
                  campaign: Path, stats: dict[str, Any], meta: dict[str, Any], command: str,
                  ctx: dict[str, Any]) -> None:
    """Writes the splits in ``stats["files"]`` format and README.md (the dataset card, with
    heatmap.png when it can) to ``folder``. ``ctx``: domain, the exported items, their
    embeddings and the split side of each item, for the card's per-split numbers."""
    from datasets import Dataset, DatasetDict
    from datasets.utils import logging as ds_logging

    files = stats["files"]
    was_on = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()  # the CLI shows its own progress
    try:
        ds = Dataset.from_list(records)
        dd = DatasetDict({n: ds.select(idx) for n, idx in splits.items()})
        if files == "jsonl":
            for name, idx in splits.items():
                with open(folder / FILES["jsonl"].format(name), "w", encoding="utf-8") as fh:
                    for i in idx:
                        fh.write(json.dumps(records[i], ensure_ascii=False) + "\n")
        elif files == "parquet":
            for name, part in dd.items():
                part.to_parquet(str(folder / FILES["parquet"].format(name)))
        else:
            dd.save_to_disk(str(folder))
    finally:
        if was_on:
            ds_logging.enable_progress_bar()
    heatmap = _heatmap(campaign, folder / "heatmap.png")
    per_split = _per_split(records, splits, ctx, meta)
    card = dataset_card(files, records, splits, campaign, stats, meta, command, heatmap,
                        dd, per_split, ctx["domain"])
    (folder / "README.md").write_text(card, encoding="utf-8")


def _per_split(records: list[dict[str, Any]], splits: dict[str, list[int]],
               ctx: dict[str, Any], meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from evo.export.stats import split_stats

    dims = (meta.get("config") or {}).get("archive", {}).get("dims") or []
    total = int(np.prod(dims)) if dims else None
    side = ctx["item_side"]
    return {name: split_stats(records, idx, ctx["items"],
                              np.flatnonzero(side == k).tolist(), ctx["emb"], ctx["domain"], total)
            for k, (name, idx) in enumerate(splits.items())}


def _heatmap(campaign: Path, png: Path) -> str | None:
    """Draws the archive heatmap with ``evo.visualize.plot.heatmap``; returns why not, or None."""
    try:
        from evo.visualize.plot import heatmap
    except ImportError as exc:
        return f"evo.visualize.plot is not available ({exc})"
    try:
        heatmap(campaign, png)
    except Exception as exc:  # noqa: BLE001 - the card is still useful without the image
        return f"drawing it failed ({type(exc).__name__}: {exc})"
    return None if png.is_file() else "evo.visualize.plot.heatmap wrote no image"


def _yaml_header(files: str, splits: dict[str, list[int]], dd: Any, tags: list[str]) -> str:
    """The card's YAML: ``configs`` (which file is which split, so ``load_dataset(PATH)``
    and the Hub find them) and ``dataset_info`` (features and split sizes), written by
    ``datasets`` and ``huggingface_hub`` themselves."""
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from huggingface_hub import DatasetCardData

    data = DatasetCardData(tags=tags, configs=[{
        "config_name": "default",
        "data_files": [{"split": s, "path": FILES[files].format(s)} for s in splits]}])
    split_dict = SplitDict()
    for s in splits:
        split_dict.add(SplitInfo(name=s, num_examples=len(dd[s])))
    info = DatasetInfo(features=dd[next(iter(splits))].features, splits=split_dict)
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    return f"---\n{data.to_yaml()}\n---"


def _guarantees(domain: Any) -> list[str]:
    import sys

    doc = (sys.modules[type(domain).__module__].__doc__ or "").strip()
    return ["What \"verified\" means here, in the domain's own words:", "",
            *[f"> {line}" if line else ">" for line in doc.splitlines()], "",
            "What it does not mean: the verifier checks what its code checks and no more. An item "
            "can be valid and still dull, mislabelled in ways no test catches, or close to a "
            "benchmark not listed under Decontamination. Fitness is relative to the generator "
            "that scored it (e.g. P3 difficulty is the share of its own solve attempts that "
            "failed). Rejected completions in preference data lost to a sibling for the reason "
            "given; they are not known-wrong beyond that reason.", ""]


def _decontam_lines(d: dict[str, Any] | None) -> list[str]:
    if not d:
        return ["Not checked (`--decontaminate off`).", ""]
    st = d["settings"]
    lines = [f"Mode `{d['mode']}`: {d['flagged']} of {d['total']} items overlap a held-out "
             f"benchmark{' and were removed' if d['mode'] == 'drop' else ' (column `contaminated_by`)'}. "
             f"Checks: {st['ngram']}-gram overlap (lower case, non-alphanumerics to spaces, split on "
             f"whitespace), MinHash-LSH Jaccard >= {st['jaccard']} on 5-token shingles, "
             f"embedding cosine >= {st['cosine']}, and the domain's normalised key.", "",
             "| benchmark | items | flagged | " + " | ".join(st["methods"]) + " |",
             "|---|---|---|" + "---|" * len(st["methods"])]
    for name, n in d["checked"].items():
        per = d["per_source"][name]
        lines.append(f"| {name} | {n} | {per['items']} | "
                     + " | ".join(str(per[m]) for m in st["methods"]) + " |")
    for name, why in d["skipped"].items():
        lines.append(f"| {name} | not checked: {why} | | " + " | " * len(st["methods"]))
    if d.get("removed"):
        lines += ["", "Removed (up to 20 shown):", ""]
        lines += [f"- `{r['id']}`: {', '.join(r['matches'])}" for r in d["removed"][:20]]
    return lines + [""]


def _split_lines(name: str, st: dict[str, Any]) -> list[str]:
    lines = [f"### Split `{name}`: {st['rows']} rows", ""]
    for key, val in st.items():
        if key.startswith("by_"):
            lines.append(f"- {key[3:].replace('_', ' ')}: "
                         + ", ".join(f"`{k}` {v}" for k, v in val.items()))
    if "fitness" in st:
        f = st["fitness"]
        lines.append(f"- fitness: mean {f['mean']:.3f}, min / q25 / median / q75 / max "
                     + " / ".join(f"{q:.3f}" for q in f["quantiles"]) + "; histogram "
                     + ", ".join(f"[{k}] {v}" for k, v in f["histogram"].items()))
    d = st["diversity"]
    cov = f" (coverage {d['coverage']:.1%} of the archive)" if "coverage" in d else ""
    mpd = f", mean pairwise embedding distance {d['mean_pairwise_distance']:.3f}" \
        if "mean_pairwise_distance" in d else ""
    lines.append(f"- diversity: {d['items']} distinct items in {d['cells']} cells{cov}{mpd}; "
                 f"{d['distinct_exact']} distinct by normalised key, {d['distinct_near']} after "
                 "near-duplicate removal (cosine > 0.95)")
    return lines + [""]


ROWS = {
    "sft": "supervised fine-tuning (`messages`; TRL `SFTTrainer` takes it as is)",
    "dpo": "preference pairs (`prompt`, `chosen`, `rejected` in TRL's conversational form; "
           "TRL `DPOTrainer` takes them as is)",
    "kto": "unpaired preferences (`prompt`, `completion`, `label`; TRL `KTOTrainer`)",
}


def dataset_card(files: str, records: list[dict[str, Any]], splits: dict[str, list[int]],
                 campaign: Path, stats: dict[str, Any], meta: dict[str, Any], command: str,
                 heatmap_missing: str | None, dd: Any, per_split: dict[str, dict[str, Any]],
                 domain_obj: Any = None) -> str:
    import yaml

    cfg = meta.get("config") or {}
    domain, name, fmt = cfg.get("domain", "?"), cfg.get("name", "campaign"), stats["format"]
    lines = [_yaml_header(files, splits, dd, ["evo", "synthetic", "map-elites", domain, fmt]), "",
             f"# {name}: {domain} dataset exported by evo", "",
             f"{len(records)} rows of {ROWS[fmt]}, from the MAP-Elites campaign `{name}` "
             f"(domain `{domain}`), selected from its "
             f"{'archive elites' if stats['source'] == 'elites' else 'full history'}"
             + (f"; task framing `{stats['task']}`." if fmt == "sft" else "."), "",
             "## How it was made", "", "```bash", command, "```", "",
             f"- campaign: `{campaign}` (id `{meta.get('campaign_id')}`)",
             f"- generator: `{cfg.get('generator', {}).get('model', '?')}`, "
             f"embedder: `{cfg.get('descriptor', {}).get('embedder', '?')}`",
             f"- archive: {cfg.get('archive', {}).get('kind', '?')} "
             f"{cfg.get('archive', {}).get('dims', '')}, campaign seed {cfg.get('seed', 0)}", "",
             "<details><summary>campaign config</summary>", "", "```yaml",
             yaml.safe_dump(cfg, sort_keys=False).rstrip(), "```", "", "</details>", ""]
    if domain_obj is not None:
        lines += ["## What the verifier guarantees", "", *_guarantees(domain_obj)]
    lines += ["## Pipeline", "", "| step | count |", "|---|---|"]
    lines += [f"| {label} | {stats[k]} |" for k, label in STAT_ROWS if k in stats]
    lines += [f"| split `{s}` | {n} |" for s, n in stats["splits"].items()]
    lines += ["", "## Decontamination", "", *_decontam_lines(stats.get("decontamination")),
              "## Splits", ""]
    for split, st in per_split.items():
        lines += _split_lines(split, st)
    lines += ["## Archive heatmap", ""]
    lines += ([f"No heatmap in this card: {heatmap_missing}."] if heatmap_missing
              else ["![archive heatmap](heatmap.png)"])
    lines += ["", "## Columns", ""]
    if fmt == "sft":
        lines += [f"- `{c}`: domain field" for c in records[0] if c not in COLUMNS]
        lines += [f"- `{c}`: {d}" for c, d in COLUMNS.items() if c in records[0]]
    else:
        lines += [f"- `{c}`: {PAIR_COLUMNS.get(c, '')}" for c in records[0]]
    lines += ["", "## Loading", "", "```python", "from datasets import load_dataset",
              "ds = load_dataset('PATH')  # the card's configs name the files"]
    if files == "hf":
        lines += ["# or: from datasets import load_from_disk; ds = load_from_disk('PATH')"]
    lines += ["```", ""]
    return "\n".join(lines)

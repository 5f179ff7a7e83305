"""Export a campaign as a fine-tuning dataset: select -> dedup -> re-verify ->
decontaminate -> split -> write (with a dataset card), and check any dataset for
contamination.

Modules: ``pipeline`` (:func:`export_campaign`), ``dedup`` (exact and near-duplicate
removal, the leak-free split), ``decontam`` (overlap with held-out benchmarks),
``decontam_check`` (``evo check-contamination``), ``pairs`` (DPO/KTO rows), ``card``
(files and README), ``stats`` (per-split numbers), ``hub`` (``--push-to-hub``).
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module that defines it. Loaded on first use (PEP 562): the CLI imports
# evo.export.options for its `evo export` options at start-up, and must not pay for
# numpy, pyribs and the domains the pipeline imports.
_WHERE = {
    "ContaminationReference": "decontam",
    "Report": "decontam",
    "Settings": "decontam",
    "find_contamination": "decontam",
    "load_benchmarks": "decontam",
    "assign_split": "dedup",
    "exact_dedup": "dedup",
    "near_dedup": "dedup",
    "near_groups": "dedup",
    "per_cell_cap": "dedup",
    "DECONTAMINATE": "options",
    "ExportConfig": "options",
    "FILE_FORMATS": "options",
    "FORMATS": "options",
    "TASKS": "options",
    "export_command": "options",
    "export_campaign": "pipeline",
    "to_record": "pipeline",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

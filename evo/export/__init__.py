"""Export a campaign as a fine-tuning dataset: select -> dedup -> re-verify ->
decontaminate -> split -> write (with a dataset card), and check any dataset for
contamination.

Modules: ``pipeline`` (:func:`export_campaign`), ``dedup`` (exact and near-duplicate
removal, the leak-free split), ``decontam`` (overlap with held-out benchmarks),
``decontam_check`` (``evo check-contamination``), ``pairs`` (DPO/KTO rows), ``card``
(files and README), ``stats`` (per-split numbers), ``hub`` (``--push-to-hub``).
"""

from evo.export.decontam import (
    ContaminationReference,
    Report,
    Settings,
    find_contamination,
    load_benchmarks,
)
from evo.export.dedup import assign_split, exact_dedup, near_dedup, near_groups, per_cell_cap
from evo.export.options import DECONTAMINATE, FILE_FORMATS, FORMATS, TASKS, ExportConfig
from evo.export.pipeline import (
    export_campaign,
    export_command,
    to_record,
)

__all__ = [
    "ContaminationReference",
    "DECONTAMINATE",
    "ExportConfig",
    "FILE_FORMATS",
    "FORMATS",
    "Report",
    "Settings",
    "TASKS",
    "assign_split",
    "exact_dedup",
    "export_campaign",
    "export_command",
    "find_contamination",
    "load_benchmarks",
    "near_dedup",
    "near_groups",
    "per_cell_cap",
    "to_record",
]

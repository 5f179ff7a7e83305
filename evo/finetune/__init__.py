"""Self-improvement: fine-tune the generator on its elites (LoRA via TRL), swap it in,
re-score the archive; see :func:`finetune_and_swap` (in the loop) and
:func:`finetune_campaign` (``evo finetune DIR``)."""

from evo.finetune.rounds import (
    archive_examples,
    current_adapter,
    finetune_and_swap,
    finetune_campaign,
    latest_round,
    round_dir,
    run_round,
)

__all__ = ["archive_examples", "current_adapter", "finetune_and_swap", "finetune_campaign",
           "latest_round", "round_dir", "run_round"]

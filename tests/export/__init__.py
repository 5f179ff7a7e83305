"""Dataset export, dedup and decontamination (evo.export)."""

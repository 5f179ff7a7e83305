"""LoRA rounds (evo.finetune)."""

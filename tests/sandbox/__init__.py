"""The execution sandbox (evo.sandbox)."""

"""The `evo` command line."""

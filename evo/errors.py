"""User-facing errors: the CLI prints their message on one line and exits 2."""


class EvoError(Exception):
    """A problem with the user's input (config, paths, data), not a bug in evo."""

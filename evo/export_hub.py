"""Moved to :mod:`evo.export.hub` (issue 34); this path works for one more release."""

from evo._moved import moved

moved(__name__, "evo.export.hub")

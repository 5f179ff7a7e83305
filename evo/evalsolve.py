"""Moved to :mod:`evo.heldout` (issue 34: named after what it measures, not an old
command); this path works for one more release."""

from evo._moved import moved

moved(__name__, "evo.heldout")

"""Moved to :mod:`domains.code_tests.contamination` (issue 34): it is the contamination
reference, not the pass@k benchmark; this path works for one more release."""

from evo._moved import moved

moved(__name__, "domains.code_tests.contamination")

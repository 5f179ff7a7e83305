"""Lets vLLM's engine start in a process that has numba loaded.

pyribs imports numpy_groupies, which imports numba, which loads llvmlite. When the
process that starts vLLM imported pyribs at module level (``experiments/compare.py``
does: it imports ``archives``), vLLM's CPU worker has llvmlite in ``sys.modules`` too:
inherited on fork, or re-imported with ``__main__`` on spawn. Before any model code runs,
vLLM 0.32 scans every module attribute for Triton kernels and reads ``vars(value)`` of
each. llvmlite's library handle answers any attribute through ``__getattr__``, so its
``__dict__`` is a function wrapper, ``vars(...).get`` raises, and the engine dies with
"'_lib_fn_wrapper' object has no attribute 'get'".

Giving the handle an empty ``__dict__`` entry in its function table makes ``vars`` return
``{}``, which is what the scan expects; nothing in llvmlite reads that entry. It runs in
vLLM's processes as a general plugin (entry point in pyproject.toml) and does nothing where
llvmlite is not loaded.
"""

from __future__ import annotations

import sys


def register() -> None:
    """vLLM general-plugin hook: makes llvmlite's library handle safe for ``vars``."""
    ffi = sys.modules.get("llvmlite.binding.ffi")
    table = getattr(getattr(ffi, "lib", None), "_fntab", None) if ffi is not None else None
    # an earlier vars() call may have cached the function wrapper there: replace it
    if isinstance(table, dict) and not isinstance(table.get("__dict__"), dict):
        table["__dict__"] = {}

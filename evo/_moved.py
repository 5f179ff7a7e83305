"""Old module paths that keep working for a release after a module moved (issue 34).

An alias module calls :func:`moved` with its own name and the new path: the old name then
becomes the new module itself in ``sys.modules`` (so ``monkeypatch`` on either path patches
the same object), and importing it warns once with a DeprecationWarning that names the new
path. :func:`merged` serves an old module whose contents went to several new ones.
"""

from __future__ import annotations

import importlib
import sys
import warnings


def _warn(old: str, new: str) -> None:
    # stacklevel 4: past this helper, the alias module and the import machinery's frame
    warnings.warn(f"{old} moved to {new}; the old path goes away in the next release",
                  DeprecationWarning, stacklevel=4)


def moved(old: str, new: str) -> None:
    """Make module ``old`` an alias of module ``new`` (call it from ``old``'s body)."""
    _warn(old, new)
    sys.modules[old] = importlib.import_module(new)


def merged(old: str, *new: str) -> None:
    """Give module ``old`` every name (private ones too) of the modules ``new``."""
    _warn(old, " and ".join(new))
    namespace = sys.modules[old].__dict__
    for name in new:
        module = importlib.import_module(name)
        namespace.update({k: v for k, v in module.__dict__.items() if not k.startswith("__")})

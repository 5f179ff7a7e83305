"""Old module paths keep working for a release (issue 34): importing one warns with a
DeprecationWarning naming the new path and gives the new module itself (so a monkeypatch
through either path patches the same object)."""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest

MOVED = {
    "evo.export_card": "evo.export.card",
    "evo.export_pairs": "evo.export.pairs",
    "evo.export_stats": "evo.export.stats",
    "evo.export_hub": "evo.export.hub",
    "evo.dedup": "evo.export.dedup",
    "evo.decontam": "evo.export.decontam",
    "evo.decontam_check": "evo.export.decontam_check",
    "evo.view": "evo.visualize.view",
    "evo.plot": "evo.visualize.plot",
    "evo.report": "evo.visualize.report",
    "evo.report_page": "evo.visualize.page",
    "evo.plaindata": "evo.sandbox.plaindata",
    "evo.timing": "evo.llm.timing",
}


def _fresh_import(name: str):
    sys.modules.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(name)
    return module, [w for w in caught if issubclass(w.category, DeprecationWarning)]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_is_the_new_module_and_warns(old):
    new = importlib.import_module(MOVED[old])
    module, caught = _fresh_import(old)
    assert module is new
    assert caught and MOVED[old] in str(caught[0].message)
    sys.modules.pop(old, None)  # leave no alias behind for other tests


def test_distributed_keeps_both_halves():
    module, caught = _fresh_import("evo.distributed")
    from evo.llm.ray_generator import RayGenerator
    from evo.raycluster import init_ray, ray_cause
    from evo.sandbox.ray_sandbox import RaySandbox

    assert (module.RaySandbox, module.RayGenerator) == (RaySandbox, RayGenerator)
    assert (module.init_ray, module.ray_cause) == (init_ray, ray_cause)
    assert caught
    sys.modules.pop("evo.distributed", None)


def test_package_surfaces():
    import evo.export
    import evo.visualize

    for package in (evo.export, evo.visualize):
        assert package.__all__ == sorted(package.__all__)
        assert all(hasattr(package, name) for name in package.__all__)
    from evo.campaign import (  # still importable from the loop
        MEASURES_FILE,
        summarize,
        summary_rows,
    )
    from evo.rundir import MEASURES_FILE as FILE
    from evo.summary import summarize as s
    from evo.summary import summary_rows as rows

    assert (MEASURES_FILE, summarize, summary_rows) == (FILE, s, rows)


def test_the_sandbox_ships_the_codec_from_its_new_file(tmp_path):
    """Verifiers read the codec's own source (``plaindata.__file__``) and run it where evo
    cannot be imported: through the old path too, that must be the real codec's file."""
    import subprocess

    old, _ = _fresh_import("evo.plaindata")
    from evo.sandbox import plaindata

    assert old.__file__ == plaindata.__file__ and plaindata.__file__.endswith("evo/sandbox/plaindata.py")
    program = plaindata.sandbox_prelude() + "print(_evo_plain.encode((1, 'a')))\n"
    out = subprocess.run([sys.executable, "-I", "-c", program], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert plaindata.decode(out.stdout.strip()) == (1, "a")
    sys.modules.pop("evo.plaindata", None)

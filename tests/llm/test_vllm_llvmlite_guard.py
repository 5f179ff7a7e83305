"""vLLM's engine starts in a process that imported pyribs (and so numba and llvmlite) first.

vLLM 0.32's CPU worker reads ``vars(value)`` of every module attribute; llvmlite's library
handle answers ``__dict__`` with a function wrapper, and the engine died ("'_lib_fn_wrapper'
object has no attribute 'get'") whenever the main module imported ``archives`` at the top, as
``experiments/compare.py`` does. :mod:`evo.llm.vllm_llvmlite_guard` is the fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evo.llm import vllm_llvmlite_guard
from tests.vllm_fixtures import engine_script


def test_guard_gives_llvmlites_library_handle_a_dict_for_vars():
    ffi = pytest.importorskip("llvmlite.binding.ffi")
    ffi.lib._fntab.pop("__dict__", None)
    assert not isinstance(vars(ffi.lib), dict)  # the trap vLLM's kernel scan falls into
    vllm_llvmlite_guard.register()
    assert vars(ffi.lib) == {}
    assert ffi.lib.LLVMPY_GetVersionInfo() > 0  # the library itself still works


def test_guard_does_nothing_without_llvmlite(monkeypatch):
    monkeypatch.delitem(sys.modules, "llvmlite.binding.ffi", raising=False)
    vllm_llvmlite_guard.register()  # must not import or raise


@pytest.mark.vllm
def test_engine_starts_under_a_main_module_that_imports_archives(tmp_path):
    pytest.importorskip("vllm", reason="vLLM's CPU build is missing (make install puts it in .venv)")
    script = engine_script(tmp_path / "main_with_archives.py",
                           imports="import archives  # noqa: F401  (pyribs -> numpy_groupies -> numba -> llvmlite)",
                           then="""
                               out = gen.generate(["def f(x):"], SamplingParams(n=1, max_new_tokens=4))
                               print("GENERATED", out[0][0].num_tokens)
                           """)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "GENERATED" in proc.stdout

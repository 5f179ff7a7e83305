"""What this machine's CPU can do, for the choices that depend on it (dtype, auto model).

Its own module so that both the model files (:mod:`evo.llm.embedded`) and the backends can
ask without importing each other. Callers use ``hardware.cpu_has_bf16()`` through the module,
so one monkeypatch here reaches them all."""

from __future__ import annotations

from pathlib import Path

__all__ = ["cpu_has_bf16"]


def cpu_has_bf16() -> bool:
    """Native bfloat16 matmuls (AVX512-BF16 or AMX), where bf16 beats float32 on CPU.

    False when torch is held below AVX-512 (``ATEN_CPU_CAPABILITY=avx2``): that is how the
    benchmarks emulate an AVX2 machine, and there bf16 would be emulated, several times slower."""
    import torch

    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags

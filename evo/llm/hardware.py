"""What this machine's CPU can do, for the choices that depend on it (dtype, auto model).

Its own module so that both the model files (:mod:`evo.llm.embedded`) and the backends can
ask without importing each other. Callers use ``hardware.cpu_has_bf16()`` through the module,
so one monkeypatch here reaches them all."""

from __future__ import annotations

from pathlib import Path

__all__ = ["cpu_has_bf16", "machine_facts"]

# the flags that decide CPU speed for these models (float32 is several times slower without bf16)
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


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


def machine_facts() -> dict[str, object]:
    """The CPU model, core count and speed flags, for a result to carry beside its timings."""
    import os

    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "cpu_flags": [f for f in SPEED_FLAGS if f in flags]}

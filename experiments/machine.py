"""Machine facts that every benchmark result records next to its numbers."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from evo.llm.hardware import machine_facts


def cpu_model() -> str:
    model = str(machine_facts()["cpu"])
    return model if model != "unknown CPU" else platform.processor() or "unknown"


def nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return str(os.cpu_count())


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def cpu_flags() -> str:
    """The CPU flags that decide CPU speed here (AVX2, AVX-512, VNNI, native bf16, AMX): the
    engine's own list (:func:`evo.llm.hardware.machine_facts`), so results and logs agree."""
    return " ".join(machine_facts()["cpu_flags"]) or "none of avx2/avx512"


def cpu_flag_line(flags: tuple[str, ...]) -> str:
    """``"avx2 yes, avx512f no, ..."`` for each of ``flags`` on this CPU."""
    try:
        have = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        have = set()
    return ", ".join(f"{f} {'yes' if f in have else 'no'}" for f in flags)

"""Machine facts that every benchmark result records next to its numbers."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
    """The CPU flags that decide CPU speed here: AVX2, AVX-512 and native bf16."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
                return " ".join(f for f in wanted if f in have) or "none of avx2/avx512"
    except OSError:
        pass
    return "unknown"


def cpu_flag_line(flags: tuple[str, ...]) -> str:
    """``"avx2 yes, avx512f no, ..."`` for each of ``flags`` on this CPU."""
    try:
        have = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        have = set()
    return ", ".join(f"{f} {'yes' if f in have else 'no'}" for f in flags)

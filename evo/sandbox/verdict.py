"""The outcome of one sandboxed evaluation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

OK = "ok"
FAILED = "failed"
TIMEOUT = "timeout"
MEMORY = "memory"
KILLED = "killed"
OUTPUT_LIMIT = "output-limit"
STATUSES = (OK, FAILED, TIMEOUT, MEMORY, KILLED, OUTPUT_LIMIT)


@dataclass
class Verdict:
    """What happened to one evaluation.

    ``status`` is "ok" only when the code ran to the end and its result came back
    through the sandbox's private result channel; an exit code never counts.
    """

    status: str  # one of STATUSES
    returncode: int | None  # exit code of the evaluation process, -N for signal N
    stdout: str  # truncated to the cap
    stderr: str
    duration_s: float
    value: object = None  # JSON-decoded value of `expr` when status == "ok"
    error: str | None = None  # e.g. "ZeroDivisionError: division by zero"

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict:
        return asdict(self)

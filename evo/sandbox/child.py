"""Code that runs inside the forked evaluation process (imported by the worker; stdlib only).

`run_child` sets the process up (own session, rlimits, scratch dir, private uid, clean
environment, fresh stdio) and then runs the untrusted code. The only way to "ok" is the
JSON result written to RESULT_FD at the very end; exiting early, whatever the code, is
not a result.
"""

import builtins
import ctypes
import io
import json
import linecache
import os
import resource
import signal
import sys
import traceback
import types

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
RESULT_FD = 3
SETUP_FAILED = 71
DIE_WITH_WORKER = True  # the worker switches it off under bwrap
_libc = ctypes.CDLL(None, use_errno=True)
_MEMORY_PAYLOAD = b'{"ok": false, "kind": "memory", "error": "MemoryError"}'


def prctl(option: int, arg: int) -> int:
    return _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0)


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def prepare_worker(scratch: str) -> None:
    """Run once in the worker: everything the children inherit instead of redoing it.

    The environment every evaluation sees, stdio objects over fds 0/1/2 (each child
    points those fds at its own pipes), and a warm-up so that the first compile, exec,
    JSON and traceback work in each child does not start cold.
    """
    prctl(PR_SET_NO_NEW_PRIVS, 1)  # inherited by every child; no setuid binary regains root
    os.environ.clear()
    os.environ.update(PATH="/usr/bin:/bin", HOME=scratch, TMPDIR=scratch, LANG="C.UTF-8")
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace"
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )
    warm = "def f(n):\n    return [n, str(n), {'k': n / 2}]\nx = f(1)\n"
    ns: dict = {}
    exec(compile(warm, "<warm-up>", "exec"), ns)
    json.loads(json.dumps({"ok": True, "value": ns["x"]}))
    try:
        eval(compile("1 / 0", "<warm-up>", "eval"), ns)
    except ZeroDivisionError as exc:
        traceback.format_exception(type(exc), exc, exc.__traceback__)
        describe(exc)


def run_child(job: dict, scratch: str, uid: int, fds: tuple[int, int, int], token: bytes) -> None:
    """Set up the evaluation process, then run the code. Never returns."""
    try:
        w_out, w_err, w_res = fds
        os.setsid()  # own session and process group
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        os.dup2(w_res, RESULT_FD)
        os.closerange(RESULT_FD + 1, 1 << 16)  # the worker's protocol pipes included
        os.set_inheritable(RESULT_FD, False)  # a program it execs does not get the channel
        cpu = int(job["timeout_s"]) + 1
        mem = job["memory_mb"] << 20
        for res, soft, hard in (
            (resource.RLIMIT_AS, mem, mem),
            (resource.RLIMIT_CPU, cpu, cpu + 1),
            (resource.RLIMIT_NPROC, job["max_procs"], job["max_procs"]),
            (resource.RLIMIT_FSIZE, job["max_file_bytes"], job["max_file_bytes"]),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_NOFILE, 256, 256),
        ):
            resource.setrlimit(res, (soft, hard))
        os.chdir(scratch)
        if uid >= 0:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        if DIE_WITH_WORKER:  # (bwrap: the PID namespace dies with the worker anyway)
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
        # environment and sys.std* were set up once in the worker (prepare_worker)
    except BaseException:
        os._exit(SETUP_FAILED)
    _evaluate_code(job["source"], job.get("expr"), job.get("filename") or "<candidate>", token)


def _evaluate_code(source: str, expr: str | None, filename: str, token: bytes) -> None:
    # bound now: the program may monkeypatch os, json or sys before we get them back
    dumps, write, exit_now = json.dumps, os.write, os._exit
    flush_out, flush_err = sys.stdout.flush, sys.stderr.flush
    module = types.ModuleType("__main__")
    module.__file__ = filename
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    sys.argv = [filename]
    ns = module.__dict__
    payload = _MEMORY_PAYLOAD
    try:
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), ns)
        value = eval(compile(expr, "<expr>", "eval"), ns) if expr is not None else None
        try:
            payload = dumps({"ok": True, "value": value}).encode()
        except MemoryError:
            raise
        except Exception as exc:
            error = f"result is not JSON-serializable: {_safe_describe(exc)}"
            payload = dumps({"ok": False, "kind": "failed", "error": error}).encode()
    except MemoryError:
        ns.clear()
    except BaseException as exc:
        try:
            if isinstance(exc, SystemExit):
                error = f"exited without a result (SystemExit: {exc.code!r})"
            else:
                error = _safe_describe(exc)
                traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
            payload = dumps({"ok": False, "kind": "failed", "error": error[:2000]}).encode()
        except MemoryError:
            ns.clear()
        except BaseException:
            payload = b'{"ok": false, "kind": "failed", "error": "unprintable exception"}'
    for flush in (flush_out, flush_err):
        try:
            flush()
        except BaseException:
            pass
    view = memoryview(token + payload)  # the token: no blind forgery of a result
    while view:
        view = view[write(RESULT_FD, view) :]
    exit_now(0)


def _safe_describe(exc: BaseException) -> str:
    try:
        return describe(exc)
    except BaseException:
        return type(exc).__name__

"""Calling an untrusted puzzle ``f``: every call in a fresh fork with no result channel.

Shipped as source into a sandboxed evaluation (stdlib only, after the plain-data prelude
``_evo_plain``). The evaluation process E holds the sandbox's result channel (fd 3) and
its token; ``f`` never runs in E. For each input E forks a call process P from itself,
a template in which no code of the puzzle has run, and P:

- closes fd 3 (so the token in its memory opens nothing), cannot fork or start threads
  (``RLIMIT_NPROC`` 0: no helper outlives the call to carry state to the next one), cannot
  write file data (``RLIMIT_FSIZE`` 0) or message queues;
- decodes its one input, then defines ``f`` afresh (definition-time code runs per call),
  calls it, and reports by its exit status, which the kernel gives E for this process
  only. A P can decide only its own input's verdict, which is ``f``'s to decide anyway.

E is not dumpable, so a P of the same uid can neither ptrace it nor open its
``/proc/PID/fd/3``. The inputs run one at a time in a random order (``SystemRandom``),
every one through the same code with the same shape of data, so nothing tells the check
of ``g``'s answer from a trivial answer, a solve attempt or a search probe. After each
call E checks that the call left no file in its scratch directory and no SysV IPC object
(both would outlive it). ``twin`` judges the inputs a second time in a new interpreter
with another hash seed and ``sys.argv``, all in one process in another random order: a
verdict that differs (hash seed, argv, call order, state kept between calls) is reported.
"""

import builtins as _evo_builtins
import ctypes as _evo_ctypes
import json as _evo_json
import linecache as _evo_linecache
import os as _evo_os
import random as _evo_random
import resource as _evo_resource
import select as _evo_select
import signal as _evo_signal
import sys as _evo_sys
import time as _evo_time
import types as _evo_types
import typing as _evo_typing  # noqa: F401 (imported once here, not in every call)

_EVO_ACCEPT, _EVO_REJECT, _EVO_RAISED = 42, 43, 44
_EVO_TYPING = "from typing import Dict, List\n\n"  # every call sees the same names
_EVO_TWIN = r'''
import json, os, random, sys, types
data = json.loads(sys.stdin.read())
plain = types.ModuleType("plain")
exec(data["plain"], plain.__dict__)
module = types.ModuleType("__main__")
sys.modules["__main__"] = module
out = []
try:
    exec(compile(data["f"], "<puzzle>", "exec"), module.__dict__)
    f = module.__dict__["f"]
except BaseException:
    f = None
order = list(range(len(data["inputs"])))
random.SystemRandom().shuffle(order)
for i in order:
    try:
        ok = f is not None and f(plain.decode(data["inputs"][i])) is True
    except BaseException:
        ok = False
    out.append([i, ok])
os.write(1, json.dumps(out).encode())
os._exit(0)
'''


def _evo_lock_down():
    # not dumpable: same-uid processes cannot ptrace E or open its fds through /proc
    _evo_ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)


def _evo_state():
    """What a call could leave for the next one: scratch files, SysV IPC objects."""
    out = []
    try:
        out.append(sorted(_evo_os.listdir(".")))
    except OSError:
        out.append(None)
    for name in ("shm", "sem", "msg"):
        try:
            with open("/proc/sysvipc/" + name) as fh:
                out.append(fh.read().count("\n"))
        except OSError:
            out.append(None)
    return out


def _evo_confine():
    """In a fresh call process, before any puzzle code: no channel, no helpers, no files."""
    _evo_os.close(3)
    for res in (_evo_resource.RLIMIT_NPROC, _evo_resource.RLIMIT_FSIZE, _evo_resource.RLIMIT_MSGQUEUE):
        _evo_resource.setrlimit(res, (0, 0))
    _evo_linecache.cache.clear()
    _evo_sys.argv = ["<puzzle>"]


def _evo_fresh_f(code):
    module = _evo_types.ModuleType("__main__")
    module.__builtins__ = _evo_builtins
    _evo_sys.modules["__main__"] = module
    exec(code, module.__dict__)
    return module.__dict__["f"]


def _evo_wait(pid, deadline):
    """The exit status of ``pid`` (None: killed at the deadline)."""
    fd = _evo_os.pidfd_open(pid)
    try:
        left = deadline - _evo_time.monotonic()
        if left <= 0 or not _evo_select.select([fd], [], [], left)[0]:
            try:
                _evo_os.kill(pid, _evo_signal.SIGKILL)
            except OSError:
                pass
            _evo_os.waitpid(pid, 0)
            return None
    finally:
        _evo_os.close(fd)
    return _evo_os.waitpid(pid, 0)[1]


def _evo_read(fd, cap=300):
    _evo_os.set_blocking(fd, False)
    try:
        data = _evo_os.read(fd, cap)
    except OSError:
        data = b""
    _evo_os.close(fd)
    return data.decode("utf-8", "replace")


def _evo_call(code, arg, deadline):
    """One call of ``f`` on encoded ``arg`` in its own fork -> (accepted, why)."""
    r, w = _evo_os.pipe()
    pid = _evo_os.fork()
    if pid == 0:
        status, why = _EVO_RAISED, "setup failed"
        try:
            _evo_os.close(r)
            _evo_confine()
            x = _evo_plain.decode(arg)  # noqa: F821 (the prelude defines it)
            result = _evo_fresh_f(code)(x)
            if result is True:
                _evo_os._exit(_EVO_ACCEPT)
            status, why = _EVO_REJECT, f"returned {result!r:.60}"
        except BaseException as exc:
            try:
                why = f"raised {type(exc).__name__}: {exc!s:.100}"
            except BaseException:
                why = "raised an exception"
        try:
            _evo_os.write(w, why.encode("utf-8", "replace")[:300])
        except BaseException:
            pass
        _evo_os._exit(status)
    _evo_os.close(w)
    wstatus = _evo_wait(pid, deadline)
    why = _evo_read(r)
    if wstatus is None:
        return False, "timeout"
    if _evo_os.WIFEXITED(wstatus) and _evo_os.WEXITSTATUS(wstatus) == _EVO_ACCEPT:
        return True, ""
    if _evo_os.WIFSIGNALED(wstatus):
        return False, f"killed by signal {_evo_os.WTERMSIG(wstatus)}"
    return False, why or "exited without a verdict"


def _evo_twin(f_src, inputs, deadline):
    """The inputs judged again in a new interpreter (other hash seed, other argv)."""
    rin, win = _evo_os.pipe()
    rout, wout = _evo_os.pipe()
    seed = str(_evo_random.SystemRandom().randrange(1, 1 << 32))
    pid = _evo_os.fork()
    if pid == 0:
        try:
            _evo_os.dup2(rin, 0)
            _evo_os.dup2(wout, 1)
            _evo_confine()
            env = dict(_evo_os.environ, PYTHONHASHSEED=seed)
            exe = _evo_sys.executable
            _evo_os.execve(exe, [exe, "-S", "-s", "-P", "-c", _EVO_TWIN, "--twin"], env)
        finally:
            _evo_os._exit(_EVO_RAISED)
    for fd in (rin, wout):
        _evo_os.close(fd)
    plain = _EVO_PLAIN_SRC  # noqa: F821 (the prelude defines it)
    # the list in another order than the first judging's: an f that accepts "the input at
    # position 0" (read from the frames) then has to guess g's position twice
    perm = list(range(len(inputs)))
    _evo_random.SystemRandom().shuffle(perm)
    payload = _evo_json.dumps({"plain": plain, "f": _EVO_TYPING + f_src, "inputs": [inputs[p] for p in perm]})
    try:
        _evo_os.write(win, payload.encode())  # may block on a large payload: f reads it all first
    except OSError:
        pass
    _evo_os.close(win)
    wstatus = _evo_wait(pid, deadline)
    out = _evo_read(rout, 1 << 20)
    if wstatus is None:
        return None
    try:
        pairs = _evo_json.loads(out)
        seen = {int(i): bool(ok) for i, ok in pairs if type(i) is int and type(ok) is bool}
        back = [False] * len(inputs)
        for j, p in enumerate(perm):
            back[p] = seen[j]
        return back
    except Exception:
        return None


def _evo_judge(f_src, inputs, twin, budget_s):
    """Each encoded input judged by ``f`` in a fresh fork -> {"accepted", "why", "error"}."""
    deadline = _evo_time.monotonic() + budget_s
    _evo_lock_down()
    accepted, why = [False] * len(inputs), ["not judged"] * len(inputs)
    try:
        code = compile(_EVO_TYPING + f_src, "<puzzle>", "exec")
    except SyntaxError as exc:
        return {"accepted": accepted, "why": why, "error": f"f does not compile: {exc}"}
    order = list(range(len(inputs)))
    _evo_random.SystemRandom().shuffle(order)
    before = _evo_state()
    error = None
    for i in order:
        if _evo_time.monotonic() >= deadline:  # no fork for a call that has no time left
            why[i] = "timeout"
            continue
        accepted[i], why[i] = _evo_call(code, inputs[i], deadline)
        if _evo_state() != before:
            error = "f left files or IPC objects behind after a call (state between calls)"
            break
    if error is None and twin and "timeout" in why:
        error = "the judge ran out of time before a second judging"
    elif error is None and twin:
        again = _evo_twin(f_src, inputs, deadline)
        if again is None:
            error = "the second judging (another hash seed and argv) gave no verdicts"
        elif again != accepted:
            error = ("nondeterministic: a second judging (another hash seed and argv, "
                     "every call in one process, another order) differs")
    return {"accepted": accepted, "why": why, "error": error}


def _evo_relay(f_src, expr_args, budget_s):
    """The enumerative search run in a call process; E relays its (untrusted) report."""
    deadline = _evo_time.monotonic() + budget_s
    _evo_lock_down()
    r, w = _evo_os.pipe()
    pid = _evo_os.fork()
    if pid == 0:
        try:
            _evo_os.close(r)
            _evo_confine()
            f = _evo_fresh_f(compile(_EVO_TYPING + f_src, "<puzzle>", "exec"))
            report = _evo_search(f, *expr_args)  # noqa: F821 (enumerate.py's harness)
            _evo_os.write(w, _evo_json.dumps(report).encode()[: 1 << 16])
        finally:
            _evo_os._exit(0)
    _evo_os.close(w)
    buf = bytearray()
    while True:
        left = deadline - _evo_time.monotonic()
        if left <= 0 or not _evo_select.select([r], [], [], left)[0]:
            break
        chunk = _evo_os.read(r, 65536)
        if not chunk or len(buf) > (1 << 16):
            break
        buf += chunk
    try:
        _evo_os.kill(pid, _evo_signal.SIGKILL)
    except OSError:
        pass
    _evo_os.waitpid(pid, 0)
    _evo_os.close(r)
    return {"report": bytes(buf).decode("utf-8", "replace")}

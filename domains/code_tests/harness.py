"""The code_tests harness: one sandboxed evaluation runs an item's tests against one solution.

Shipped as source into the evaluation (stdlib only), after the plain-data prelude
``_evo_plain`` and the constants ``_EVO_CT_TESTER`` (:mod:`domains.code_tests.tester`'s
source) and ``_EVO_CT_PLAIN`` (:mod:`evo.sandbox.plaindata`'s). Three kinds of process:

- **E**, the evaluation process, runs this file and nothing the author wrote. It alone
  holds the sandbox's result channel (fd 3) and its token, and it is not dumpable, so a
  process of the same uid can neither ptrace it nor open ``/proc/E/fd/3``.
- **S**, the solution: a fork of E that closes every descriptor but its two pipes, may
  not fork, write file data or make message queues, loads the solution in a fresh module
  and answers calls: plain-data arguments in, plain-data result (and the arguments
  afterwards, for in-place changes) or an exception's name out.
- **R**, the test runner (:mod:`domains.code_tests.tester`): a fresh interpreter that
  never held the solution or the token, forking one process per test.

E relays every call from a test to S and back, decoding both directions strictly, so
what a test sees of the solution is plain data, and E itself knows, per test, whether
the solution misbehaved on its own (raised, crashed, ran past the time limit, returned
something that is not plain data): such a failure is not a kill of a mutant. A test's
verdict is its process's exit status; a test cannot write another test's verdict, the
solution's answers, or E's result. If S dies or hangs, E starts a fresh one for the next
test.
"""

import ctypes as _evo_ct_ctypes
import json as _evo_ct_json
import os as _evo_ct_os
import resource as _evo_ct_resource
import select as _evo_ct_select
import signal as _evo_ct_signal
import sys as _evo_ct_sys
import time as _evo_ct_time
import types as _evo_ct_types

_EVO_CT_MAX_FRAME = 6_100_000
_EVO_CT_MAX_CALLS = 5000


def _evo_ct_kill(pid):
    if pid is None:
        return
    try:
        _evo_ct_os.kill(pid, _evo_ct_signal.SIGKILL)
    except OSError:
        pass
    try:
        _evo_ct_os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _evo_ct_close_all(keep):
    for fd in range(3, 256):
        if fd not in keep:
            try:
                _evo_ct_os.close(fd)
            except OSError:
                pass


def _evo_ct_confine():
    for res in (_evo_ct_resource.RLIMIT_NPROC, _evo_ct_resource.RLIMIT_FSIZE, _evo_ct_resource.RLIMIT_MSGQUEUE):
        _evo_ct_resource.setrlimit(res, (0, 0))
    _evo_ct_sys.argv = ["<solution>"]


class _EvoCtFrames:
    """Length-prefixed frames read without blocking from an untrusted writer."""

    def __init__(self, fd):
        self.fd, self.buf, self.eof = fd, bytearray(), False
        _evo_ct_os.set_blocking(fd, False)

    def pull(self):
        """Read what is there; complete frames (texts, or None for a malformed one)."""
        try:
            while True:
                chunk = _evo_ct_os.read(self.fd, 1 << 16)
                if not chunk:
                    self.eof = True
                    break
                self.buf += chunk
                if len(self.buf) > _EVO_CT_MAX_FRAME + 10:
                    break
        except BlockingIOError:
            pass
        out = []
        while len(self.buf) >= 10:
            head = bytes(self.buf[:10])
            if not head.isdigit() or int(head) > _EVO_CT_MAX_FRAME:
                self.buf.clear()
                out.append(None)
                break
            n = int(head)
            if len(self.buf) < 10 + n:
                break
            body = bytes(self.buf[10:10 + n])
            del self.buf[:10 + n]
            try:
                out.append(body.decode("utf-8", "surrogatepass"))
            except UnicodeDecodeError:
                out.append(None)
        return out

    def drain(self):
        self.pull()
        self.buf.clear()


def _evo_ct_push(fd, text, deadline, watch):
    """Write one frame; False when ``deadline`` passes or ``watch`` becomes readable."""
    data = text.encode("utf-8", "surrogatepass")
    view = memoryview(b"%010d" % len(data) + data)
    while view:
        left = deadline - _evo_ct_time.monotonic()
        if left <= 0:
            return False
        readable, writable, _ = _evo_ct_select.select([watch], [fd], [], left)
        if readable:
            return False
        if writable:
            try:
                view = view[_evo_ct_os.write(fd, view):]
            except BlockingIOError:
                pass
            except OSError:
                return False
    return True


def _evo_ct_serve(solution, entry, rq, rs):
    """S: load the solution afresh, then answer calls until the request pipe closes."""
    read, write, exit_now = _evo_ct_os.read, _evo_ct_os.write, _evo_ct_os._exit
    encode, decode, dumps = _evo_plain.encode, _evo_plain.decode, _evo_ct_json.dumps  # noqa: F821
    not_plain = _evo_plain.NotPlainData  # noqa: F821

    def reply(out, after, raised):
        view = dumps([out, after, raised]).encode("utf-8", "surrogatepass")
        view = memoryview(b"%010d" % len(view) + view)
        while view:
            view = view[write(rs, view):]

    def recv():
        buf = bytearray()
        need = 10
        while len(buf) < need:
            chunk = read(rq, need - len(buf))
            if not chunk:
                return None
            buf += chunk
            if need == 10 and len(buf) == 10:
                need = 10 + int(bytes(buf))
        return bytes(buf[10:]).decode("utf-8", "surrogatepass")

    fn, load = None, None
    try:
        module = _evo_ct_types.ModuleType("__main__")
        module.__builtins__ = __builtins__
        _evo_ct_sys.modules["__main__"] = module
        exec(compile(solution, "<solution>", "exec"), module.__dict__)
        fn = module.__dict__[entry]
    except BaseException as exc:
        try:
            load = f"{type(exc).__name__} at load"
        except BaseException:
            load = "an exception at load"
    try:
        write(rs, b"0000000005ready")  # loaded (or failed to): the tests' clocks may start
    except BaseException:
        exit_now(1)
    while True:
        try:
            text = recv()
            if text is None:
                exit_now(0)
            if load is not None:
                reply(None, None, load)
                continue
            try:
                args, kwargs = decode(text)
                result = fn(*args, **kwargs)
            except BaseException as exc:
                try:
                    name = str(type(exc).__name__)[:80]
                except BaseException:
                    name = "an exception"
                reply(None, None, name)
                continue
            try:
                out, after = encode(result), encode([args, kwargs])
            except not_plain:
                reply(None, None, "NotPlainData")
                continue
            reply(out, after, None)
        except BaseException:
            exit_now(1)


def _evo_ct_answer(text):
    """S's answer (hostile) -> (the text to send the test, None or why the solution failed)."""
    plain = _evo_plain  # noqa: F821
    try:
        out, after, raised = _evo_ct_json.loads(text)
        if raised is not None:
            if type(raised) is not str or out is not None or after is not None:
                raise ValueError
            why = ("a result is not plain data (an object, a subclass, a generator, or too large)"
                   if raised == "NotPlainData" else "the solution raised " + raised[:80])
            return _evo_ct_json.dumps([None, None, raised[:80]]), why
        value, moved = plain.decode(out), plain.decode(after)
        if type(moved) is not list or len(moved) != 2 or type(moved[0]) is not list or type(moved[1]) is not dict:
            raise ValueError
        return _evo_ct_json.dumps([plain.encode(value), plain.encode(moved), None]), None
    except Exception:
        return _evo_ct_json.dumps([None, None, "malformed answer"]), "the solution's answer is malformed"


def _evo_ct_request(text):
    """A test's call (hostile) -> its canonical text, or None."""
    plain = _evo_plain  # noqa: F821
    try:
        value = plain.decode(text)
        if type(value) is not list or len(value) != 2 or type(value[0]) is not list or type(value[1]) is not dict:
            return None
        if any(type(k) is not str for k in value[1]):
            return None
        return plain.encode(value)
    except Exception:
        return None


class _EvoCtSolution:
    def __init__(self, solution, entry):
        rq_r, self.rq_w = _evo_ct_os.pipe()
        self.rs_r, rs_w = _evo_ct_os.pipe()
        pid = _evo_ct_os.fork()
        if pid == 0:
            try:
                _evo_ct_close_all({rq_r, rs_w})
                _evo_ct_confine()
                _evo_ct_serve(solution, entry, rq_r, rs_w)
            finally:
                _evo_ct_os._exit(1)
        self.pid = pid
        _evo_ct_os.close(rq_r)
        _evo_ct_os.close(rs_w)
        _evo_ct_os.set_blocking(self.rq_w, False)
        self.frames = _EvoCtFrames(self.rs_r)

    def await_ready(self, until):
        """S's first frame says it has loaded the solution; False: it died or took too long."""
        while not self.frames.eof:
            left = until - _evo_ct_time.monotonic()
            if left <= 0 or not _evo_ct_select.select([self.rs_r], [], [], left)[0]:
                return False
            if self.frames.pull():
                return True
        return False

    def stop(self):
        _evo_ct_kill(self.pid)
        for fd in (self.rq_w, self.rs_r):
            _evo_ct_os.close(fd)


class _EvoCtRunner:
    def __init__(self, tests, imports, entry, per_test_s):
        pipes = [_evo_ct_os.pipe() for _ in range(4)]  # commands, reports, requests, answers
        (ctl_r, self.ctl_w), (self.rep_r, rep_w), (self.req_r, req_w), (self.ans_r, self.ans_w) = pipes
        in_r, in_w = _evo_ct_os.pipe()
        pid = _evo_ct_os.fork()
        if pid == 0:
            try:
                keep = [ctl_r, rep_w, req_w, self.ans_r]
                _evo_ct_os.dup2(in_r, 0)
                _evo_ct_close_all(set(keep))
                for fd in keep:
                    _evo_ct_os.set_inheritable(fd, True)
                exe = _evo_ct_sys.executable
                argv = [exe, "-I", "-S", "-c", _EVO_CT_TESTER, *map(str, keep)]  # noqa: F821
                _evo_ct_os.execve(exe, argv, {"PYTHONHASHSEED": "0"})
            finally:
                _evo_ct_os._exit(1)
        self.pid = pid
        for fd in (ctl_r, rep_w, req_w, in_r):
            _evo_ct_os.close(fd)
        data = {"plain": _EVO_CT_PLAIN, "tests": tests, "imports": imports,  # noqa: F821
                "entry": entry, "per_test_s": per_test_s}
        self.stdin = in_w
        self.payload = _evo_ct_json.dumps(data).encode("utf-8", "surrogatepass")
        self.requests = _EvoCtFrames(self.req_r)
        _evo_ct_os.set_blocking(self.ans_w, False)  # E's alone; ans_r is shared with the tests
        self.reports = bytearray()
        _evo_ct_os.set_blocking(self.rep_r, False)

    def feed(self, deadline):
        view = memoryview(self.payload)
        while view:
            left = deadline - _evo_ct_time.monotonic()
            if left <= 0 or not _evo_ct_select.select([], [self.stdin], [], left)[1]:
                return False
            view = view[_evo_ct_os.write(self.stdin, view[: 1 << 16]):]
        _evo_ct_os.close(self.stdin)
        return True

    def report(self):
        """R's report on the current test, once it is complete: [i, status, why, seconds]."""
        try:
            chunk = _evo_ct_os.read(self.rep_r, 4096)
            if not chunk:
                return "eof"
            self.reports += chunk
        except BlockingIOError:
            pass
        if b"\n" not in self.reports:
            return None
        line, _, rest = bytes(self.reports).partition(b"\n")
        self.reports = bytearray(rest)
        return _evo_ct_json.loads(line)

    def drain_answers(self):
        """What a dead test left unread (ans_r stays blocking: the tests read it too)."""
        while _evo_ct_select.select([self.ans_r], [], [], 0)[0]:
            if not _evo_ct_os.read(self.ans_r, 1 << 16):
                break

    def stop(self):
        _evo_ct_kill(self.pid)
        for fd in (self.ctl_w, self.rep_r, self.req_r, self.ans_r, self.ans_w):
            _evo_ct_os.close(fd)


def _evo_ct_fresh(state, deadline):
    """A new S, once it has loaded the solution (within one test's time), or None."""
    sol = _EvoCtSolution(state["source"], state["entry"])
    if sol.await_ready(min(deadline, _evo_ct_time.monotonic() + state["load_s"])):
        state["solution"] = sol
        return sol
    sol.stop()
    return None


def _evo_ct_test(i, state, runner, deadline):
    """Run test ``i``: relay its calls to S until R reports -> (status, why, own, own_why)."""
    if state["solution"] is None:  # loaded before the test's clock starts
        _evo_ct_fresh(state, deadline)
    _evo_ct_os.write(runner.ctl_w, b"%d\n" % i)
    queue, waiting, own, own_why = [], False, False, ""
    while True:
        left = deadline - _evo_ct_time.monotonic()
        if left <= 0:
            return "timeout", "the evaluation ran out of time", own, own_why
        sol = state["solution"]
        watch = [runner.rep_r, runner.req_r] + ([sol.rs_r] if waiting else [])
        ready = _evo_ct_select.select(watch, [], [], left)[0]
        if runner.rep_r in ready:
            rep = runner.report()
            if rep == "eof":
                raise RuntimeError("the test runner died")
            if rep is not None:
                if type(rep) is not list or len(rep) != 4 or rep[0] != i:
                    raise RuntimeError("the test runner's report is malformed")
                if waiting:  # the test ended while the solution was still busy
                    state["solution"] = None
                    sol.stop()
                    own, own_why = True, own_why or "the solution ran past the time limit"
                return str(rep[1]), str(rep[2])[:200], own, own_why
        if waiting and sol.rs_r in ready:
            answers = sol.frames.pull()
            if answers:
                waiting = False
                text, why = _evo_ct_answer(answers[0]) if answers[0] is not None else \
                    (_evo_ct_json.dumps([None, None, "malformed answer"]), "the solution's answer is malformed")
                if why:
                    own, own_why = True, own_why or why
                _evo_ct_push(runner.ans_w, text, deadline, runner.rep_r)
            elif sol.frames.eof:
                waiting, state["solution"] = False, None
                sol.stop()
                own, own_why = True, own_why or "the solution's process ended"
                _evo_ct_push(runner.ans_w, _evo_ct_json.dumps([None, None, "crashed"]), deadline, runner.rep_r)
        if runner.req_r in ready:
            queue += runner.requests.pull()
        while queue and not waiting:
            text = _evo_ct_request(queue.pop(0))
            state["calls"] += 1
            if text is None or state["calls"] > _EVO_CT_MAX_CALLS:
                why = "a bad call" if text is None else "too many calls"
                _evo_ct_push(runner.ans_w, _evo_ct_json.dumps([None, None, why]), deadline, runner.rep_r)
                continue
            sol = state["solution"] or _evo_ct_fresh(state, deadline)
            if sol is None:
                own, own_why = True, own_why or "the solution did not load (it died or hung)"
                _evo_ct_push(runner.ans_w, _evo_ct_json.dumps([None, None, "crashed"]), deadline, runner.rep_r)
                continue
            if _evo_ct_push(sol.rq_w, text, deadline, runner.rep_r):
                waiting = True
            else:
                waiting = True  # the test ends (or time runs out) while S does not listen


def _evo_ct_run(solution, entry, tests, imports, per_test_s, budget_s):
    """Each test against ``solution`` -> {"status", "why", "own", "own_why", "error"}."""
    deadline = _evo_ct_time.monotonic() + budget_s
    _evo_ct_ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace, no /proc/E/fd
    n = len(tests)
    out = {"status": ["fail"] * n, "why": [""] * n, "own": [False] * n, "own_why": [""] * n, "error": None}
    state = {"solution": None, "source": solution, "entry": entry, "calls": 0, "load_s": per_test_s}
    runner = _EvoCtRunner(tests, imports, entry, per_test_s)
    try:
        if not runner.feed(deadline):
            raise RuntimeError("the test runner did not start")
        for i in range(n):
            for _ in range(2):  # a test that ran out of time runs once more: a busy machine stalls
                status, why, own, own_why = _evo_ct_test(i, state, runner, deadline)
                out["status"][i], out["why"][i], out["own"][i], out["own_why"][i] = status, why, own, own_why
                runner.requests.drain()  # what a killed test left half-written or unread
                runner.drain_answers()
                if status == "timeout" and why.startswith("the evaluation"):
                    raise RuntimeError("the evaluation ran out of time")
                if status != "timeout":
                    break
    except Exception as exc:
        out["error"] = str(exc)[:200]
    finally:
        if state["solution"] is not None:
            state["solution"].stop()
        runner.stop()
    return out

"""The test runner R: a fresh interpreter that runs an item's tests, each in its own fork.

Stdlib only. The harness (:mod:`domains.code_tests.harness`) starts it with ``execve``,
so its memory holds only what it reads from stdin: the tests, the reference's imports,
the entry point's name and the plain-data codec. Never the solution's code, the
sandbox's token, or which solution (reference, stub, mutant, solve attempt) is being
judged: every job sends it the same thing. It is not dumpable, so a test process of the
same uid cannot ptrace it or open its file descriptors.

Per command ``i`` from the harness R forks a test process T that drops its handles on R
(commands, reports), may not fork, write file data or make message queues, and runs
test ``i`` in a fresh namespace of builtins, the imports and a stand-in for the entry
point: each call is sent to the harness as plain data and the answer comes back as plain
data. T reports by its exit status alone, which the kernel gives R for that process
only, so a test decides its own verdict and no other; R writes ``[i, status, why]``.
"""

import builtins
import ctypes
import json
import os
import resource
import select
import signal
import sys
import time
import types

PASS, FAIL = 77, 78
HEADER = 10  # a frame is its length in 10 ASCII digits, then the text


def _read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _send(fd, text):
    data = text.encode("utf-8", "surrogatepass")
    view = memoryview(b"%010d" % len(data) + data)
    while view:
        view = view[os.write(fd, view):]


def _recv(fd):
    head = _read_exact(fd, HEADER)
    if head is None or not head.isdigit():
        return None
    body = _read_exact(fd, int(head))
    return None if body is None else body.decode("utf-8", "surrogatepass")


def _stand_in(name, plain, req, resp):
    def call(*args, **kwargs):
        _send(req, plain.encode([list(args), kwargs]))  # NotPlainData: not supported
        reply = _recv(resp)
        if reply is None:
            raise RuntimeError("no answer from the solution")
        out, after, raised = json.loads(reply)
        if raised is not None:
            raise RuntimeError("the solution raised " + str(raised))
        new_args = plain.decode(after)[0]
        for old, new in zip(args, new_args):  # in-place changes, as the solution made them
            if type(old) is list and type(new) is list:
                old[:] = new
            elif type(old) in (dict, set) and type(new) is type(old):
                old.clear()
                old.update(new)
        return plain.decode(out)
    call.__name__ = call.__qualname__ = name
    return call


def _run_test(code, namespace, entry, plain, fds, per_test_s):
    ctl, rep, req, resp = fds
    r_why, w_why = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = FAIL
        try:
            for fd in (r_why, ctl, rep):
                os.close(fd)
            for res in (resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE, resource.RLIMIT_MSGQUEUE):
                resource.setrlimit(res, (0, 0))
            ns = dict(namespace)
            ns[entry] = _stand_in(entry, plain, req, resp)
            exec(code, ns)
            status = PASS
        except BaseException as exc:
            try:
                os.write(w_why, f"{type(exc).__name__}: {exc}"[:200].encode("utf-8", "replace"))
            except BaseException:
                pass
        os._exit(status)
    os.close(w_why)
    pidfd = os.pidfd_open(pid)
    done = select.select([pidfd], [], [], per_test_s)[0]
    os.close(pidfd)
    if not done:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    wstatus = os.waitpid(pid, 0)[1]
    os.set_blocking(r_why, False)
    try:
        why = os.read(r_why, 200).decode("utf-8", "replace")
    except OSError:
        why = ""
    os.close(r_why)
    if not done:
        return "timeout", f"the test took longer than {per_test_s:g} s"
    if os.WIFEXITED(wstatus) and os.WEXITSTATUS(wstatus) == PASS:
        return "pass", ""
    return "fail", why or "the test process ended without a verdict"


def main():
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0, before reading anything
    fds = tuple(int(x) for x in sys.argv[1:5])
    ctl, rep = fds[0], fds[1]
    data = json.loads(sys.stdin.buffer.read().decode("utf-8", "surrogatepass"))
    plain = types.ModuleType("plain")
    exec(data["plain"], plain.__dict__)
    namespace = {"__builtins__": builtins, "__name__": "__test__"}
    try:
        exec(compile(data["imports"], "<imports>", "exec"), namespace)
        setup = None
    except BaseException as exc:
        setup = f"the reference's imports failed: {type(exc).__name__}"
    codes = []
    for test in data["tests"]:
        try:
            codes.append(compile(test, "<test>", "exec"))
        except SyntaxError:
            codes.append(None)
    pending = b""
    while True:
        while b"\n" not in pending:
            chunk = os.read(ctl, 64)
            if not chunk:
                os._exit(0)
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        i = int(line)
        start = time.monotonic()
        if setup or codes[i] is None:
            status, why = "fail", setup or "the test does not compile"
        else:
            status, why = _run_test(codes[i], namespace, data["entry"], plain, fds, data["per_test_s"])
        report = json.dumps([i, status, why, round(time.monotonic() - start, 4)]) + "\n"
        os.write(rep, report.encode())


if __name__ == "__main__":
    main()
